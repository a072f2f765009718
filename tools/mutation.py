"""Mutation testing: how many small, plausible bugs in the core modules do the tests notice?

Python: ``mutmut`` (3.x) mutates one module at a time in a copy of the repository under
``build/mutation/<name>/`` and runs only the fast tests that cover it (mutmut forks per mutant
from a process that has already imported them). C: a short list of hand-written mutants (one
textual change each) is applied to a copy of the repository and the covering tests must fail.

    python tools/mutation.py                 # every Python module, then the C mutants
    python tools/mutation.py protocol fit    # some modules
    python tools/mutation.py --c             # the C mutants only

Prints one line per module (killed/total, survivors) and writes build/mutation/summary.json.
Not part of `make test`: it runs the covering tests once per mutant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mutation"

# module name -> (source file, the fast tests that cover it)
PY_TARGETS: dict[str, tuple[str, list[str]]] = {
    "fit": ("edgeq/toolchain/fit.py",
            ["tests/toolchain/test_fit_and_size.py", "-k", "fit_check"]),
    "protocol": ("edgeq/device/protocol.py",
                 ["tests/device/test_protocol.py", "tests/device/test_protocol_hello.py",
                  "tests/device/test_protocol_fuzz.py", "-k", "not random_streams"]),
    "layers": ("edgeq/analyze/layers.py",
               ["tests/analyze/test_analyze_layers.py", "tests/analyze/test_suggest_own.py",
                "tests/analyze/test_layers_units.py", "-k",
                "known_snr or sanity or suggest_own or layers_units"]),
    "calibration": ("edgeq/quantize/calibration.py",
                    ["tests/quantize/test_calibration.py",
                     "tests/quantize/test_calibration_oracles.py", "-k",
                     "spec or signed or uniform or numpy or oracles"]),
    "metadata": ("edgeq/export/metadata.py",
                 ["tests/export/test_export_android.py", "-k",
                  "metadata_flatbuffer or attach or feature_vector"]),
    "planner": ("edgeq/codegen/planner.py",
                ["tests/codegen/test_edgeq_rt_codegen.py", "tests/codegen/test_planner_exact.py",
                 "-k", "plan or optima or overlap"]),
    "numerics": ("edgeq/quantize/numerics.py",
                 ["tests/quantize/test_numerics.py", "tests/quantize/test_numerics_exact.py"]),
    "lowering": ("edgeq/codegen/lowering.py",
                 ["tests/codegen/test_edgeq_rt_elementwise.py",
                  "tests/codegen/test_lowering_registry.py", "-k",
                  "registered or refusals or add_with_constant or registry"]),
}

# hand-written C mutants: (name, file, exact text, replacement, tests that must go red)
PROTO_C = "firmware/proto/eq_proto.c"
MATH_H = "firmware/runtime/include/eq_math.h"
PROTO_TESTS = ["tests/device/test_protocol_fuzz.py", "tests/device/test_cobs_oracle.py"]
REQUANT_TESTS = ["tests/quantize/test_numerics.py", "tests/codegen/test_edgeq_rt_ops.py", "-k",
                 "c_requantize or fully_connected_sweep or extreme_quantization"]
C_MUTANTS: list[tuple[str, str, str, str, list[str]]] = [
    ("rx: 0xFF block followed by a zero", PROTO_C,
     "rx->zero_next = byte != 0xFFu;", "rx->zero_next = 1;", PROTO_TESTS),
    ("rx: truncated block accepted", PROTO_C,
     ": rx->block_left   ? EQP_RX_BAD", ": 0 ? EQP_RX_BAD", PROTO_TESTS),
    ("cobs decode: 0xFF block followed by a zero", PROTO_C,
     "if (code != 0xFFu && i < n) {", "if (i < n) {", PROTO_TESTS),
    ("cobs encode: block ends at 254", PROTO_C,
     "if (++code == 0xFFu) {", "if (++code == 0xFEu) {", PROTO_TESTS),
    ("crc table entry", PROTO_C, "0xEDB88320u", "0xEDB88321u", PROTO_TESTS),
    ("crc not checked", PROTO_C,
     "if (crc != read_u32(raw + body)) {", "if (0) {", PROTO_TESTS),
    ("version not checked", PROTO_C, "if (raw[0] != EQP_VERSION) {", "if (0) {", PROTO_TESTS),
    ("short-frame limit off by one", PROTO_C,
     "if (n < EQP_HEADER_BYTES + EQP_CRC_BYTES) {",
     "if (n <= EQP_HEADER_BYTES + EQP_CRC_BYTES) {", PROTO_TESTS),
    ("oversize limit off by one", PROTO_C,
     "if (n > EQP_MAX_RAW) {", "if (n >= EQP_MAX_RAW) {", PROTO_TESTS),
    ("rounding divide: negative threshold", MATH_H,
     "const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);",
     "const int32_t threshold = (mask >> 1);", REQUANT_TESTS),
    ("high mul: negative nudge", MATH_H,
     "(1 - (INT64_C(1) << 30))", "(INT64_C(1) << 30)", REQUANT_TESTS),
    ("high mul: INT32_MIN*INT32_MIN saturation", MATH_H,
     "if (a == INT32_MIN && b == INT32_MIN) {", "if (0) {", REQUANT_TESTS),
    ("single rounding: no rounding term", MATH_H,
     "31 - shift;\n    const int64_t round = (int64_t)1 << (total_shift - 1);",
     "31 - shift;\n    const int64_t round = 0;", REQUANT_TESTS),
]

COPY_DIRS = ["edgeq", "tests", "firmware", "board_configs", "models", "benchmarks", "docs"]


def _copy_repo(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for d in COPY_DIRS:
        if (ROOT / d).exists():
            shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    # ../shared as seen from the copy and from mutmut's own copy inside it (mutants/)
    shared = ROOT.parent / "shared"
    for link in (dest.parent / "shared", dest / "shared"):
        if not link.exists() and shared.exists():
            link.symlink_to(shared)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def run_python(name: str, children: int) -> dict:
    source, tests = PY_TARGETS[name]
    work = OUT / name
    _copy_repo(work)
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + (
        "\n[tool.mutmut]\n"
        f"source_paths = [\"edgeq\"]\n"
        f"only_mutate = [{json.dumps(source)}]\n"
        f"also_copy = {_toml_list(COPY_DIRS)}\n"
        f"pytest_add_cli_args = [\"-p\", \"no:xdist\", \"-p\", \"no:cacheprovider\", \"-q\"]\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["EDGEQ_SHARED_MODELS"] = str(ROOT.parent / "shared" / "models")
    t0 = time.monotonic()
    log = (work / "mutmut.log").open("w")
    subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                   cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    return collect(name, round(time.monotonic() - t0))


def collect(name: str, seconds: int | None = None) -> dict:
    """Statuses of one module's finished run, read back from its mutmut directory."""
    source, tests = PY_TARGETS[name]
    work = OUT / name
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work,
                         env=env, capture_output=True, text=True)
    status: dict[str, str] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+):\s*(.+)$", line)
        if m:
            status[m.group(1)] = m.group(2).strip()
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    scored = sum(v for k, v in counts.items() if k not in ("skipped", "not checked"))
    survivors = sorted(k for k, v in status.items() if v == "survived")
    reached = killed + counts.get("survived", 0)
    return {"module": source, "tests": tests, "counts": counts, "killed": killed,
            "total": scored, "score": round(100.0 * killed / scored, 1) if scored else None,
            "reached": reached,
            "reached_score": round(100.0 * killed / reached, 1) if reached else None,
            "survivors": survivors, "seconds": seconds}


def run_c() -> list[dict]:
    results = []
    work = OUT / "c"
    for name, rel, old, new, tests in C_MUTANTS:
        _copy_repo(work)
        path = work / rel
        text = path.read_text()
        assert text.count(old) == 1, f"C mutant {name}: {old!r} not found once in {rel}"
        path.write_text(text.replace(old, new))
        env = {k: v for k, v in os.environ.items()}
        env["PYTHONPATH"] = str(work)
        env["EDGEQ_SHARED_MODELS"] = str(ROOT.parent / "shared" / "models")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist",
                               "-p", "no:cacheprovider", *tests], cwd=work, env=env,
                              capture_output=True, text=True)
        killed = proc.returncode == 1
        results.append({"mutant": name, "file": rel, "killed": killed,
                        "tail": proc.stdout.strip().splitlines()[-1:]})
        print(f"C {name}: {'killed' if killed else 'SURVIVED'} ({rel})", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"subset of {sorted(PY_TARGETS)}")
    ap.add_argument("--c", action="store_true", help="run only the hand-written C mutants")
    ap.add_argument("--children", type=int, default=1, help="parallel mutmut workers")
    ap.add_argument("--report", action="store_true",
                    help="only read back the finished runs under build/mutation/")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    summary_path = OUT / "summary.json"
    names = [] if args.c else (args.modules or list(PY_TARGETS))
    for name in names:
        if args.report and not (OUT / name / "mutants").is_dir():
            continue
        r = collect(name) if args.report else run_python(name, args.children)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        summary[name] = r
        summary_path.write_text(json.dumps(summary, indent=1))
        print(f"{name}: {r['killed']}/{r['total']} killed ({r['score']} %); of the mutants its "
              f"tests reach {r['killed']}/{r['reached']} ({r['reached_score']} %), "
              f"{len(r['survivors'])} survived, {r['seconds']} s", flush=True)
    if args.c or not (args.modules or args.report):
        c = run_c()
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        summary["c"] = c
        summary_path.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

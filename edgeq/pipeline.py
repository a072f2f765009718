"""``edgeq build``: model -> int8 -> evaluate -> edgeq-rt C -> firmware -> (emulated) device run
checked bit-exact against the host oracle -> one report. (And ``edgeq compress``, the other job
that crosses stages: train in quantize, size the coded weights in codegen.)

The only module that calls every stage, each through its public library function, once and in
order. Every stage writes into the build directory (``edgeq.artifacts``) and records a section
in its manifest, so a stage can be re-run alone. Cheap checks (board, tools, fit) come before
expensive ones, and a model that does not fit is refused before anything is compiled.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.artifacts import BuildDir, build_lock, record_last_build, refresh_manifest
from edgeq.errors import BuildError, CodegenError, DeviceError, ModelError
from edgeq.toolchain.boards import Board, resolve_target

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = Path("models") / "digits_cnn"
MODEL_SUFFIXES = (".h5", ".keras", ".tflite")


@dataclass
class BuildRequest:
    model: str | None = None
    target: str | None = None
    board: str | None = None
    data: str | None = None
    out: str | None = None
    samples: int = 100
    run: bool = True
    per_layer: bool = False
    port: str | None = None
    opt: str | None = None  # a raw gcc -O flag; None: the optimize mode's flags
    optimize: str = "speed"  # or "size": -Os + EDGEQ_RT_SIZE kernels (compiler.OPTIMIZE_MODES)
    power_model: str | None = None
    protocol: str = "edgeq"  # or "mlperf": the MLPerf Tiny harness instead of edgeq's protocol
    mlperf_model: str | None = None  # the harness's m-model-[...] (ic01, kws01, vww01, ad01)
    mlperf_input_offset: int = 0  # added to each db byte (-128: a uint8 dataset, int8 model)
    runtime: str = "edgeq"  # or "tflm": TFLite Micro firmware from a TFLM tree
    tflm_dir: str | None = None  # the TFLM tree (default: EDGEQ_TFLM_DIR, then ../shared's)
    tflm_kernels: str = "cmsis-nn"  # or "reference"
    progress: bool = False  # progress bars on stderr (the CLI: a terminal, not --json or CI)


RUNTIMES = ("edgeq", "tflm")


def find_model_file(model: str | None) -> Path:
    """A model file from a path, a directory holding one model, or the default digits_cnn."""
    if model is None:
        p = DEFAULT_MODEL if DEFAULT_MODEL.exists() else REPO_ROOT / DEFAULT_MODEL
    else:
        p = Path(model)
    if p.is_dir():
        found = sorted(f for f in p.iterdir() if f.suffix in MODEL_SUFFIXES)
        if len(found) != 1:
            raise ModelError(f"{p}: expected one model file (.h5/.keras/.tflite) inside, found "
                             f"{len(found)}; pass the file itself")
        return found[0]
    if not p.is_file():
        raise ModelError(f"{p}: no such model file; pass a .h5, .keras or .tflite path")
    if p.suffix not in MODEL_SUFFIXES:
        raise ModelError(f"{p}: unsupported model type {p.suffix!r}; use .h5, .keras or .tflite")
    return p


def run_build(req: BuildRequest) -> dict[str, Any]:
    """Run every stage for ``req`` and return the report ``render_build_report`` prints.

    Progress goes to this module's logger (the CLI shows it as ``edgeq: ...`` lines).
    """
    from edgeq.toolchain.compiler import find_tool, resolve_optimize

    board = resolve_target(req.target, req.board)
    find_tool("gcc")
    resolve_optimize(req.optimize, req.opt)  # a bad --opt/--optimize fails before any stage
    will_run = req.run and (board.emulated or req.port is not None)
    if will_run and board.emulated:
        from edgeq.device.qemu import find_qemu

        find_qemu()
    if req.samples <= 0:
        raise BuildError("--samples must be positive")
    if req.runtime == "tflm":
        check_tflm_request(req, board)
    model_file = find_model_file(req.model)
    stem = model_file.stem.removesuffix("_int8")
    suffix = "-tflm" if req.runtime == "tflm" else ""  # both runtimes' builds side by side
    bd = BuildDir(Path(req.out) if req.out else Path("build") / f"{stem}-{board.name}{suffix}")
    fresh = not bd.root.exists()
    with build_lock(bd):
        refresh_manifest(bd)
        try:
            report = _run_stages(req, board, bd, model_file, stem, will_run)
        except BaseException:
            if fresh:  # a failed build leaves no partial build directory behind
                shutil.rmtree(bd.root, ignore_errors=True)
            raise
    record_last_build(bd, board.name)
    return report


def check_tflm_request(req: BuildRequest, board: Board) -> None:
    """Cheap checks of ``--runtime tflm`` before anything runs: the tree, the core, options."""
    from edgeq.toolchain.compiler import find_tool
    from edgeq.toolchain.tflm_library import M4_KERNELS, tflm_source

    if req.tflm_kernels not in M4_KERNELS:
        raise BuildError(f"--tflm-kernels {req.tflm_kernels!r}: use one of "
                         f"{', '.join(M4_KERNELS)}")
    if req.per_layer:
        raise BuildError("--per-layer needs edgeq-rt firmware (TFLite Micro firmware has no "
                         "per-layer hook); drop --per-layer or use --runtime edgeq")
    if req.protocol != "edgeq":
        raise BuildError("--protocol mlperf builds edgeq-rt firmware only; drop --protocol or "
                         "use --runtime edgeq")
    if req.optimize != "speed":
        raise BuildError("--optimize size selects edgeq-rt's kernel paths; the TFLite Micro "
                         "library is built once with its own flags: drop --optimize or use "
                         "--runtime edgeq")
    if board.core != "cortex-m4":
        raise BuildError(f"--runtime tflm builds Cortex-M4 firmware only so far; {board.name} "
                         f"is a {board.core}: use --target cortex-m4 or --runtime edgeq")
    find_tool("g++")
    tflm_source(req.tflm_dir)


def _run_stages(req: BuildRequest, board: Board, bd: BuildDir, model_file: Path, stem: str,
                will_run: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"model": str(model_file), "board": board.name, "core": board.core,
                              "build_dir": str(bd.root), "runtime": _runtime_label(req)}

    generated = uses_generated_inputs(model_file, req.data)
    float_model = quantize_stage(model_file, bd, None if generated else req.data,
                                 progress=req.progress)
    if generated:
        log.info("no labelled data: checking bit-exactness on %d generated inputs across the "
                 "input's range (no accuracy)", req.samples)
        report["accuracy"] = {"metric": "none (no labelled data)", "float": None,
                              "int8_host": None, "host_samples": 0}
    else:
        report["accuracy"] = evaluate_stage(bd, float_model, req.data, progress=req.progress)
    if req.runtime == "tflm":
        gen, input_bytes = tflm_codegen_stage(bd, stem)
        report.update(tflm_firmware_stage(board, bd, gen, input_bytes, req))
    else:
        gen, input_bytes = codegen_stage(bd, stem)
        report.update(firmware_stage(board, bd, gen, input_bytes, opt=req.opt,
                                     optimize=req.optimize, per_layer=req.per_layer,
                                     harness=_harness(req, bd), progress=req.progress))
    if not will_run:
        report["device"] = {"ran": False, "reason": "--no-run" if not req.run else
                            f"{board.name} is a real board: flash it (edgeq flash) and pass "
                            "--port to validate"}
        return report

    if req.protocol == "mlperf":
        from edgeq.bench.mlperf import run_harness_validation

        report["device"] = run_harness_validation(
            board, bd.elf, bd.model, data=req.data, samples=req.samples, port=req.port,
            input_offset=req.mlperf_input_offset)
        h = report["device"]["harness"]
        report["accuracy"]["int8_device"] = h.get("device_accuracy")
        report["accuracy"]["int8_host_same_samples"] = h.get("host_accuracy")
        report["accuracy"]["device_samples"] = h["samples"]
        bd.update_manifest("device", report["device"], [bd.elf, bd.model])
        return report

    report["device"] = device_stage(board, bd, gen.model_hash, req, generated=generated)
    report["accuracy"]["int8_device"] = report["device"].pop("device_accuracy")
    report["accuracy"]["int8_host_same_samples"] = report["device"].pop("host_accuracy")
    report["accuracy"]["device_samples"] = report["device"]["validation"]["samples"]
    bd.update_manifest("device", report["device"], [bd.elf, bd.model])
    return report


def uses_generated_inputs(model_file: Path, data: str | None) -> bool:
    """``--data random``, or an int8 ``.tflite`` with no dataset anywhere: build, run and check
    bit-exactness on generated inputs (there is nothing to measure accuracy on)."""
    from edgeq.models import read_sidecar
    from edgeq.quantize.numerics import GENERATED

    if data is not None and data != GENERATED:
        return False
    if model_file.suffix == ".tflite" and _needs_quantizing(model_file):
        if data == GENERATED:
            raise BuildError(f"{model_file}: a float .tflite needs real calibration data, not "
                             "--data random; pass --data DATASET")
        return False
    if data == GENERATED:
        return True
    return model_file.suffix == ".tflite" and not read_sidecar(model_file).get("dataset")


def quantize_stage(model_file: Path, bd: BuildDir, data: str | None, *,
                   progress: bool = False) -> Path | None:
    """1. quantize (an int8 .tflite is taken as is; a float or hybrid one is quantized);
    returns the float Keras model, if any."""
    if model_file.suffix == ".tflite" and not _needs_quantizing(model_file):
        log.info("using quantized model %s", model_file)
        if model_file.resolve() != bd.model.resolve():
            shutil.copyfile(model_file, bd.model)
            sidecar = model_file.with_name(model_file.stem + ".edgeq.json")
            if sidecar.is_file():
                shutil.copyfile(sidecar, bd.sidecar)
        return None
    from edgeq.quantize.ptq import quantize_model

    log.info("quantizing %s to int8", model_file)
    quantize_model(model_file, bd.model, data=data, manifest=bd.manifest, progress=progress)
    bd.update_manifest("quantize", bd.manifest_section("quantize"), [model_file, bd.model])
    return None if model_file.suffix == ".tflite" else model_file


def _needs_quantizing(tflite_file: Path) -> bool:
    """A float32 or hybrid .tflite goes through quantize like a Keras model."""
    from edgeq.models import load_model
    from edgeq.quantize.ptq import detect_mode

    return detect_mode(load_model(tflite_file).model) in ("float32", "dynamic")


def evaluate_stage(bd: BuildDir, float_model: Path | None, data: str | None, *,
                   progress: bool = False) -> dict[str, Any]:
    """2. evaluate on the host (float, int8 through TFLM); returns the accuracy summary."""
    from edgeq.analyze.evaluate import evaluate

    log.info("evaluating on the host (TFLM reference kernels)")
    ev = evaluate(bd.model, float_model=float_model, data=data, arena=False, progress=progress)
    bd.update_manifest("evaluate", ev, [bd.model])
    return {"metric": ev["metric"]["name"], "float": ev.get("float", {}).get("value"),
            "int8_host": ev["tflm"]["value"], "host_samples": ev["dataset"]["samples"],
            "percent": ev["percent_metric"], "task": ev["task"],
            "outputs": [{k: o[k] for k in ("name", "task", "metric", "float", "tflm")}
                        for o in ev["outputs"]]}


def _generate(bd: BuildDir, name: str | None) -> tuple[Any, int]:
    """edgeq-rt C for the build's model, and the model's total input bytes."""
    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.tflite import read_tflite

    gen = write_edgeq_rt(bd.model, bd.generated, name=name)
    input_bytes = sum(t.nbytes for t in read_tflite(bd.model).input_tensors)
    return gen, input_bytes


def _refuse_if_tflm_cannot_run(bd: BuildDir) -> None:
    """When edgeq-rt refuses a model, its advice (a TFLite Micro bundle) only holds if TFLM can
    run the model; say so in one line when TFLM cannot either."""
    from edgeq.oracles import tflm_supports

    ok, reason = tflm_supports(bd.model)
    if not ok:
        raise CodegenError(
            f"{bd.model.name}: neither edgeq-rt nor TFLite Micro can run this model (TFLite "
            f"Micro: {reason}); convert it again from the float Keras model "
            "(edgeq build MODEL.keras --data DATA)")


def _runtime_label(req: BuildRequest) -> str:
    return f"TFLite Micro ({req.tflm_kernels} kernels)" if req.runtime == "tflm" else "edgeq-rt"


def codegen_stage(bd: BuildDir, name: str) -> tuple[Any, int]:
    """3. edgeq-rt code generation."""
    log.info("generating edgeq-rt C")
    try:
        gen, input_bytes = _generate(bd, name)
    except CodegenError as exc:
        if "`edgeq codegen MODEL -o DIR --runtime tflm`" not in str(exc):
            raise
        _refuse_if_tflm_cannot_run(bd)
        raise CodegenError(f"{exc}, or build TFLite Micro firmware instead with `edgeq build "
                           "MODEL --runtime tflm --tflm-dir TFLM_TREE`") from None
    bd.update_manifest("codegen", {"runtime": "edgeq", "arena_bytes": gen.arena_bytes,
                                   "weight_bytes": gen.weight_bytes,
                                   "model_hash": gen.model_hash, "model_name": gen.model_name,
                                   "layers": len(gen.layers)}, [bd.model, bd.generated])
    return gen, input_bytes


def tflm_codegen_stage(bd: BuildDir, name: str) -> tuple[Any, int]:
    """3. (``--runtime tflm``) the model files of a TFLite Micro firmware."""
    from edgeq.codegen.tflm_model import write_tflm_model
    from edgeq.tflite import read_tflite

    log.info("generating the TFLite Micro firmware model (sizing its arena with TFLM)")
    gen = write_tflm_model(bd.model, bd.tflm_generated, name=name)
    input_bytes = sum(t.nbytes for t in read_tflite(bd.model).input_tensors)
    bd.update_manifest("codegen", gen.as_dict(), [bd.model, bd.tflm_generated])
    return gen, input_bytes


def tflm_firmware_stage(board: Board, bd: BuildDir, gen: Any, input_bytes: int,
                        req: BuildRequest) -> dict[str, Any]:
    """4. (``--runtime tflm``) the fit check, the cached TFLM library (built once per tree and
    kernel choice: minutes), then the firmware: the same application, protocol and drivers as
    edgeq-rt firmware around a MicroInterpreter."""
    from edgeq.toolchain.compiler import build_firmware
    from edgeq.toolchain.fit import check_fit
    from edgeq.toolchain.tflm_library import M4_KERNELS, tflm_library

    check_fit(board, weight_bytes=gen.weight_bytes, arena_bytes=gen.arena_bytes,
              input_bytes=input_bytes)
    lib = tflm_library(M4_KERNELS[req.tflm_kernels], tree=req.tflm_dir, progress=req.progress)
    log.info("building TFLite Micro firmware for %s (%s, %s kernels)", board.name, board.core,
             req.tflm_kernels)
    fw = build_firmware(board, bd.tflm_generated, bd.firmware, opt=req.opt,
                        input_bytes=input_bytes, kernel_sources=[], tflm=lib,
                        progress=req.progress)
    out = {"memory": {**fw.size.to_dict(), "arena": gen.arena_bytes,
                      "weights": gen.weight_bytes},
           "firmware": {"elf": str(fw.elf), "bin": str(fw.bin), "hex": str(fw.hex),
                        "opt": fw.opt, "optimize": fw.optimize, "per_layer": False,
                        "protocol": fw.protocol,
                        "runtime": "tflm", "tflm_kernels": req.tflm_kernels,
                        "tflm_library": str(lib.library)}}
    bd.update_manifest("build", {"board": board.name, **out}, [bd.tflm_generated, fw.elf])
    return out


def _harness(req: BuildRequest, bd: BuildDir) -> dict[str, Any] | None:
    """The MLPerf Tiny harness configuration for ``--protocol mlperf``, else None."""
    if req.protocol != "mlperf":
        return None
    from edgeq.bench.mlperf import harness_defines
    from edgeq.tflite import read_tflite

    return {"defines": harness_defines(read_tflite(bd.model), req.mlperf_input_offset,
                                       req.mlperf_model),
            "mlperf_input_offset": req.mlperf_input_offset}


def firmware_stage(board: Board, bd: BuildDir, gen: Any, input_bytes: int, *, opt: str | None,
                   per_layer: bool, harness: dict[str, Any] | None = None,
                   progress: bool = False, optimize: str = "speed") -> dict[str, Any]:
    """4. firmware: the fit check first, then compile and link; returns memory + firmware.
    ``harness`` (from ``_harness``) builds the MLPerf Tiny harness instead of edgeq's protocol.
    ``optimize`` is the build's mode (speed or size), ``opt`` an explicit flag over it."""
    from edgeq.toolchain.compiler import build_firmware
    from edgeq.toolchain.fit import check_fit

    check_fit(board, weight_bytes=gen.weight_bytes, arena_bytes=gen.arena_bytes,
              input_bytes=input_bytes)
    log.info("building firmware for %s (%s)", board.name, board.core)
    fw = build_firmware(board, bd.generated, bd.firmware, opt=opt, optimize=optimize,
                        profile_layers=per_layer, input_bytes=input_bytes,
                        kernel_sources=gen.kernel_sources,
                        protocol="mlperf" if harness else "edgeq",
                        defines=harness["defines"] if harness else (), progress=progress)
    out = {"memory": {**fw.size.to_dict(), "arena": gen.arena_bytes,
                      "weights": gen.weight_bytes},
           "firmware": {"elf": str(fw.elf), "bin": str(fw.bin), "hex": str(fw.hex),
                        "opt": fw.opt, "optimize": fw.optimize, "opt_override": opt,
                        "per_layer": per_layer, "protocol": fw.protocol}}
    if harness:
        out["firmware"]["mlperf_input_offset"] = harness["mlperf_input_offset"]
    bd.update_manifest("build", {"board": board.name, **out}, [bd.generated, fw.elf])
    return out


def profiling_firmware(board: Board, build_dir: Path) -> Path:
    """The per-layer profiling firmware of a build (``edgeq bench --per-layer``): the build's
    own firmware when it was compiled with profiling, else built beside it from its model."""
    bd = BuildDir(build_dir)
    from edgeq.toolchain.compiler import build_firmware

    built = bd.manifest_section("build").get("firmware", {})
    if built.get("runtime") == "tflm":
        raise DeviceError(f"{build_dir} holds TFLite Micro firmware, which has no per-layer "
                          "hook; drop --per-layer, or bench an edgeq-rt build")
    if built.get("per_layer") and Path(built.get("elf", "")).is_file():
        return Path(built["elf"])
    if not bd.model.is_file():
        raise DeviceError(f"{bd.model} not found; run `edgeq build --board {board.name}` first")
    gen, input_bytes = _generate(bd, bd.manifest_section("codegen").get("model_name"))
    fw = build_firmware(board, bd.generated, bd.profile_firmware, profile_layers=True,
                        input_bytes=input_bytes, kernel_sources=gen.kernel_sources,
                        opt=built.get("opt_override"), optimize=built.get("optimize", "speed"))
    return fw.elf


def device_stage(board: Board, bd: BuildDir, model_hash: str,
                 req: BuildRequest, generated: bool = False) -> dict[str, Any]:
    """5. run on the device and compare with the host oracle, byte for byte."""
    from edgeq.analyze.evaluate import score_raw_outputs
    from edgeq.bench.energy import estimate_energy
    from edgeq.bench.runner import layer_rows
    from edgeq.bench.stats import clock_status, latency_stats
    from edgeq.bench.validate import validate_on_device
    from edgeq.device.connect import connect
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import generated_test_vectors, quantized_test_vectors

    if generated:
        xs, y = generated_test_vectors(bd.model, req.samples), None
    else:
        xs, y = quantized_test_vectors(bd.model, req.data, req.samples)
    expected = run_tflm(bd.model, xs)
    n = len(xs[0])
    if board.emulated:
        log.info("running %d samples in QEMU (%s)", n, board.qemu_machine)
    else:
        log.info("running %d samples on %s at %s", n, board.name, req.port)
    counter = None
    if board.emulated:  # exact instructions and the cycle estimate (edgeq.bench.latency)
        from edgeq.device.icount import PluginCounter

        counter = PluginCounter(board, bd.elf, bd.elf.parent)
    with connect(board, elf=bd.elf, port=None if board.emulated else req.port,
                 emulator=board.emulated, qemu_args=counter.args if counter else ()) as session:
        session.check_model(model_hash)
        clock_hz = session.info.clock_hz  # what the firmware runs at (reset clock if setup failed)
        try:
            rep = validate_on_device(session, xs, expected, progress=req.progress)
        except DeviceError as exc:
            raise _tflm_status(exc) if req.runtime == "tflm" else exc from None
        layers = layer_rows(session) if req.per_layer else None
    clock_ok, clock_note = clock_status(board, clock_hz)
    if not clock_ok:
        log.warning(clock_note)
    if not rep.bit_exact:
        raise DeviceError(f"device outputs differ from the TFLM reference on "
                          f"{rep.mismatched_samples}/{rep.samples} samples (first: sample "
                          f"{rep.first_mismatch}, max |diff| {rep.max_abs_diff}); report this "
                          f"{_runtime_label(req)} bug with the model")
    if counter is not None:
        from edgeq.bench.latency import emulator_latency

        latency, energy, layers = emulator_latency(board, counter.windows(), req.power_model,
                                                   bd.model, layers)
    else:
        from edgeq.bench.latency import measured_layer_rows

        stats = latency_stats(rep.counts, rep.unit, clock_hz)
        latency = stats.to_dict()
        energy = estimate_energy(board, stats.median, rep.unit).to_dict()
        if layers is not None and rep.unit == "cycles":
            layers = measured_layer_rows(layers, bd.model)
    device_score = None if generated else score_raw_outputs(bd.model, rep.all_outputs, y, xs)
    host_score = None if generated else score_raw_outputs(bd.model, expected, y, xs)
    out: dict[str, Any] = {
        "ran": True, "validation": rep.to_dict(), "latency": latency,
        "clock_hz": clock_hz, "clock_ok": clock_ok, "clock": clock_note,
        "energy": energy,
        "device_accuracy": device_score[1] if device_score else None,
        "host_accuracy": host_score[1] if host_score else None,
    }
    out["validation"]["inputs_per_sample"] = len(xs)
    out["validation"]["outputs_per_sample"] = len(expected)
    out["validation"]["inputs"] = (
        "generated: input minimum, maximum and zero point, then uniform over the input range"
        if generated else "test split")
    if layers is not None:
        out["layers"] = layers
    return out


def _tflm_status(exc: DeviceError) -> DeviceError:
    """A failed invoke of TFLM firmware, with what its status code means."""
    import re

    from edgeq.toolchain.tflm_library import TFLM_STATUS

    m = re.search(r"eq_status (\d+)", str(exc))
    if m is None or int(m.group(1)) not in TFLM_STATUS:
        return exc
    return DeviceError(f"TFLite Micro failed on the device: {TFLM_STATUS[int(m.group(1))]}; "
                       "report this with the model (edgeq sized the arena from TFLM on the "
                       "host)")


def _optimize_note(fw: dict[str, Any]) -> str:
    """`` optimized for size (-Os ...)``: the firmware's mode and flags, for the flash line."""
    if "optimize" not in fw:
        return ""
    return f"  optimized for {fw['optimize']} ({fw.get('opt', '')})"


def render_build_report(r: dict[str, Any]) -> str:
    """The one report ``edgeq build`` prints."""
    acc = r.get("accuracy", {})
    percent = acc.get("percent", True)

    def pct(v: Any) -> str:
        if v is None:
            return "-"
        return f"{100 * v:.2f}%" if percent else f"{v:.6g}"

    lines = [f"edgeq build: {r['model']} -> {r['board']} ({r['core']}, "
             f"{r.get('runtime', 'edgeq-rt')})  [{r['build_dir']}]"]
    if acc and acc.get("host_samples") == 0:
        lines.append(f"  accuracy: not measured ({acc['metric']})")
    elif acc:
        dev = acc.get("int8_device")
        dev_txt = (f"{pct(dev)} on {acc.get('device_samples')} samples (host int8 on the same: "
                   f"{pct(acc.get('int8_host_same_samples'))})" if dev is not None else "-")
        lines += [f"  accuracy ({acc['metric']}): float {pct(acc.get('float'))} | int8 host "
                  f"{pct(acc.get('int8_host'))} on {acc.get('host_samples')} samples | int8 "
                  f"device {dev_txt}"]
    m = r.get("memory")
    if m:
        lines += [f"  flash: {m['flash']:,} / {m['flash_capacity']:,} bytes "
                  f"({100 * m['flash'] / m['flash_capacity']:.2f}%)  [text {m['text']:,}, "
                  f"rodata {m['rodata']:,}, data {m['data']:,}; weights {m['weights']:,}]"
                  + _optimize_note(r.get("firmware", {})),
                  f"  RAM:   {m['ram']:,} / {m['ram_capacity']:,} bytes "
                  f"({100 * m['ram'] / m['ram_capacity']:.2f}%)  [data {m['data']:,}, bss "
                  f"{m['bss']:,} incl. arena {m['arena']:,}, stack {m['stack']:,}]"]
    d = r.get("device", {})
    if not d.get("ran"):
        lines.append(f"  device: not run ({d.get('reason', '')})")
        return "\n".join(lines)
    if "harness" in d:
        h = d["harness"]
        acc_txt = (f"; top-1 {pct(h.get('device_accuracy'))} over the protocol, "
                   f"{pct(h.get('host_accuracy'))} on the host" if "device_accuracy" in h else "")
        us = h.get("us_per_inference")
        lines.append(f"  MLPerf Tiny harness: {h['samples']} samples, printed results equal the "
                     f"TFLM reference{acc_txt}"
                     + (f"; {us:,.1f} us/inference (m-lap-us)" if us is not None else ""))
        return "\n".join(lines)
    v, lat, e = d["validation"], d["latency"], d["energy"]
    gen_txt = (" (generated across the input range)"
               if v.get("inputs", "").startswith("generated") else "")
    lines.append(f"  on-device check: {v['samples']} samples{gen_txt}, "
                 + ("every output byte equal to the TFLM reference" if v["bit_exact"] else
                    f"{v['mismatched_samples']} samples differ"))
    from edgeq.bench.latency import render_latency

    lines.append(f"  latency: {render_latency(lat)}")
    if d.get("clock"):
        lines.append(f"  clock: {d['clock']}" if d.get("clock_ok", True)
                     else f"  WARNING: {d['clock']}")
    lines.append(f"  energy: {e['microjoules']:.2f} uJ/inference ({e['note']})")
    if d.get("layers"):
        from edgeq.bench.runner import render_layer_dicts

        lines.append(render_layer_dicts(d["layers"], lat["unit"]))
    return "\n".join(lines)


# --- edgeq compress: train (quantize.compress), then size the coded weights (codegen) ----------


def run_compress(
    model_path: str,
    output: str,
    *,
    data: str | None = None,
    sparsity: float = 0.75,
    clusters: int | None = 16,
    grid: str | None = None,
    epochs: int = 4,
    max_drop_pt: float | None = 1.0,
    max_epochs: int = 16,
    distill: bool = True,
    blends: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``edgeq compress`` job: compress, quantize, measure, write .tflite + JSON."""
    from edgeq.codegen.weight_coding import weight_report
    from edgeq.errors import QuantizeError
    from edgeq.fileio import atomic_write_bytes, atomic_write_json
    from edgeq.quantize.compress import compress, keras_accuracy
    from edgeq.quantize.trainset import load_setup

    if not 0.0 <= sparsity < 1.0:
        raise QuantizeError(f"--prune {sparsity} must be in [0, 1), e.g. 0.75")
    setup = load_setup(model_path, data)
    result = compress(setup.model, (setup.x_train, setup.y_train),
                      (setup.x_test, setup.y_test), sparsity=sparsity, clusters=clusters,
                      grid=grid, epochs=epochs, max_drop_pt=max_drop_pt, max_epochs=max_epochs,
                      distill=distill, blends=blends, seed=seed)
    weights = weight_report(result.model)
    out = Path(output)
    summary = result.summary()
    summary.update(weights.summary())
    summary["layers"] = [
        {"name": layer.name.split(";")[0], "zeros": round(layer.zeros, 3),
         "max_distinct": layer.max_distinct, "lut_bits": layer.lut_bits}
        for layer in weights.layers
    ]
    summary["output"] = str(out)
    summary["original_float_accuracy"] = (
        keras_accuracy(setup.model, setup.x_test, setup.y_test) / 100.0)
    atomic_write_bytes(out, result.model)
    atomic_write_json(out.with_suffix(".json"), summary)
    return summary


def render_compress(s: dict[str, Any]) -> str:
    lines = [
        f"wrote {s['output']} ({s['tflite_bytes']:,} bytes): {' -> '.join(s['steps'])}",
        f"accuracy int8 {100 * s['int8_accuracy']:.2f} % (compressed float "
        f"{100 * s['float_accuracy']:.2f} %, original float "
        f"{100 * s['original_float_accuracy']:.2f} %)",
        f"weights+biases: float32 {s['float32_bytes']:,.0f} B, int8 {s['int8_bytes']:,.0f} B "
        f"({s['ratio_int8']:.1f}x), LUT-coded {s['lut_bytes']:,.0f} B ({s['ratio_lut']:.1f}x), "
        f"Huffman bound {s['huffman_bytes']:,.0f} B ({s['ratio_huffman']:.1f}x)",
        f"fine-tuning: {s.get('epochs_used', '-')} epochs in total",
        f"in the .tflite: {s['file_bytes']:,.0f} B of weights+biases"
        + (f" (int4 filters: {', '.join(s['int4_layers'])})" if s.get("int4_layers") else
           " (int8 filters: the LUT coding is edgeq-rt's, at build time)"),
    ]
    for name, why in s.get("not_pruned", {}).items():
        lines.append(f"  not pruned: {name} ({why})")
    for layer in s["layers"]:
        lines.append(f"  {layer['name']}: zeros {layer['zeros']:.0%}, <= {layer['max_distinct']} "
                     f"values/channel, LUT bits {layer['lut_bits'] or '-'}")
    return "\n".join(lines)

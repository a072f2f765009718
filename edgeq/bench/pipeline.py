"""``edgeq build``: model -> int8 -> evaluate -> edgeq-rt C -> firmware -> (emulated) device run
checked bit-exact against the host oracle -> one report.

Every stage writes into ``build/<model>-<board>/`` and records a section in its
``manifest.json``, so a stage can be re-run alone. Cheap checks (board, tools, fit) come before
expensive ones, and a model that does not fit is refused before anything is compiled.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.errors import BuildError, ModelError
from edgeq.toolchain.boards import Board, resolve_target

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    opt: str = "-O2"


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


def _update_manifest(path: Path, section: str, value: Any) -> None:
    from edgeq.fileio import atomic_write_json

    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[section] = value
    atomic_write_json(path, doc)


def check_fit(board: Board, *, weight_bytes: int, arena_bytes: int, input_bytes: int) -> None:
    """Refuse, with numbers, a model whose weights or arena alone exceed the board."""
    if weight_bytes > board.flash.length:
        raise BuildError(f"model does not fit {board.name} flash: weights need {weight_bytes} "
                         f"bytes, the board has {board.flash.length} (over by "
                         f"{weight_bytes - board.flash.length}); pick a larger board or a "
                         "smaller model")
    need = arena_bytes + input_bytes + board.stack_bytes
    if need > board.ram.length:
        raise BuildError(f"model does not fit {board.name} RAM: arena {arena_bytes} + input "
                         f"{input_bytes} + stack {board.stack_bytes} = {need} bytes > "
                         f"{board.ram.length} (over by {need - board.ram.length}); pick a "
                         "larger board or a smaller model")


def run_build(req: BuildRequest, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    from edgeq.toolchain.compiler import build_firmware, find_tool

    board = resolve_target(req.target, req.board)
    find_tool("gcc")
    will_run = req.run and (board.emulated or req.port is not None)
    if will_run and board.emulated:
        from edgeq.device.qemu import qemu_command

        qemu_command(board.qemu_machine or "", Path("fw.elf"), 0)  # raises if QEMU is missing
    if req.samples <= 0:
        raise BuildError("--samples must be positive")
    model_file = find_model_file(req.model)
    stem = model_file.stem.removesuffix("_int8")
    out = Path(req.out) if req.out else Path("build") / f"{stem}-{board.name}"
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    tflite = out / "model_int8.tflite"
    report: dict[str, Any] = {"model": str(model_file), "board": board.name, "core": board.core,
                              "build_dir": str(out)}

    # 1. quantize (a .tflite is taken as already quantized)
    float_model = None
    if model_file.suffix == ".tflite":
        say(f"using quantized model {model_file}")
        if model_file.resolve() != tflite.resolve():
            shutil.copyfile(model_file, tflite)
            sidecar = model_file.with_name(model_file.stem + ".edgeq.json")
            if sidecar.is_file():
                shutil.copyfile(sidecar, out / "model_int8.edgeq.json")
    else:
        from edgeq.quantize.ptq import quantize_model

        say(f"quantizing {model_file} to int8")
        quantize_model(model_file, tflite, data=req.data, manifest=manifest)
        float_model = model_file

    # 2. evaluate on the host (float, int8 through TFLM)
    from edgeq.analyze.evaluate import evaluate

    say("evaluating on the host (TFLM reference kernels)")
    ev = evaluate(tflite, float_model=float_model, data=req.data, arena=False)
    _update_manifest(manifest, "evaluate", ev)
    report["accuracy"] = {"metric": ev["metric"]["name"],
                          "float": ev.get("float", {}).get("value"),
                          "int8_host": ev["tflm"]["value"],
                          "host_samples": ev["dataset"]["samples"]}

    # 3. edgeq-rt code generation
    from edgeq.codegen.edgeq_rt import generate_edgeq_rt
    from edgeq.tflite import read_tflite

    say("generating edgeq-rt C")
    gen = generate_edgeq_rt(tflite, out / "edgeq_rt", name=stem)
    info = read_tflite(tflite)
    input_bytes = sum(t.nbytes for t in info.input_tensors)
    _update_manifest(manifest, "codegen", {"runtime": "edgeq", "arena_bytes": gen.arena_bytes,
                                           "weight_bytes": gen.weight_bytes,
                                           "model_hash": gen.model_hash,
                                           "model_name": gen.model_name,
                                           "layers": len(gen.layers)})

    # 4. firmware
    check_fit(board, weight_bytes=gen.weight_bytes, arena_bytes=gen.arena_bytes,
              input_bytes=input_bytes)
    say(f"building firmware for {board.name} ({board.core})")
    fw = build_firmware(board, out / "edgeq_rt", out / "firmware", opt=req.opt,
                        profile_layers=req.per_layer, input_bytes=input_bytes,
                        kernel_sources=gen.kernel_sources)
    size = fw.size.to_dict()
    report["memory"] = {**size, "arena": gen.arena_bytes, "weights": gen.weight_bytes}
    report["firmware"] = {"elf": str(fw.elf), "bin": str(fw.bin), "hex": str(fw.hex),
                          "opt": req.opt, "per_layer": req.per_layer}
    _update_manifest(manifest, "build", {"board": board.name, "memory": report["memory"],
                                         "firmware": report["firmware"]})
    if not will_run:
        report["device"] = {"ran": False, "reason": "--no-run" if not req.run else
                            f"{board.name} is a real board: flash it (edgeq flash) and pass "
                            "--port to validate"}
        return report

    # 5. run on the device and compare with the host oracle, byte for byte
    report["device"] = run_validation(board, fw.elf, tflite, gen.model_hash, req, say)
    report["accuracy"]["int8_device"] = report["device"].pop("device_accuracy")
    report["accuracy"]["int8_host_same_samples"] = report["device"].pop("host_accuracy")
    report["accuracy"]["device_samples"] = report["device"]["validation"]["samples"]
    _update_manifest(manifest, "device", report["device"])
    return report


def run_validation(board: Board, elf: Path, tflite: Path, model_hash: str, req: BuildRequest,
                   say: Callable[[str], None]) -> dict[str, Any]:
    from edgeq.bench.energy import estimate_energy
    from edgeq.bench.stats import latency_stats
    from edgeq.bench.validate import quantized_test_inputs, top1, validate_on_device
    from edgeq.device.session import DeviceSession
    from edgeq.errors import DeviceError
    from edgeq.oracles import run_tflm

    x, y = quantized_test_inputs(tflite, req.data, req.samples)
    expected = run_tflm(tflite, x)
    if board.emulated:
        from edgeq.device.qemu import QemuInstance

        say(f"running {len(x)} samples in QEMU ({board.qemu_machine})")
        with QemuInstance(board.qemu_machine or "", elf) as q:
            session = DeviceSession(q.port, name=f"QEMU {board.qemu_machine}",
                                    alive=q.check_alive)
            session.check_model(model_hash)
            rep = validate_on_device(session, [x], expected)
            layers = _layers(session) if req.per_layer else None
    else:
        from edgeq.device.transport import open_serial

        say(f"running {len(x)} samples on {board.name} at {req.port}")
        port = open_serial(req.port or "", board.uart_baud)
        try:
            session = DeviceSession(port, name=board.name)
            session.check_model(model_hash)
            rep = validate_on_device(session, [x], expected)
            layers = _layers(session) if req.per_layer else None
        finally:
            port.close()
    if not rep.bit_exact:
        raise DeviceError(f"device outputs differ from the TFLM reference on "
                          f"{rep.mismatched_samples}/{rep.samples} samples (first: sample "
                          f"{rep.first_mismatch}, max |diff| {rep.max_abs_diff}); report this "
                          "edgeq-rt bug with the model")
    from edgeq.bench.stats import clock_status

    # ms at the clock the firmware reports running (the board config's operating point, or the
    # reset clock if its clock setup failed at boot)
    clock_ok, clock_note = clock_status(board, session.info.clock_hz)
    if not clock_ok:
        log.warning(clock_note)
    stats = latency_stats(rep.counts, rep.unit, session.info.clock_hz)
    energy = estimate_energy(board, stats.median, rep.unit)
    classification = y is not None and expected[0].reshape(len(x), -1).shape[1] > 1
    out: dict[str, Any] = {
        "ran": True, "validation": rep.to_dict(), "latency": stats.to_dict(),
        "clock_hz": session.info.clock_hz, "clock_ok": clock_ok, "clock": clock_note,
        "energy": energy.to_dict(),
        "device_accuracy": top1(rep.device_outputs, y) if classification and y is not None
        else None,
        "host_accuracy": top1(list(expected[0]), y) if classification and y is not None
        else None,
    }
    if layers is not None:
        out["layers"] = layers
    return out


def _layers(session: Any) -> list[dict[str, Any]]:
    counts = session.layer_counts()
    rows = []
    for i, c in enumerate(counts):
        name, macs = session.layer_info(i)
        rows.append({"index": i, "op": name, "count": c, "macs": macs})
    return rows


def render_build_report(r: dict[str, Any]) -> str:
    """The one report ``edgeq build`` prints."""
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    lines = [f"edgeq build: {r['model']} -> {r['board']} ({r['core']})  [{r['build_dir']}]"]
    acc = r.get("accuracy", {})
    if acc:
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
                  f"rodata {m['rodata']:,}, data {m['data']:,}; weights {m['weights']:,}]",
                  f"  RAM:   {m['ram']:,} / {m['ram_capacity']:,} bytes "
                  f"({100 * m['ram'] / m['ram_capacity']:.2f}%)  [data {m['data']:,}, bss "
                  f"{m['bss']:,} incl. arena {m['arena']:,}, stack {m['stack']:,}]"]
    d = r.get("device", {})
    if not d.get("ran"):
        lines.append(f"  device: not run ({d.get('reason', '')})")
        return "\n".join(lines)
    v, lat, e = d["validation"], d["latency"], d["energy"]
    lines.append(f"  on-device check: {v['samples']} samples, "
                 + ("every output byte equal to the TFLM reference" if v["bit_exact"] else
                    f"{v['mismatched_samples']} samples differ"))
    per = f"{lat['median']:,.0f} {lat['unit']}/inference (median; min {lat['min']:,}, max " \
          f"{lat['max']:,})"
    if lat.get("median_ms") is not None:
        per += f" = {lat['median_ms']:.3f} ms"
    lines.append(f"  latency: {per}")
    if d.get("clock"):
        lines.append(f"  clock: {d['clock']}" if d.get("clock_ok", True)
                     else f"  WARNING: {d['clock']}")
    lines.append(f"  energy: {e['microjoules']:.2f} uJ/inference ({e['note']})")
    if d.get("layers"):
        from edgeq.bench.stats import layer_table, render_layers

        rows = layer_table([x["op"] for x in d["layers"]], [x["macs"] for x in d["layers"]],
                           [x["count"] for x in d["layers"]])
        lines.append(render_layers(rows, lat["unit"]))
    return "\n".join(lines)

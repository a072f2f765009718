"""The ``edgeq`` command line: a thin click layer over the library.

Each command parses its options, calls one library function and prints the result (a table, or
JSON with ``--json``). Library errors (``EdgeqError``) become one line on stderr and exit 1; no
traceback reaches the user unless ``-v`` is given. Heavy imports happen inside commands so that
``edgeq --help`` and ``edgeq --version`` answer instantly.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from edgeq import __version__
from edgeq.errors import EdgeqError

JSON_META = "edgeq.json"  # ctx.meta key: the running command was given --json


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[JSON_META] = bool(value)
    return value


json_option = click.option("--json", "as_json", is_flag=True, callback=_remember_json,
                           help="Print machine-readable JSON (an error too: {\"error\": ...}).")


def report_error(text: str, ctx: click.Context | None = None) -> None:
    """One ``edgeq: error:`` line on stderr; under ``--json`` also ``{"error": text}`` on stdout
    (a script reading stdout gets JSON either way)."""
    click.echo(f"edgeq: error: {text}", err=True)
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(JSON_META):
        click.echo(json.dumps({"error": text}))


def show_progress(as_json: bool) -> bool:
    """Progress bars for a person at a terminal: not under --json, in CI or into a pipe."""
    import os

    return sys.stderr.isatty() and not as_json and not os.environ.get("CI")


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON or through its human renderer."""
    if as_json:
        from edgeq.fileio import _json_default

        click.echo(json.dumps(result, indent=2, sort_keys=True, default=_json_default))
    else:
        click.echo(render(result))


class _EchoHandler(logging.Handler):
    """Log records as ``edgeq: message`` lines on the stderr click is writing to right now;
    debug lines name their module, warnings say so."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno < logging.INFO:
                text = f"{record.name}: {text}"
            elif record.levelno >= logging.WARNING:
                text = f"{record.levelname.lower()}: {text}"
            click.echo(f"edgeq: {text}", err=True)
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    """The library logs under ``edgeq.*``; progress (INFO) is shown, DEBUG only with ``-v``."""
    root = logging.getLogger("edgeq")
    for h in [h for h in root.handlers if isinstance(h, _EchoHandler)]:
        root.removeHandler(h)
    handler = _EchoHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


class EdgeqGroup(click.Group):
    """Maps edgeq's exception tree to a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeqError as exc:
            from edgeq.tfenv import is_verbose

            if is_verbose():
                import traceback

                traceback.print_exc()
            text = " ".join(str(exc).split())  # one line, whatever text the message quotes
            report_error(text, ctx)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("edgeq: interrupted", err=True)
            sys.exit(130)
        except OSError as exc:  # the environment (disk, rights, paths) failed under a stage
            from edgeq.tfenv import is_verbose

            if is_verbose():
                import traceback

                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            report_error(f"{where}{exc.strerror or exc}; check the path, its permissions and "
                         "free disk space", ctx)
            sys.exit(1)


@click.group(cls=EdgeqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeq")
@click.option("-v", "--verbose", is_flag=True,
              help="Show debug logs, TensorFlow logs and full tracebacks.")
def cli(verbose: bool) -> None:
    """edgeq: Keras model -> verified, measured int8 model on a microcontroller."""
    from edgeq.tfenv import set_verbose

    set_verbose(verbose)
    configure_logging(verbose)


# --- quantize / evaluate (foundation) -------------------------------------------------------


def drop_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-drop`` / ``--allow-drop``: the accuracy check after quantize, mixed and compress."""
    f = click.option("--allow-drop", is_flag=True,
                     help="Keep exit status 0 even if accuracy drops more than --max-drop.")(f)
    return click.option("--max-drop", type=click.FloatRange(min=0.0), default=1.0,
                        show_default=True,
                        help="Largest accepted top-1 drop vs float on the test split, in "
                             "percentage points.")(f)


def drop_gate(result: dict[str, Any], tflite: str, model: str, data: str | None,
              max_drop: float, allow_drop: bool) -> None:
    """Measure float vs quantized accuracy; one line and exit 1 if it dropped too far."""
    from edgeq.analyze.drop import check_files

    check = check_files(tflite, model, data=data, max_drop_pt=max_drop)
    result["drop_check"] = None if check is None else check.as_dict()
    if check is None or not check.failed:
        return
    if allow_drop:
        click.echo(f"edgeq: warning: {check.line()}", err=True)
        return
    report_error(check.line())
    sys.exit(1)


def render_drop(r: dict[str, Any]) -> str:
    c = r.get("drop_check")
    if not c:
        return ""
    return (f"\naccuracy on {c['samples']} test samples ({c['oracle']}): float "
            f"{100 * c['float_accuracy']:.1f} %, quantized {100 * c['quantized_accuracy']:.1f} % "
            f"(drop {c['drop_pt']:.1f} pt, limit {c['max_drop_pt']:g} pt)")


def _default_quantized_path(model: str, mode: str) -> str:
    from pathlib import Path

    p = Path(model.rstrip("/"))
    stem = p.name if p.is_dir() else p.stem
    return str(Path("build") / stem / f"{stem}_{mode}.tflite")


def describe_preprocess(pre: dict[str, Any]) -> str:
    """One phrase for what --equalize/--bias-correction did (quantize output and analyze)."""
    parts = []
    if pre.get("folded_batchnorm"):
        parts.append(f"{len(pre['folded_batchnorm'])} BN folded")
    if pre.get("equalize"):
        before, after = pre["weight_spread_before"], pre["weight_spread_after"]
        worst_b = max(before.values(), default=1.0)
        worst_a = max(after.values(), default=1.0)
        parts.append(f"{len(pre['equalized_pairs'])} layer pairs equalized (worst channel "
                     f"spread {worst_b:.0f}x -> {worst_a:.0f}x)")
    if pre.get("bias_correction"):
        parts.append(f"{len(pre['bias_corrected'])} biases corrected")
    return ", ".join(parts)


def _render_quantize(r: dict[str, Any]) -> str:
    out = r["output"]
    if r["quantization_skipped"]:
        how = f"already quantized ({r['mode']}), copied without converting"
    else:
        granularity = "per-channel" if r["per_channel"] else "per-tensor"
        how = f"{r['mode']}, {granularity} weights, {r['io_dtype']} I/O"
        cal = r.get("calibration")
        if cal:
            how += (f", calibrated on {cal['samples']} samples of {cal['dataset']} "
                    f"({cal.get('method', 'minmax')} ranges)")
        pre = r.get("weights_preprocess")
        if pre:
            how += "; " + describe_preprocess(pre)
    lines = [f"wrote {out['path']} ({out['bytes']:,} bytes): {how}"]
    for kind in ("inputs", "outputs"):
        for t in r[kind]:
            q = f" scale {t['scale']:.6g} zero_point {t['zero_point']}" if t["scale"] else ""
            lines.append(f"  {kind[:-1]:<6} {t['dtype']} {tuple(t['shape'])}{q}")
    lines.append(f"manifest {r['manifest']}")
    return "\n".join(lines)


@cli.command()
@click.argument("model", type=str)
@click.option("-o", "--output", type=str, default=None,
              help="Output .tflite [default: build/<model>/<model>_<mode>.tflite].")
@click.option("--data", type=str, default=None,
              help="Calibration dataset: digits, mnist5k, .npz, .npy, image folder "
                   "[default: the model sidecar's dataset].")
@click.option("--mode", type=str, default="int8", show_default=True,
              help="int8 | int16x8 | dynamic (phones only) | float16 (phones only).")
@click.option("--io", "io_dtype", type=str, default=None,
              help="Model input/output type: int8 | int16 | float32 [default: int8, int16 for "
                   "int16x8, float32 for phone modes].")
@click.option("--per-tensor", is_flag=True,
              help="One weight scale per tensor (default: per channel).")
@click.option("--samples", type=int, default=200, show_default=True,
              help="Calibration samples (seeded shuffle of the train split).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--target", type=str, default=None,
              help="Where the model will run: mcu, cortex-m4, a board name, or phone.")
@click.option("--manifest", type=str, default=None,
              help="JSON manifest to write/update [default: <output>.json].")
@click.option("--calibration", type=str, default="minmax", show_default=True,
              help="Activation ranges: minmax | percentile[:99.99] | kl | mse | auto (int8 mode; "
                   "auto picks per tensor what measures best on the model output).")
@click.option("--equalize", is_flag=True,
              help="Cross-layer equalization of ReLU-joined layers (BN folded first); same float "
                   "function, even channel ranges for per-tensor weights.")
@click.option("--bias-correction", is_flag=True,
              help="Subtract the mean error int8 weights add to each output channel.")
@drop_options
@json_option
def quantize(model: str, output: str | None, data: str | None, mode: str, io_dtype: str | None,
             per_tensor: bool, samples: int, seed: int, target: str | None,
             manifest: str | None, calibration: str, equalize: bool, bias_correction: bool,
             max_drop: float, allow_drop: bool, as_json: bool) -> None:
    """Post-training quantization of MODEL (.keras, .h5, SavedModel dir) to a .tflite."""
    from edgeq.quantize.ptq import check_mode, quantize_model
    from edgeq.toolchain.boards import board_names

    boards = board_names()
    check_mode(mode, io_dtype, target, boards)  # fail fast, before loading TensorFlow
    from edgeq.quantize.calibration import calibration_hook

    hook = calibration_hook(model, calibration, data, num_samples=samples, seed=seed,
                            per_channel=not per_tensor)
    result = quantize_model(
        model,
        output or _default_quantized_path(model, mode),
        data=data,
        mode=mode,
        io_dtype=io_dtype,
        per_channel=not per_tensor,
        num_samples=samples,
        seed=seed,
        target=target,
        board_names=boards,
        manifest=manifest,
        progress=sys.stderr.isatty(),
        range_hook=hook,
        equalize=equalize,
        bias_correction=bias_correction,
    )
    if hook is not None:
        result["range_calibration"] = hook.summary()
    if not result["quantization_skipped"]:
        drop_gate(result, result["output"]["path"], model, data, max_drop, allow_drop)

    def render(r: dict[str, Any]) -> str:
        text = _render_quantize(r)
        rc = r.get("range_calibration")
        if rc:
            text += (f"\nactivation ranges: {rc['method']} on {rc.get('calibrated', 0)} tensors, "
                     f"{rc.get('narrowed', 0)} narrower than min-max (verified in the .tflite)")
        return text + render_drop(r)

    emit(result, as_json, render)


@cli.command()
@click.argument("model", type=str)
@click.option("--float", "float_model", type=str, default=None,
              help="The float Keras model MODEL came from (adds float accuracy and the delta).")
@click.option("--data", type=str, default=None,
              help="Dataset whose test split is used [default: the model sidecar's dataset].")
@click.option("--metric", type=str, default=None,
              help="top1 | mse | mae | pixel_accuracy | miou | auc | score [default: from the "
                   "sidecar task: classification -> top1, regression -> mse, segmentation -> "
                   "miou, anomaly -> auc, none -> agreement only].")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N test samples.")
@click.option("--no-arena", is_flag=True, help="Skip the TFLM arena bisection.")
@json_option
def evaluate(model: str, float_model: str | None, data: str | None, metric: str | None,
             limit: int | None, no_arena: bool, as_json: bool) -> None:
    """Accuracy of a quantized MODEL (.tflite) on TFLite Micro and LiteRT reference kernels."""
    from edgeq.analyze.evaluate import evaluate as run_evaluate
    from edgeq.analyze.evaluate import render_report

    report = run_evaluate(
        model,
        float_model=float_model,
        data=data,
        metric=metric,
        limit=limit,
        arena=not no_arena,
        progress=sys.stderr.isatty(),
    )
    emit(report, as_json, render_report)


# --- calibration, QAT, analysis ------------------------------------------------------------


def _render_qat(r: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    m, t = r["ranges_from_training"]
    return (f"wrote {r['output']} ({r['tflite_bytes']:,} bytes): QAT {r['epochs']} epochs, "
            f"{r['rounding']} rounding\n  accuracy float {pct(r['float_accuracy'])}, "
            f"QAT {pct(r['qat_accuracy'])}, int8 {pct(r['int8_accuracy'])}\n"
            f"  activation ranges from training: {m}/{t} tensors (no re-calibration)"
            + (f"\n  still float (not QAT-annotated): {', '.join(r['float_ops'])}"
               if r.get("float_ops") else ""))


@cli.command("train-qat")
@click.argument("model", type=str)
@click.option("--data", type=str, default=None,
              help="Training dataset [default: the model sidecar's dataset].")
@click.option("--epochs", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--rounding", type=click.Choice(["nearest", "stochastic"]), default="nearest",
              show_default=True, help="Weight fake-quant rounding while training.")
@click.option("--layers", type=str, default=None,
              help="Comma-separated layer names for partial QAT [default: all].")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("-o", "--output", type=str, default=None,
              help="Output .tflite [default: build/<model>/<model>_qat.tflite].")
@json_option
def train_qat_cmd(model: str, data: str | None, epochs: int, rounding: str, layers: str | None,
                  lr: float, batch_size: int, output: str | None, as_json: bool) -> None:
    """Quantization-aware training of MODEL (tf-keras or Keras 3), exported as full int8."""
    from edgeq.quantize.qat import run_train_qat

    result = run_train_qat(
        model, output or _default_quantized_path(model, "qat"), data=data, epochs=epochs,
        rounding=rounding, layers=[n.strip() for n in layers.split(",")] if layers else None,
        learning_rate=lr, batch_size=batch_size, progress=sys.stderr.isatty(),
    )
    emit(result, as_json, _render_qat)


@cli.command("analyze")
@click.argument("model", type=str)
@click.option("--float", "float_model", type=str, required=True,
              help="The float Keras model MODEL was quantized from.")
@click.option("--data", type=str, default=None,
              help="Dataset whose test split is used [default: the model sidecar's dataset].")
@click.option("--limit", type=int, default=500, show_default=True, help="Samples to analyze.")
@click.option("--report", "report_dir", type=str, default=None,
              help="Write report.html (plots embedded), PNGs and analysis.json into DIR.")
@click.option("--suggest", is_flag=True, help="Name the layers that hurt most and what to try.")
@json_option
def analyze_cmd(model: str, float_model: str, data: str | None, limit: int,
                report_dir: str | None, suggest: bool, as_json: bool) -> None:
    """Per-layer quantization report of MODEL (.tflite) against its float model."""
    from edgeq.analyze.layers import analyze_files
    from edgeq.analyze.report import format_table, write_report

    analysis = analyze_files(model, float_model, data=data, limit=limit,
                             with_suggestions=suggest)
    result = analysis.as_dict()
    from edgeq.analyze.layers import manifest_section

    section = manifest_section(model)
    pre = section.get("weights_preprocess")
    cal = (section.get("calibration") or {}).get("method")
    result["made_with"] = {"calibration": cal, "weights_preprocess": pre}
    made = ([f"activation ranges: {cal}"] if cal else []) + (
        [f"weights: {describe_preprocess(pre)}"] if pre else [])
    if report_dir:
        result["report"] = str(write_report(analysis, report_dir, title=f"edgeq analyze {model}"))
    if as_json:
        emit(result, True, str)
    else:
        text = format_table(analysis)
        if made:
            text += "\nmade with " + "; ".join(made)
        if report_dir:
            text += f"\nreport {result['report']}"
        click.echo(text)


@cli.command("mixed")
@click.argument("model", type=str)
@click.option("-o", "--output", type=str, required=True, help="Output mixed-precision .tflite.")
@click.option("--data", type=str, default=None,
              help="Labelled dataset [default: the model sidecar's dataset].")
@click.option("--budget-kb", type=float, default=None, help="Weight budget in KB (1 KB = 1024 B).")
@click.option("--budget-fraction", type=float, default=None,
              help="Weight budget as a fraction of the all-int8 weight bytes, e.g. 0.6.")
@click.option("--budget-ram-kb", type=float, default=None,
              help="Activation RAM cap in KB (limits int16 layers).")
@click.option("--int16", is_flag=True, help="Also offer int16 activations (int16x8) per layer.")
@click.option("--objective", type=click.Choice(["kl", "accuracy"]), default="kl",
              show_default=True, help="Per-layer loss the solver minimizes.")
@click.option("--finetune-epochs", type=int, default=3, show_default=True,
              help="STE fine-tuning epochs for int4 layers (0: plain rounding).")
@click.option("--pareto", "pareto_png", type=str, default=None,
              help="Also sweep budgets 0.5x..1.0x and write this size-vs-accuracy PNG.")
@click.option("--rounding", type=click.Choice(["adaround", "nearest"]), default="adaround",
              show_default=True, help="How int4 weights are rounded: learned (AdaRound) or nearest.")
@drop_options
@json_option
def mixed_cmd(model: str, output: str, data: str | None, budget_kb: float | None,
              budget_fraction: float | None, budget_ram_kb: float | None, int16: bool,
              objective: str, finetune_epochs: int, pareto_png: str | None, rounding: str,
              max_drop: float, allow_drop: bool, as_json: bool) -> None:
    """Mixed int4/int8 (/int16) precision of MODEL under a flash budget, built and measured."""
    from edgeq.quantize.mixed import mixed_to_file, render_mixed

    result = mixed_to_file(model, output, data=data, budget_kb=budget_kb,
                           budget_fraction=budget_fraction, ram_budget_kb=budget_ram_kb,
                           int16=int16, objective=objective, finetune_epochs=finetune_epochs,
                           pareto_png=pareto_png, rounding=rounding)
    drop_gate(result, output, model, data, max_drop, allow_drop)
    emit(result, as_json, lambda r: render_mixed(r) + render_drop(r))


@cli.command("compress")
@click.argument("model", type=str)
@click.option("-o", "--output", type=str, required=True, help="Output int8 .tflite.")
@click.option("--data", type=str, default=None,
              help="Labelled dataset [default: the model sidecar's dataset].")
@click.option("--prune", "sparsity", type=float, default=0.75, show_default=True,
              help="Final magnitude-pruning sparsity (0 disables).")
@click.option("--clusters", type=int, default=16, show_default=True,
              help="Weight clusters per layer/channel (0 disables).")
@click.option("--ternary", is_flag=True, help="Ternary weights {-a,0,+a} instead of clustering.")
@click.option("--binary", is_flag=True, help="Binary weights {-a,+a} instead of clustering.")
@click.option("--epochs", type=int, default=4, show_default=True, help="Fine-tuning epochs per step.")
@click.option("--max-epochs", type=click.IntRange(min=1), default=16, show_default=True,
              help="Cap on fine-tuning epochs in total: more are added, two at a time, while the "
                   "int8 model is more than --max-drop below float on held-aside training "
                   "data (the best round there is kept).")
@click.option("--distill/--no-distill", default=True, show_default=True,
              help="Fine-tune towards the original model's class probabilities (knowledge "
                   "distillation) instead of the labels alone.")
@click.option("--blends", type=click.IntRange(min=0), default=1, show_default=True,
              help="[distill] Blended copies of the training split added to the fine-tuning "
                   "set, labelled by the original model (0: the training split only).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the fine-tuning (same seed and data: same bytes).")
@drop_options
@json_option
def compress_cmd(model: str, output: str, data: str | None, sparsity: float, clusters: int,
                 ternary: bool, binary: bool, epochs: int, max_epochs: int, distill: bool,
                 blends: int, seed: int, max_drop: float, allow_drop: bool,
                 as_json: bool) -> None:
    """Prune, cluster (or ternarize/binarize), fine-tune and int8-quantize MODEL; measure it."""
    from edgeq.errors import QuantizeError
    from edgeq.pipeline import render_compress, run_compress

    if ternary and binary:
        raise QuantizeError("choose one of --ternary and --binary")
    grid = "ternary" if ternary else "binary" if binary else None
    result = run_compress(model, output, data=data, sparsity=sparsity,
                          clusters=clusters or None, grid=grid, epochs=epochs,
                          max_drop_pt=max_drop, max_epochs=max_epochs, distill=distill,
                          blends=blends, seed=seed)
    drop_gate(result, output, model, data, max_drop, allow_drop)
    emit(result, as_json, lambda r: render_compress(r) + render_drop(r))

# --- codegen ---------------------------------------------------------------------------------

@cli.command("codegen")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (files appear only if generation succeeds).")
@click.option("--runtime", type=click.Choice(["tflm", "edgeq"]), default="tflm", show_default=True,
              help="tflm: C-array bundle for TFLite Micro; edgeq: edgeq-rt AOT C.")
@click.option("--name", default=None, help="Model name for C identifiers (default: file stem).")
@click.option("--array-name", default=None, help="[tflm] Name of the model byte array.")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True), default=None,
              help="[tflm] Class labels, one per line (default: <model>.edgeq.json sidecar).")
@click.option("--arena-margin", type=float, default=None,
              help="[tflm] Margin over the measured TFLM arena, as a fraction [default: 0.10].")
@click.option("--arena-bytes", type=int, default=None,
              help="[tflm] State the arena size instead of measuring it (checked to allocate).")
@click.option("--vectors", type=int, default=None, help="[tflm] Number of test vectors [default: 3].")
@json_option
def codegen_cmd(model: str, out_dir: str, runtime: str, as_json: bool, **opts: Any) -> None:
    """Generate C/C++ sources for MODEL (.tflite) into OUT."""
    from pathlib import Path

    from edgeq.errors import CodegenError

    given = {k: v for k, v in opts.items() if v is not None}
    if runtime == "edgeq":
        tflm_only = sorted(k for k in given if k != "name")
        if tflm_only:
            flags = ", ".join("--" + k.replace("_", "-") for k in tflm_only)
            raise CodegenError(f"{flags}: only for --runtime tflm; drop them for --runtime edgeq")
        from edgeq.codegen.edgeq_rt import write_edgeq_rt

        result = write_edgeq_rt(model, out_dir, **given).as_dict()
        emit(result, as_json, lambda r: (
            f"edgeq-rt model {r['model_name']} -> {out_dir}: arena {r['arena_bytes']} bytes, "
            f"weights {r['weight_bytes']} bytes"))
        return

    from edgeq.codegen.tflm_bundle import generate_tflm_bundle
    from edgeq.fileio import atomic_output_dir

    labels = None
    if "labels" in given:
        lines = Path(given.pop("labels")).read_text(encoding="utf-8").splitlines()
        labels = [ln.strip() for ln in lines if ln.strip()]
        if not labels:
            raise CodegenError(f"{opts['labels']}: no labels in file; write one label per line")
    if "arena_bytes" in given and "arena_margin" in given:
        raise CodegenError("--arena-bytes and --arena-margin exclude each other; give one")
    kwargs: dict[str, Any] = {"labels": labels}
    for key, target in (("name", "name"), ("array_name", "array_name"),
                        ("arena_margin", "arena_margin"), ("arena_bytes", "arena_bytes"),
                        ("vectors", "num_vectors")):
        if key in given:
            kwargs[target] = given[key]
    plan, files = generate_tflm_bundle(model, **kwargs)
    try:
        with atomic_output_dir(out_dir) as tmp:
            for fname, text in files.items():
                (tmp / fname).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CodegenError(
            f"cannot write {out_dir}: {exc.strerror or exc}; choose a writable output directory"
        ) from None
    summary = plan.summary() | {"out_dir": out_dir, "files": sorted(files)}

    def render(s: dict[str, Any]) -> str:
        return "\n".join([
            f"TFLite Micro bundle for {s['model']} ({s['model_bytes']} bytes) -> {s['out_dir']}",
            f"  ops ({s['resolver_size']}): {', '.join(s['ops'])}",
            f"  arena: {s['arena_bytes']} bytes "
            + (f"(measured minimum {s['arena_measured_bytes']} + {s['arena_margin'] * 100:g}% margin)"
               if s["arena_measured_bytes"] else "(as stated with --arena-bytes)"),
            f"  test vectors: {s['test_vectors']}; files: {', '.join(s['files'])}",
        ])

    emit(summary, as_json, render)

# --- boards, build, flash, bench, run ------------------------------------------------------


def _render_boards(rows: list[dict[str, Any]]) -> str:
    head = (f"{'board':<18} {'core':<11} {'clock':>8} {'operating point':<44} {'flash':>8} "
            f"{'RAM':>8}  {'runs on':<22} flasher")
    lines = [head, "-" * len(head)]
    for r in rows:
        clock = f"{r['clock_hz'] / 1e6:g} MHz"
        runs = f"qemu {r['emulator']}" if r["emulator"] else "real board"
        flasher = f"pyocd {r['pyocd_target']}" if r["pyocd_target"] else "-"
        default = f"  (default for {r['default_for']})" if r["default_for"] else ""
        lines.append(f"{r['name']:<18} {r['core']:<11} {clock:>8} {r['operating_point']:<44} "
                     f"{r['flash_bytes'] // 1024:>5} KB {r['ram_bytes'] // 1024:>5} KB  "
                     f"{runs:<22} {flasher}{default}")
        emu = ", ".join(r["verified_emulation"]) or "nothing"
        hw = ", ".join(r["verified_hardware"]) or "not yet"
        marker = f"; marker {r['marker']}" if r["marker"] else ""
        lines.append(f"{'':<18} verified in emulation (unicorn/QEMU): {emu}; on hardware: {hw}"
                     f"{marker}")
    return "\n".join(lines)


def _operating_point(b: Any) -> str:
    """One phrase: where the clock comes from and what the part needs for it."""
    c = b.clock
    if not c.configured:
        return "fixed (emulator clock)"
    if c.tree == "nrf52":
        return f"{c.source.upper()}, NVMC cache {'on' if c.icache else 'off'}"
    parts = [f"{c.source.upper()} {c.source_hz / 1e6:g} MHz PLL", f"{c.flash_ws} WS", c.voltage]
    if b.max_clock_hz != b.clock_hz:
        parts.append(f"max {b.max_clock_hz / 1e6:g}")
    if not b.clock_setup:
        parts.append("skipped in QEMU")
    return ", ".join(parts)


@cli.command("boards")
@json_option
def boards_cmd(as_json: bool) -> None:
    """List the board configs: core, clock, flash, RAM, emulator, flasher, what is verified."""
    from dataclasses import asdict

    from edgeq.toolchain.boards import list_boards

    rows = [{
        "name": b.name, "core": b.core, "clock_hz": b.clock_hz, "max_clock_hz": b.max_clock_hz,
        "reset_clock_hz": b.reset_clock_hz, "clock": asdict(b.clock),
        "clock_setup_in_firmware": b.clock_setup, "operating_point": _operating_point(b),
        "flash_bytes": b.flash.length, "ram_bytes": b.ram.length, "emulator": b.qemu_machine,
        "pyocd_target": b.pyocd_target, "openocd_config": list(b.openocd_config),
        "uart": b.uart_driver, "uart_clock_hz": b.uart_clock_hz, "counter": b.counter_unit,
        "marker": (f"{b.marker.port}.{b.marker.pin:02d}" if b.marker and b.clock.tree == "nrf52"
                   else f"{b.marker.port}{b.marker.pin}" if b.marker else None),
        "verified_emulation": list(b.verified_emulation),
        "verified_hardware": list(b.verified_hardware),
        "default_for": b.core if b.default_for_core else None, "description": b.description,
    } for b in list_boards()]
    emit(rows, as_json, _render_boards)


@cli.command("build")
@click.argument("model", required=False)
@click.option("--target", help="Core (cortex-m4 -> its default board) or board name.")
@click.option("--board", help="Board name (see `edgeq boards`) or a board .toml path.")
@click.option("--data", help="Dataset for calibration and checks (default: the model's sidecar); "
              "random: check an int8 .tflite on generated inputs (no accuracy).")
@click.option("-o", "--out", help="Build directory (default build/<model>-<board>).")
@click.option("--samples", default=100, show_default=True, help="Test samples run on the device.")
@click.option("--no-run", is_flag=True, help="Stop after the firmware build.")
@click.option("--per-layer", is_flag=True, help="Compile per-layer profiling in and report it.")
@click.option("--port", help="Serial port of a real board to validate on (after `edgeq flash`).")
@click.option("--optimize", type=click.Choice(["speed", "size"]), default="speed",
              show_default=True, help="speed: -O2, every specialised kernel path; size: -Os "
              "-fno-code-hoisting and the kernels' size build (for 64-128 KB flash parts; see "
              "docs/firmware.md).")
@click.option("--opt", default=None, help="Raw compiler optimization flag (e.g. -O3); replaces "
              "the --optimize mode's flags, keeps its kernel paths. [default: the mode's]")
@click.option("--power-model", help="Real board whose power model the emulator's energy "
              "estimate uses (default: the emulated board's reference board).")
@click.option("--protocol", type=click.Choice(["edgeq", "mlperf"]), default="edgeq",
              show_default=True,
              help="What the firmware speaks: edgeq's protocol or the MLPerf Tiny harness.")
@click.option("--mlperf-model", help="Harness model id (m-model-[...]): ic01, kws01, vww01, ad01.")
@click.option("--mlperf-input-offset", type=click.IntRange(-255, 255), default=0,
              show_default=True, help="Added to each db byte (-128: uint8 dataset, int8 model).")
@click.option("--runtime", type=click.Choice(["edgeq", "tflm"]), default="edgeq",
              show_default=True, help="edgeq: edgeq-rt AOT C; tflm: TFLite Micro built from "
              "--tflm-dir (build dir default build/<model>-<board>-tflm).")
@click.option("--tflm-dir", help="[tflm] TFLite Micro source tree (default: $EDGEQ_TFLM_DIR).")
@click.option("--tflm-kernels", type=click.Choice(["cmsis-nn", "reference"]), default=None,
              help="[tflm] Kernels the TFLM library is built with [default: cmsis-nn].")
@json_option
def build_cmd(model: str | None, target: str | None, board: str | None, data: str | None,
              out: str | None, samples: int, no_run: bool, per_layer: bool, port: str | None,
              optimize: str, opt: str | None, power_model: str | None, protocol: str,
              mlperf_model: str | None, mlperf_input_offset: int, runtime: str,
              tflm_dir: str | None, tflm_kernels: str | None, as_json: bool) -> None:
    """Quantize, evaluate, generate C, build the firmware and check it on the (emulated) board.

    With no MODEL, uses models/digits_cnn.
    """
    from edgeq.errors import BuildError
    from edgeq.pipeline import BuildRequest, render_build_report, run_build

    if runtime != "tflm" and (tflm_dir is not None or tflm_kernels is not None):
        raise BuildError("--tflm-dir and --tflm-kernels are for --runtime tflm; add "
                         "--runtime tflm or drop them")
    req = BuildRequest(model=model, target=target, board=board, data=data, out=out,
                       samples=samples, run=not no_run, per_layer=per_layer, port=port, opt=opt,
                       optimize=optimize, power_model=power_model, protocol=protocol,
                       mlperf_model=mlperf_model, mlperf_input_offset=mlperf_input_offset,
                       runtime=runtime,
                       tflm_dir=tflm_dir, tflm_kernels=tflm_kernels or "cmsis-nn",
                       progress=show_progress(as_json))
    report = run_build(req)
    emit(report, as_json, render_build_report)


@cli.command("flash")
@click.option("--board", required=True, help="Board name (see `edgeq boards`).")
@click.option("--probe", help="Debug probe serial/UID when several are connected.")
@click.option("--build-dir", type=click.Path(path_type=str),
              help="Build directory (default: the last `edgeq build` for the board).")
@click.option("--tool", type=click.Choice(["pyocd", "openocd"]), help="Override the flasher.")
def flash_cmd(board: str, probe: str | None, build_dir: str | None, tool: str | None) -> None:
    """Program the built firmware into a real board (pyocd or openocd)."""
    from pathlib import Path

    from edgeq.artifacts import BuildDir, last_build_dir
    from edgeq.device.flash import flash_firmware
    from edgeq.toolchain.boards import resolve_target

    b = resolve_target(board=board)
    d = BuildDir(Path(build_dir)) if build_dir else last_build_dir(b.name)
    cmd = flash_firmware(b, d.elf, probe=probe, tool=tool)
    click.echo(f"flashed {b.name} with {' '.join(cmd)}")


@cli.command("bench")
@click.option("--board", default="mps2-an386", show_default=True, help="Board name.")
@click.option("--port", help="Serial port of the real board.")
@click.option("--emulator", is_flag=True, help="Run the firmware in QEMU.")
@click.option("--runs", default=20, show_default=True, help="Timed inferences.")
@click.option("--warmup", default=1, show_default=True, help="Untimed inferences first.")
@click.option("--per-layer", is_flag=True, help="Per-layer counts with MACs (profiled firmware).")
@click.option("--build-dir", type=click.Path(path_type=str),
              help="Build directory (default: the last `edgeq build` for the board).")
@click.option("--monitor", type=click.Choice(["ppk2", "joulescope"]),
              help="Measure energy with a power monitor (real boards).")
@click.option("--monitor-port", help="Serial port of the PPK2.")
@click.option("--power-model", help="[--emulator] Real board whose power model the energy "
              "estimate uses (default: the emulated board's reference board).")
@click.option("--protocol", type=click.Choice(["edgeq", "mlperf"]), default="edgeq",
              show_default=True, help="Drive edgeq firmware or MLPerf Tiny harness firmware.")
@click.option("--compare", "compare_dirs", multiple=True, type=click.Path(path_type=str),
              help="Another build directory of the same model (e.g. `edgeq build --runtime "
              "tflm`) to bench the same way and tabulate beside this one; repeatable.")
@json_option
def bench_cmd(board: str, port: str | None, emulator: bool, runs: int, warmup: int,
              per_layer: bool, build_dir: str | None, monitor: str | None,
              monitor_port: str | None, power_model: str | None, protocol: str,
              compare_dirs: tuple[str, ...], as_json: bool) -> None:
    """Latency (median/min/max), per-layer table and energy estimate of a built firmware."""
    from pathlib import Path

    from edgeq.artifacts import last_build_dir
    from edgeq.bench.runner import bench, render_bench
    from edgeq.pipeline import profiling_firmware
    from edgeq.toolchain.boards import resolve_target

    b = resolve_target(board=board)
    d = Path(build_dir) if build_dir else last_build_dir(b.name).root
    if compare_dirs:
        from edgeq.bench.compare import compare, render_compare
        from edgeq.errors import DeviceError

        if per_layer or monitor or protocol != "edgeq":
            raise DeviceError("--compare benches latency and memory only; drop --per-layer, "
                              "--monitor and --protocol")
        emit(compare(b, [d, *map(Path, compare_dirs)], port=port, emulator=emulator, runs=runs,
                     warmup=warmup, power_model=power_model), as_json, render_compare)
        return
    if protocol == "mlperf":
        from edgeq.bench.mlperf import bench_harness, render_harness_bench

        if per_layer or monitor:
            from edgeq.errors import DeviceError

            raise DeviceError("--per-layer and --monitor need edgeq firmware; drop them or "
                              "use --protocol edgeq")
        emit(bench_harness(b, build_dir=d, port=port, emulator=emulator, runs=runs,
                           warmup=warmup), as_json, render_harness_bench)
        return
    elf = profiling_firmware(b, d) if per_layer and emulator else None
    emit(bench(b, build_dir=d, elf=elf, port=port, emulator=emulator, runs=runs, warmup=warmup,
               per_layer=per_layer, monitor=monitor, monitor_port=monitor_port,
               power_model=power_model), as_json,
         render_bench)


@cli.command("run")
@click.argument("input_file", type=click.Path(path_type=str))
@click.option("--board", default="mps2-an386", show_default=True, help="Board name.")
@click.option("--port", help="Serial port of the real board.")
@click.option("--emulator", is_flag=True, help="Run the firmware in QEMU.")
@click.option("--build-dir", type=click.Path(path_type=str),
              help="Build directory (default: the last `edgeq build` for the board).")
@json_option
def run_cmd(input_file: str, board: str, port: str | None, emulator: bool,
            build_dir: str | None, as_json: bool) -> None:
    """Run one input (.npy; .npz with x_0, x_1, ... for several inputs) on the device and
    print its outputs."""
    from pathlib import Path

    from edgeq.artifacts import last_build_dir
    from edgeq.bench.runner import run_input
    from edgeq.toolchain.boards import resolve_target

    b = resolve_target(board=board)
    d = Path(build_dir) if build_dir else last_build_dir(b.name).root
    res = run_input(b, Path(input_file), build_dir=d, port=port, emulator=emulator)
    emit(res, as_json, lambda r: "\n".join(
        [f"output{'' if len(r['outputs']) == 1 else f' {k}'}: {o['output']}\nargmax: "
         f"{o['argmax']}" for k, o in enumerate(r["outputs"])]) + f"  ({r['count']:,} {r['unit']})")

# --- export ----------------------------------------------------------------------------------


@cli.group("export")
def export_group() -> None:
    """Export a model for phones."""


@export_group.command("android")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (appears complete or not at all).")
@click.option("--data", default=None, help="Dataset to validate on (default: the model sidecar's).")
@click.option("--variants", default="fp32,fp16,dynamic,int8", show_default=True,
              help="Comma-separated subset of fp32,fp16,dynamic,int8.")
@click.option("--name", default=None, help="Asset file prefix (default: model file stem).")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Class labels, one per line (default: sidecar, then dataset).")
@click.option("--model-version", default="1", show_default=True, help="Version in the metadata.")
@click.option("--description", default=None, help="Model description in the metadata.")
@click.option("--latency-runs", type=int, default=50, show_default=True,
              help="Timed invocations per variant and thread count (median reported).")
@click.option("--max-accuracy-drop", type=float, default=2.0, show_default=True,
              help="Refuse a variant scoring more than this many percentage points below the "
                   "float model (the unit of --max-drop elsewhere).")
@json_option
def export_android_cmd(model: str, out_dir: str, data: str | None, variants: str,
                       name: str | None, labels: str | None, model_version: str,
                       description: str | None, latency_runs: int, max_accuracy_drop: float,
                       as_json: bool) -> None:
    """Android asset bundle for MODEL (Keras), validated with LiteRT on this host."""
    from pathlib import Path

    from edgeq.errors import ExportError
    from edgeq.export.android import check_writable, export_android, variant_table
    from edgeq.fileio import atomic_output_dir

    out = Path(out_dir)
    check_writable(out)
    label_list = None
    if labels is not None:
        label_list = [ln.strip() for ln in Path(labels).read_text(encoding="utf-8").splitlines()
                      if ln.strip()]
        if not label_list:
            raise ExportError(f"{labels}: no labels in file; write one label per line")
    config, files = export_android(
        model, out, data=data, variants=variants, name=name, labels=label_list,
        version=model_version, description=description, latency_runs=latency_runs,
        max_accuracy_drop=max_accuracy_drop,
    )
    try:
        with atomic_output_dir(out) as tmp:
            for rel, blob in files.items():
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(blob)
    except OSError as exc:
        raise ExportError(
            f"cannot write {out}: {exc.strerror or type(exc).__name__}; choose another -o"
        ) from None

    def render(c: dict[str, Any]) -> str:
        return (
            f"Android bundle for {c['name']} -> {out}\n"
            f"validated on {c['dataset']['test_samples']} '{c['dataset']['name']}' test samples; "
            f"latency: {c['latency']['label']} ({c['latency']['cpu']})\n"
            f"float Keras model {c['float_model_accuracy'] * 100:.2f}%; every variant within "
            f"{c['max_accuracy_drop_pt']:g} points of it\n"
            + variant_table(c)
        )

    emit(config, as_json, render)


def main() -> None:
    cli(prog_name="edgeq")


if __name__ == "__main__":
    main()

"""Post-training quantization through ``tf.lite.TFLiteConverter``.

``convert_ptq`` is the pure step (Keras model + calibration samples -> ``.tflite`` bytes) that
tests and other stages call on builder models; ``quantize_model`` is the file-level job behind
``edgeq quantize`` (load, calibrate on the dataset, write ``.tflite`` + JSON manifest atomically).

Modes: ``int8`` (full integer, what microcontrollers run), ``int16x8`` (16-bit activations, 8-bit
weights), and the phone-only ``dynamic`` (weights-only) and ``float16``, which TFLite Micro
cannot run: asking for them with a microcontroller target is refused up front. (In ``dynamic``
mode TFLite keeps weight tensors of fewer than 1024 values in float32.)

Calibration and quantization (the converter's native steps on the converted model) run in a
child process (``quantize.native_steps``), so a converter crash is one line. Custom calibration
(``range_hook``) runs between the two: the calibrator gives tensors min/max, the hook may edit
those ranges, then the MLIR quantizer finishes exactly as the one-step converter would.
Recurrent layers are prepared first (``quantize.recurrent``: static length, fused LSTM, GRU
unrolled).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Collection, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import DataError, QuantizeError, first_line
from edgeq.quantize.native_steps import collect_samples, isolate_native_steps

log = logging.getLogger(__name__)

MODES = ("int8", "int16x8", "dynamic", "float16")
PHONE_ONLY_MODES = ("dynamic", "float16")
IO_DTYPES = ("int8", "int16", "float32")
PHONE_TARGETS = ("phone", "android", "host", "cpu")
DEFAULT_CALIBRATION_SAMPLES = 200

# bytes of a calibrated float model (tensors carry min/max) -> edited bytes
RangeHook = Callable[[bytes], bytes]
Representative = Callable[[], Iterator[list[np.ndarray]]]


def default_io_dtype(mode: str) -> str:
    return {"int8": "int8", "int16x8": "int16"}.get(mode, "float32")


def check_mode(mode: str, io_dtype: str | None = None, target: str | None = None,
               board_names: Collection[str] = ()) -> str:
    """Validate a mode/I-O/target combination; returns the effective I/O dtype.

    ``board_names`` are the board configs the caller knows (the CLI passes the toolchain's), so
    a board name counts as a microcontroller target without quantize reaching into the build
    stage.
    """
    if mode not in MODES:
        raise QuantizeError(f"unknown quantization mode '{mode}'; choose one of {', '.join(MODES)}")
    # validates the name too
    mcu = is_mcu_target(target, board_names) if target is not None else False
    if mcu and mode in PHONE_ONLY_MODES:
        raise QuantizeError(
            f"mode '{mode}' is phones only: TFLite Micro rejects "
            f"{'hybrid (dynamic-range)' if mode == 'dynamic' else 'float16'} models; "
            f"use --mode int8 (or int16x8) for target '{target}'"
        )
    io = io_dtype or default_io_dtype(mode)
    if io not in IO_DTYPES:
        raise QuantizeError(f"unknown I/O type '{io}'; choose one of {', '.join(IO_DTYPES)}")
    allowed = {
        "int8": ("int8", "float32"),
        "int16x8": ("int16", "float32"),
        "dynamic": ("float32",),
        "float16": ("float32",),
    }[mode]
    if io not in allowed:
        raise QuantizeError(
            f"mode '{mode}' cannot have {io} model I/O; use --io {' or --io '.join(allowed)}"
        )
    return io


def is_mcu_target(target: str, board_names: Collection[str] = ()) -> bool:
    """``mcu``, a Cortex-M core or one of ``board_names`` is a microcontroller; phones are
    not."""
    t = target.strip().lower()
    if t in PHONE_TARGETS:
        return False
    if t == "mcu" or t.startswith("cortex-m"):
        return True
    if t in {b.lower() for b in board_names}:
        return True
    raise QuantizeError(f"unknown target '{target}'; use mcu, cortex-m<N>, a board name, or phone")


def is_keras3_model(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "keras"


def _input_name(tensor: Any, index: int) -> str:
    name = str(getattr(tensor, "name", "") or "").split(":")[0]
    return name or f"input_{index}"


def _keyed_outputs(outputs: Any) -> Any:
    """Several outputs as ``{"output_000": ..., ...}``: the converter orders a dict's outputs by
    key, so the ``.tflite`` keeps the Keras model's output order (a list comes out permuted
    for tf-keras models)."""
    if isinstance(outputs, list | tuple) and len(outputs) > 1:
        return {f"output_{k:03d}": v for k, v in enumerate(outputs)}
    return outputs


def keras_converter(tf: Any, model: Any) -> Any:
    """A ``TFLiteConverter`` for a tf-keras or Keras 3 model: batch 1, variables frozen in.

    Both kinds are traced into a concrete function with batch 1: a dynamic batch adds
    SHAPE/STRIDED_SLICE/PACK before every Reshape/Flatten, which microcontroller runtimes
    refuse. The trackable is the tf-keras model itself, or for Keras 3 the ``tf.function`` (the
    Keras 3 model is not a TF trackable; passing it leaves READ_VARIABLE ops in the file).
    """
    from edgeq.quantize.recurrent import prepare_recurrent
    from edgeq.quantize.upsampling import prepare_upsampling

    model = prepare_recurrent(prepare_upsampling(model))
    # named after the model's inputs: the converter orders a function's inputs by name, and the
    # representative dataset yields them in the model's order
    specs = [tf.TensorSpec([1, *t.shape[1:]], t.dtype, name=_input_name(t, i))
             for i, t in enumerate(model.inputs)]
    fn = tf.function(lambda *xs: _keyed_outputs(model(xs[0] if len(xs) == 1 else list(xs),
                                                      training=False)))
    concrete = fn.get_concrete_function(*specs)
    trackable = fn if is_keras3_model(model) else model
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable)


def convert_ptq(
    keras_model: Any,
    representative: Representative | None,
    *,
    mode: str = "int8",
    io_dtype: str | None = None,
    per_channel: bool = True,
    range_hook: RangeHook | None = None,
    progress: bool = False,
) -> bytes:
    """Convert a Keras model (tf-keras or Keras 3) to ``.tflite`` bytes.

    ``representative`` yields ``[sample]`` (batch 1, float32, already normalized) and is required
    for ``int8``/``int16x8``. ``range_hook`` (``int8`` only) edits the calibrated ranges.
    """
    io = check_mode(mode, io_dtype)
    if mode in ("int8", "int16x8") and representative is None:
        raise QuantizeError(f"mode '{mode}' needs calibration data; pass a dataset (--data)")
    if range_hook is not None and mode != "int8":
        raise QuantizeError(f"custom calibration supports mode int8 only, not '{mode}'")
    from edgeq.tfenv import import_tf, quiet_native_output

    tf = import_tf()
    tf_io = {"int8": tf.int8, "int16": tf.int16, "float32": tf.float32}[io]
    try:
        conv = keras_converter(tf, keras_model)
    except QuantizeError:
        raise
    except Exception as exc:
        raise QuantizeError(f"the converter cannot read this model: {first_line(exc, 200)}") from None
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv._experimental_disable_per_channel = not per_channel
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    elif mode in ("int8", "int16x8"):
        ops = tf.lite.OpsSet
        conv.target_spec.supported_ops = [
            ops.TFLITE_BUILTINS_INT8
            if mode == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        conv.inference_input_type = tf_io
        conv.inference_output_type = tf_io
    isolation: Any = contextlib.nullcontext()
    if representative is not None and mode in ("int8", "int16x8"):
        samples = collect_samples(representative)
        conv.representative_dataset = lambda: iter(samples)
        # calibration and quantization run in the worker process: a native crash is one line
        isolation = isolate_native_steps(conv, samples, range_hook=range_hook, progress=progress)
    try:
        with isolation, quiet_native_output():
            result = conv.convert()
    except QuantizeError:
        raise
    except Exception as exc:
        raise QuantizeError(
            f"TFLite converter failed in mode '{mode}': {first_line(exc, 200)}"
        ) from None
    return bytes(result)


# --- the file-level job -------------------------------------------------------------------------


def tool_versions() -> dict[str, str]:
    versions = {}
    for pkg in ("edgeq", "tensorflow", "tf-keras", "keras", "ai-edge-litert", "tflite-micro"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return versions


def io_quant_params(tflite_bytes: bytes) -> dict[str, list[dict[str, Any]]]:
    """Name, shape, dtype, scale and zero point of every model input and output."""
    from edgeq.tflite import read_tflite_bytes

    info = read_tflite_bytes(tflite_bytes)

    def describe(t: Any) -> dict[str, Any]:
        q = t.quant
        return {
            "name": t.name,
            "shape": list(t.shape),
            "dtype": t.dtype,
            "scale": float(q.scale[0]) if q is not None else None,
            "zero_point": int(q.zero_point[0]) if q is not None else None,
        }

    return {
        "inputs": [describe(t) for t in info.input_tensors],
        "outputs": [describe(t) for t in info.output_tensors],
    }


def detect_mode(tflite_bytes: bytes) -> str:
    """Best guess of how an existing ``.tflite`` was quantized (for prequantized inputs)."""
    from edgeq.tflite import read_tflite_bytes

    info = read_tflite_bytes(tflite_bytes)
    act = {info.tensors[o].dtype for op in info.operators for o in op.outputs}
    weights = {t.dtype for t in info.tensors if t.is_constant}
    if "int16" in act and "int8" in weights:
        return "int16x8"
    if "float16" in weights:
        return "float16"
    if act <= {"float32", "int32"} and "int8" in weights:
        return "dynamic"
    if "int8" in act:
        return "int8"
    return "float32"


def quantize_model(
    model_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    data: str | None = None,
    mode: str = "int8",
    io_dtype: str | None = None,
    per_channel: bool = True,
    num_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    seed: int = 0,
    target: str | None = None,
    board_names: Collection[str] = (),
    manifest: str | os.PathLike[str] | None = None,
    range_hook: RangeHook | None = None,
    progress: bool = False,
    equalize: bool = False,
    bias_correction: bool = False,
) -> dict[str, Any]:
    """Quantize a model file and write ``output`` (.tflite), its sidecar and a JSON manifest.

    The manifest (default ``<output stem>.json``; an existing one gets its ``quantize`` section
    replaced) records the source hash, mode, calibration, I/O quantization and tool versions.
    A float32 or hybrid ``.tflite`` asked for ``int8`` is quantized with ai-edge-quantizer
    (``quantize.tflite_ptq``); any other ``.tflite`` is copied and described, not converted.
    ``board_names`` (see ``check_mode``) lets ``target`` name a board config.
    Returns the manifest's ``quantize`` section.
    """
    from edgeq.artifacts import read_manifest
    from edgeq.data import Normalization, load_dataset, representative_dataset
    from edgeq.fileio import atomic_write_bytes, atomic_write_json, sha256_file
    from edgeq.models import load_model, sidecar_path

    out = Path(output)
    if out.suffix != ".tflite":
        raise QuantizeError(f"{out}: output must end in .tflite")
    io = check_mode(mode, io_dtype, target, board_names)
    loaded = load_model(model_path)
    meta = dict(loaded.meta)
    calibration: dict[str, Any] | None = None
    preprocess: dict[str, Any] | None = None
    detected = detect_mode(loaded.model) if loaded.kind == "tflite" else None
    requantize = detected in ("float32", "dynamic") and mode == "int8"
    if loaded.kind == "tflite" and (equalize or bias_correction):
        raise QuantizeError(f"{loaded.path}: --equalize/--bias-correction change float "
                            "weights; pass the float Keras model, not a .tflite")
    if loaded.kind == "tflite" and not requantize:
        tflite_bytes = loaded.model
        effective_mode = str(detected)
        if effective_mode == "float16" and mode == "int8":
            raise QuantizeError(
                f"{loaded.path}: a float16 .tflite cannot be re-quantized to int8; pass the "
                "float model (.keras/.h5/SavedModel) or a float32 .tflite"
            )
        if target is not None and effective_mode in PHONE_ONLY_MODES:
            check_mode(effective_mode, None, target, board_names)
        skipped = True
    else:
        skipped = False
        effective_mode = mode
        rep = None
        spec = data or meta.get("dataset")
        if mode in ("int8", "int16x8"):
            if not spec:
                raise QuantizeError(
                    f"{loaded.path}: no calibration data; pass --data (e.g. --data digits)"
                )
            ds = load_dataset(spec, input_shape=tuple(loaded.input_shape[1:]))
            if len(ds.x_train) == 0:
                raise DataError(f"dataset '{ds.name}' has no training samples to calibrate on")
            shapes = loaded.input_shapes or (loaded.input_shape,)
            if ds.num_inputs != len(shapes):
                raise DataError(f"dataset '{ds.name}' holds {ds.num_inputs} input array(s) but "
                                f"{loaded.path} has {len(shapes)} inputs; save one array per "
                                "input as x_0, x_1, ... in an .npz")
            rep = representative_dataset(
                ds.x_train,
                input_shape=loaded.input_shape,
                extra=ds.extra_train,
                extra_shapes=tuple(shapes[1:]),
                normalization=Normalization.from_meta(meta),
                num_samples=num_samples,
                seed=seed,
                source=f"dataset '{ds.name}'",
            )
            method = str(getattr(range_hook, "method", "minmax")) if mode == "int8" else "minmax"
            calibration = {"dataset": ds.name, "samples": len(rep), "seed": seed, "split": "train",
                           "method": method}
            meta.setdefault("dataset", spec)
        if requantize:
            from edgeq.quantize.tflite_ptq import quantize_float_tflite

            if io != "int8" or not per_channel or range_hook is not None:
                raise QuantizeError(
                    f"{loaded.path}: a {detected} .tflite is quantized with int8 I/O, "
                    "per-channel weights and min/max calibration only; drop --io, "
                    "--per-tensor and --calibration"
                )
            assert rep is not None
            log.debug("quantizing %s .tflite %s to int8 with ai-edge-quantizer", detected,
                      loaded.path)
            tflite_bytes = quantize_float_tflite(loaded.model, str(detected), rep.samples)
            calibration = {**(calibration or {}), "engine": "ai-edge-quantizer",
                           "source_mode": detected}
        else:
            log.debug("converting %s: mode %s, %s I/O, per_channel=%s", loaded.path, mode, io,
                      per_channel)
            keras_model = loaded.model
            if equalize or bias_correction:
                keras_model, preprocess = _preprocess_weights(
                    keras_model, rep, equalize=equalize, bias_correction=bias_correction,
                    per_channel=per_channel)
            tflite_bytes = convert_ptq(
                keras_model,
                rep,
                mode=mode,
                io_dtype=io,
                per_channel=per_channel,
                range_hook=range_hook,
                progress=progress,
            )
    section = {
        "source": {
            "path": str(loaded.path),
            "kind": loaded.kind,
            "sha256": sha256_file(loaded.path),
        },
        "mode": effective_mode,
        "quantization_skipped": skipped,
        "io_dtype": io_quant_params(tflite_bytes)["inputs"][0]["dtype"],
        "per_channel": per_channel if not skipped else None,
        "calibration": calibration,
        "weights_preprocess": preprocess,
        "target": target,
        **io_quant_params(tflite_bytes),
        "output": {
            "path": str(out),
            "bytes": len(tflite_bytes),
            "sha256": _sha256(tflite_bytes),
        },
        "tool_versions": tool_versions(),
    }
    manifest_path = Path(manifest) if manifest is not None else out.with_suffix(".json")
    doc = read_manifest(manifest_path)  # an unreadable one fails before anything is written
    doc["quantize"] = section
    atomic_write_bytes(out, tflite_bytes)
    if meta:
        atomic_write_json(sidecar_path(out), meta)
    atomic_write_json(manifest_path, doc)
    section["manifest"] = str(manifest_path)
    return section


def _preprocess_weights(
    model: Any, rep: Any, *, equalize: bool, bias_correction: bool, per_channel: bool
) -> tuple[Any, dict[str, Any]]:
    """Cross-layer equalization and/or bias correction of the float weights before converting."""
    from edgeq.quantize.equalize import correct_bias
    from edgeq.quantize.equalize import equalize as run_equalize

    report = None
    if equalize:
        model, report = run_equalize(model)
    if bias_correction:
        if rep is None:
            raise QuantizeError("--bias-correction needs calibration data; use --mode int8")
        model, report = correct_bias(model, rep.samples, per_channel=per_channel, report=report)
    assert report is not None
    return model, {"equalize": equalize, "bias_correction": bias_correction,
                   **report.as_dict()}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()

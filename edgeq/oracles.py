"""The reference interpreters that decide what "correct" means for an int8 model.

A shared helper (like ``edgeq.tflite``), not a stage: quantization (sensitivity, calibration
checks) runs models through it as much as analysis and benchmarking do.

TFLite Micro's Python interpreter (``tflite_micro``) runs the same reference kernels, with the
same (double) rounding, as a TFLM firmware: it is the bit-exact oracle for microcontrollers.
LiteRT with ``OpResolverType.BUILTIN_REF`` is the second opinion; its FULLY_CONNECTED rounds
once, so FC outputs may differ from TFLM by +-1. LiteRT's default (XNNPACK) is never used here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgeq.errors import AnalyzeError, ModelError, first_line
from edgeq.oracle_worker import isolated
from edgeq.tfenv import quiet_native_output
from edgeq.tflite import read_tflite_bytes

__all__ = ["isolated", "litert_ref_interpreter", "run_litert_ref", "run_tflm", "tflm_allocates",
           "tflm_min_arena", "tflm_supports"]

TFLM_ALIGNMENT = 16

ModelSource = bytes | str | os.PathLike[str]


def _model_bytes(model: ModelSource) -> bytes:
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    p = Path(model)
    if not p.is_file():
        raise ModelError(f"{p}: no such .tflite file")
    return p.read_bytes()


def _as_samples(inputs: np.ndarray | Sequence[np.ndarray], n_inputs: int) -> list[list[np.ndarray]]:
    """Normalize inputs to ``samples[k][input_index]`` with batch dimension 1 each."""
    if isinstance(inputs, np.ndarray):
        if n_inputs != 1:
            raise AnalyzeError(f"model has {n_inputs} inputs; pass a list of arrays, one per input")
        per_input = [inputs]
    else:
        per_input = list(inputs)
        if len(per_input) != n_inputs:
            raise AnalyzeError(
                f"model has {n_inputs} inputs but {len(per_input)} arrays were given"
            )
    count = per_input[0].shape[0]
    return [[arr[k : k + 1] for arr in per_input] for k in range(count)]


def _stack(outputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    if not outputs:
        return []
    return [np.concatenate([o[j] for o in outputs], axis=0) for j in range(len(outputs[0]))]


def _source(model: ModelSource) -> str:
    return "the model" if isinstance(model, bytes | bytearray) else str(model)


def _validated(data: bytes, model: ModelSource) -> None:
    """Refuse a corrupt flatbuffer here, before any native interpreter parses it."""
    read_tflite_bytes(data, source=_source(model))


# what to do when TFLM has no kernel for an op a common Keras layer lowers to
_MISSING_KERNEL_FIX = {
    "TILE": "TILE comes from tf.tile, or from a Keras 3 UpSampling2D in a model edgeq cannot "
            "rebuild in tf-keras: use layers.Resizing(h, w, interpolation=\"nearest\") "
            "(RESIZE_NEAREST_NEIGHBOR) or Conv2DTranspose instead",
}


def _tflm_interpreter(data: bytes, arena_size: int | None = None):  # noqa: ANN202
    """TFLM's interpreter for ``data``; when an op has no TFLM kernel, the RuntimeError names the
    op, the Keras layer it came from and what to use instead (TFLM only prints that natively)."""
    import tempfile

    from tflite_micro.python.tflite_micro import runtime

    with tempfile.TemporaryFile() as log_file:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log_file.fileno(), 2)
        try:
            return runtime.Interpreter.from_bytes(data, arena_size=arena_size)
        except (RuntimeError, ValueError) as exc:
            os.dup2(saved, 2)
            log_file.seek(0)
            missing = _missing_kernel(data, log_file.read().decode("utf-8", "replace"))
            if missing:
                raise RuntimeError(missing) from None
            raise exc from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _missing_kernel(data: bytes, native_log: str) -> str | None:
    """"TFLite Micro has no kernel for TILE (op 4 TILE (Keras layer '...'))...", or None."""
    import re

    from edgeq.tflite.layer_names import op_layer_name

    found = re.search(r"Didn't find op for builtin opcode '(\w+)'", native_log)
    if not found:
        return None
    opcode = found.group(1)
    info = read_tflite_bytes(data)
    index = next((k for k, op in enumerate(info.operators) if op.opcode == opcode), None)
    layer = op_layer_name(info, index) if index is not None else None
    where = (f" (op {index}" + (f", Keras layer '{layer}')" if layer else ")")
             if index is not None else "")
    fix = _MISSING_KERNEL_FIX.get(opcode, "rebuild the model without the layer that produces it")
    return (f"TFLite Micro has no kernel for {opcode}{where}, so neither TFLM nor firmware "
            f"checked against it can run this model; {fix}")


def run_tflm(
    model: ModelSource,
    inputs: np.ndarray | Sequence[np.ndarray],
    *,
    progress: bool = False,
) -> list[np.ndarray]:
    """Run every sample through TFLite Micro; returns one stacked array per model output.

    ``inputs`` are in the model's input dtype (already quantized), first axis = samples.
    Runs in the oracle worker process (see :func:`isolated`).
    """
    data = _model_bytes(model)
    _validated(data, model)
    return isolated(_run_tflm_here, data, inputs, source=_source(model), progress_desc="TFLM"
                    if progress else None)


def _run_tflm_here(
    data: bytes,
    inputs: np.ndarray | Sequence[np.ndarray],
    report: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    info = read_tflite_bytes(data)
    try:
        interp = _tflm_interpreter(data, arena_size=max(len(data) * 10, 1 << 20))
    except (RuntimeError, ValueError) as exc:
        why = _first_line(exc, 400)
        raise AnalyzeError(why if why.startswith("TFLite Micro") else
                           f"TFLite Micro cannot load this model: {why}") from None
    samples = _as_samples(inputs, len(info.inputs))
    outs: list[list[np.ndarray]] = []
    for k in range(len(samples)):
        if report is not None:
            report(k, len(samples))
        for i, x in enumerate(samples[k]):
            want = np.dtype(info.input_tensors[i].dtype) if info.input_tensors[i].dtype else None
            if want is not None and x.dtype != want:
                raise AnalyzeError(
                    f"input {i} is {x.dtype} but the model expects {want}; quantize the input first"
                )
            interp.set_input(np.ascontiguousarray(x), i)
        try:
            with quiet_native_output():
                interp.invoke()
        except RuntimeError as exc:
            msg = f"TFLite Micro failed to run the model: {_first_line(exc)}"
            raise AnalyzeError(msg) from None
        outs.append([np.array(interp.get_output(j)) for j in range(len(info.outputs))])
        interp.reset()
    return _stack(outs)


def litert_ref_interpreter(data: bytes):  # noqa: ANN201
    """A LiteRT interpreter on the reference kernels (never XNNPACK), tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        with quiet_native_output():
            interp = Interpreter(
                model_content=data,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                experimental_preserve_all_tensors=True,
            )
            interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        msg = f"LiteRT (reference kernels) refuses this model: {_first_line(exc)}"
        raise AnalyzeError(msg) from None
    return interp


def run_litert_ref(
    model: ModelSource,
    inputs: np.ndarray | Sequence[np.ndarray],
    *,
    progress: bool = False,
) -> list[np.ndarray]:
    """Run every sample through LiteRT's reference kernels; one stacked array per output.

    Runs in the oracle worker process (see :func:`isolated`).
    """
    data = _model_bytes(model)
    _validated(data, model)
    return isolated(_run_litert_ref_here, data, inputs, source=_source(model),
                    progress_desc="LiteRT-ref" if progress else None)


def _run_litert_ref_here(
    data: bytes,
    inputs: np.ndarray | Sequence[np.ndarray],
    report: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    interp = litert_ref_interpreter(data)
    in_details = interp.get_input_details()
    out_details = interp.get_output_details()
    samples = _as_samples(inputs, len(in_details))
    outs: list[list[np.ndarray]] = []
    for k in range(len(samples)):
        if report is not None:
            report(k, len(samples))
        for d, x in zip(in_details, samples[k], strict=True):
            if x.dtype != d["dtype"]:
                raise AnalyzeError(
                    f"input is {x.dtype} but the model expects {np.dtype(d['dtype'])}; "
                    "quantize the input first"
                )
            interp.set_tensor(d["index"], np.ascontiguousarray(x.reshape(d["shape"])))
        interp.invoke()
        outs.append([np.array(interp.get_tensor(d["index"])) for d in out_details])
    return _stack(outs)


def tflm_min_arena(model: ModelSource, *, upper: int | None = None) -> int:
    """Smallest arena TFLM can allocate this model in, by bisection (16-byte aligned).

    The Python interpreter has no arena getter, but allocation fails below the minimum, so the
    boundary is found exactly. Runs in the oracle worker, which forks once per probed size.
    """
    data = _model_bytes(model)
    _validated(data, model)
    return int(isolated(_tflm_min_arena_here, data, upper, source=_source(model)))


def _tflm_min_arena_here(data: bytes, upper: int | None) -> int:

    def fits(size: int) -> bool:
        return _allocates_in_child(data, size)

    hi = upper or max(64 * 1024, len(data) * 4)
    while not fits(hi):
        hi *= 2
        if hi > (1 << 31):
            raise AnalyzeError("TFLite Micro cannot allocate this model with any arena size")
    lo = 0  # invariant: lo does not fit (or is 0), hi fits
    while hi - lo > TFLM_ALIGNMENT:
        mid = (lo + hi) // 2
        mid -= mid % TFLM_ALIGNMENT
        if mid <= lo:
            break
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return -(-hi // TFLM_ALIGNMENT) * TFLM_ALIGNMENT


def _allocates_in_child(data: bytes, size: int) -> bool:
    """Try one arena size in a forked child: some too-small arenas crash TFLM's Python
    interpreter with a segfault (seen with an FC autoencoder at 6-9 KB) instead of raising."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: only TFLM code runs here, then _exit without cleanup
        code = 1
        try:
            _tflm_interpreter(data, arena_size=size)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def tflm_supports(model: ModelSource) -> tuple[bool, str]:
    """Whether TFLM can load (allocate) the model; the reason when it cannot."""
    data = _model_bytes(model)
    return tflm_allocates(data, max(len(data) * 10, 1 << 20), source=_source(model))


def tflm_allocates(model: ModelSource, arena_size: int, *, source: str | None = None
                   ) -> tuple[bool, str]:
    """Whether TFLM allocates the model in ``arena_size`` bytes; the reason when it cannot
    (a native crash while allocating counts as a refusal)."""
    data = _model_bytes(model)
    src = source or _source(model)
    read_tflite_bytes(data, source=src)
    try:
        ok, reason = isolated(_tflm_allocates_here, data, arena_size, source=src)
    except AnalyzeError as exc:
        return False, str(exc)
    return bool(ok), str(reason)


def _tflm_allocates_here(data: bytes, arena_size: int) -> tuple[bool, str]:
    try:
        _tflm_interpreter(data, arena_size=arena_size)
    except (RuntimeError, ValueError) as exc:
        return False, _first_line(exc, 400)
    return True, ""


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """First line of a native error; LiteRT joins one complaint per tensor on a single line
    (``...Was 3.Tensor 36 has ...``), so only the first sentence of that is kept."""
    return first_line(exc, None).split(".Tensor ")[0][:limit]

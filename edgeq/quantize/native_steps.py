"""The converter's native steps on a converted model run in the worker process.

After the MLIR converter has turned the traced graph into a float ``.tflite``, TFLite's converter
runs that model through its C++ calibration interpreter and then its C++ quantizer. Those are
the steps that crash on models they do not handle (a Keras 3 LSTM's TensorList loop: SIGSEGV,
exit 139 with nothing printed) and would take the CLI down with them. ``isolate_native_steps``
replaces the converter's quantize step with one that does the same calls, with the same
arguments, in ``edgeq.oracle_worker``'s child process: a crash there is one line naming the step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeq.errors import AnalyzeError, QuantizeError

log = logging.getLogger(__name__)

Samples = list[list[np.ndarray]]
ADVICE = ("the converter cannot handle this model; if it has recurrent layers, give them a "
          "fixed sequence length (Input((T, features)))")


def collect_samples(rep: Callable[[], Iterator[list[np.ndarray]]]) -> Samples:
    """The representative dataset as a list (it crosses a process boundary)."""
    return [[np.asarray(a) for a in item] for item in rep()]


@contextlib.contextmanager
def isolate_native_steps(conv: Any, samples: Samples, *,
                         range_hook: Callable[[bytes], bytes] | None = None,
                         progress: bool = False) -> Iterator[None]:
    """Within the block, ``conv.convert()`` calibrates and quantizes in the worker
    (``range_hook`` edits the calibrated ranges in between, in this process).

    ``convert()`` runs with stderr silenced (``tfenv.quiet_native_output``); the calibration
    progress bar and the hook's own output are drawn on the stderr the block started with.
    """
    from edgeq.oracle_worker import isolated

    sys.stderr.flush()
    real_stderr = os.dup(2)

    @contextlib.contextmanager
    def visible() -> Iterator[None]:
        sys.stderr.flush()
        silenced = os.dup(2)
        os.dup2(real_stderr, 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(silenced, 2)
            os.close(silenced)

    def run(fn: Callable[..., Any], *args: Any, step: str, desc: str | None) -> Any:
        try:
            with visible():
                return isolated(fn, *args, source="the TFLite converter", what=f"{step} step",
                                advice=ADVICE, progress_desc=desc if progress else None)
        except AnalyzeError as exc:
            raise QuantizeError(str(exc)) from None

    def quantize(result: Any, input_type: Any, output_type: Any, activations_type: Any,
                 bias_type: Any, allow_float: bool, enable_variable_quantization: bool,
                 debug_options: Any) -> bytes:
        options = {
            "input_type": input_type.name,
            "output_type": output_type.name,
            "activations_type": activations_type.name,
            "bias_type": bias_type.name,
            "allow_float": bool(allow_float),
            "enable_variable_quantization": bool(enable_variable_quantization),
            "disable_per_channel": bool(conv._experimental_disable_per_channel),
            "disable_per_channel_dense": bool(
                conv._experimental_disable_per_channel_quantization_for_dense_layers),
            "debug_options": debug_options.SerializeToString(),
        }
        model = bytes(result)
        if range_hook is None or options["activations_type"] == "int16":
            return run(_calibrate_and_quantize_here, model, samples, options, step="calibration",
                       desc="calibrating")
        calibrated = run(_calibrate_here, model, samples, step="calibration", desc="calibrating")
        with visible():  # the hook's own progress
            edited = range_hook(calibrated)
        return run(_quantize_here, edited, options, step="quantization", desc=None)

    conv._experimental_calibrate_only = False
    conv._quantize = quantize
    try:
        yield
    finally:
        os.close(real_stderr)


# --- the child side (edgeq.oracle_worker calls these by name) -----------------------------------


def _failed(step: str, exc: Exception) -> QuantizeError:
    from edgeq.errors import first_line

    return QuantizeError(f"the TFLite converter's {step} step failed: {first_line(exc, 200)}")


def _calibrate_here(model: bytes, samples: Samples,
                    report: Callable[[int, int], None] | None = None) -> bytes:
    try:
        return _calibrate(model, samples, report)
    except Exception as exc:  # noqa: BLE001 - any converter failure is one line
        raise _failed("calibration", exc) from None


def _reporting(samples: Samples, report: Callable[[int, int], None] | None
               ) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The representative-dataset generator the calibrator pulls, reporting progress per sample."""
    def gen() -> Iterator[list[np.ndarray]]:
        for k, item in enumerate(samples):
            if report is not None:
                report(k, len(samples))
            yield item

    return gen


def _calibrate(model: bytes, samples: Samples,
               report: Callable[[int, int], None] | None = None) -> bytes:
    from edgeq.tfenv import import_tf, quiet_native_output

    import_tf()
    from tensorflow.lite.python.optimize import calibrator

    with quiet_native_output():
        model = calibrator.add_intermediate_tensors(model)
        return bytes(calibrator.Calibrator(model).calibrate(_reporting(samples, report)))


def _quantize_here(calibrated: bytes, options: dict[str, Any]) -> bytes:
    try:
        return _quantize(calibrated, options)
    except Exception as exc:  # noqa: BLE001
        raise _failed("quantization", exc) from None


def _quantize(calibrated: bytes, options: dict[str, Any]) -> bytes:
    from edgeq.tfenv import import_tf, quiet_native_output

    tf = import_tf()
    from tensorflow.lite.python import convert

    with quiet_native_output():
        return bytes(convert.mlir_quantize(
            calibrated,
            options["disable_per_channel"],
            input_data_type=tf.as_dtype(options["input_type"]),
            output_data_type=tf.as_dtype(options["output_type"]),
            enable_variable_quantization=options["enable_variable_quantization"],
            disable_per_channel_for_dense_layers=options["disable_per_channel_dense"],
            debug_options_str=options["debug_options"],
        ))


def _calibrate_and_quantize_here(model: bytes, samples: Samples, options: dict[str, Any],
                                 report: Callable[[int, int], None] | None = None) -> bytes:
    """What TFLite's converter does after conversion: the MLIR quantizer for int8, the
    calibrator's own quantizer for 16-bit activations."""
    if options["activations_type"] != "int16":
        return _quantize_here(_calibrate_here(model, samples, report), options)
    try:
        return _calibrate_and_quantize16(model, samples, options, report)
    except Exception as exc:  # noqa: BLE001
        raise _failed("calibration", exc) from None


def _calibrate_and_quantize16(model: bytes, samples: Samples, options: dict[str, Any],
                              report: Callable[[int, int], None] | None) -> bytes:
    from edgeq.tfenv import import_tf, quiet_native_output

    tf = import_tf()
    from tensorflow.lite.python.optimize import calibrator

    with quiet_native_output():
        model = calibrator.add_intermediate_tensors(model)
        return bytes(calibrator.Calibrator(model).calibrate_and_quantize(
            _reporting(samples, report), tf.as_dtype(options["input_type"]), tf.as_dtype(options["output_type"]),
            options["allow_float"], tf.as_dtype(options["activations_type"]),
            tf.as_dtype(options["bias_type"]),
            disable_per_channel=options["disable_per_channel"],
            disable_per_channel_quantization_for_dense_layers=options[
                "disable_per_channel_dense"],
        ))

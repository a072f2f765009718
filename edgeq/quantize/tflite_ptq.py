"""Full-integer quantization of a float or hybrid ``.tflite`` (model-zoo files, other tools'
exports), where there is no Keras model to give the TFLite converter.

ai-edge-quantizer works on the flatbuffer itself: static int8 (activations calibrated on the
representative samples, per-channel int8 weights, int8 I/O) — what TFLite Micro runs. A hybrid
(dynamic-range) file is first turned back into a float one by dequantizing its int8 weights, so
both start from float weights; a float16 file is refused (its weights went through DEQUANTIZE
ops, not a form the quantizer reads).
"""

from __future__ import annotations

import logging

import numpy as np

from edgeq.errors import QuantizeError

log = logging.getLogger(__name__)

REQUANTIZABLE = ("float32", "dynamic")  # detect_mode() names this module can quantize


def dequantize_weights(tflite_bytes: bytes) -> bytes:
    """Hybrid -> float: every constant int8 tensor becomes float32 ``scale * (q - zero_point)``
    (per channel along its quantized dimension)."""
    from edgeq.tflite.reader import load_model_t, schema, serialize_model_t

    s = schema()
    model_t = load_model_t(tflite_bytes)
    changed = 0
    for sg in model_t.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            buf = model_t.buffers[t.buffer] if t.buffer else None
            if t.type != s.TensorType.INT8 or buf is None or buf.data is None:
                continue
            if q is None or q.scale is None or len(q.scale) == 0:
                continue
            shape = tuple(int(d) for d in t.shape)
            values = np.frombuffer(bytes(bytearray(buf.data)), np.int8).reshape(shape)
            scale = np.asarray(q.scale, np.float32)
            zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32)
            if len(scale) > 1:
                bshape = [1] * len(shape)
                bshape[q.quantizedDimension] = len(scale)
                scale, zp = scale.reshape(bshape), zp.reshape(bshape)
            real = ((values.astype(np.float32) - zp) * scale).astype("<f4")
            buf.data = np.frombuffer(real.tobytes(), np.uint8)
            t.type = s.TensorType.FLOAT32
            t.quantization = None
            changed += 1
    log.debug("dequantized %d int8 weight tensors to float32", changed)
    return serialize_model_t(model_t)


def quantize_float_tflite(tflite_bytes: bytes, mode: str, calibration: np.ndarray) -> bytes:
    """Static int8 (int8 I/O) of a float32 or hybrid ``.tflite`` calibrated on ``calibration``
    (samples without the batch axis, float32, normalized as the model expects)."""
    from edgeq.quantize.sensitivity import _silence_python_output
    from edgeq.tfenv import import_tf, quiet_native_output

    if mode not in REQUANTIZABLE:
        raise QuantizeError(
            f"cannot re-quantize a {mode} .tflite to int8; pass the float model "
            "(.keras/.h5/SavedModel) or a float32 .tflite"
        )
    _check_fixed_batch(tflite_bytes)
    float_bytes = dequantize_weights(tflite_bytes) if mode == "dynamic" else tflite_bytes
    key = _single_input_name(float_bytes)
    import_tf()
    from ai_edge_quantizer import quantizer

    q = quantizer.Quantizer(bytearray(float_bytes))
    q.add_static_config(".*", "*", activation_num_bits=8, weight_num_bits=8)
    calib = {"serving_default": [{key: s[np.newaxis].astype(np.float32)} for s in calibration]}
    try:
        with quiet_native_output(), _silence_python_output():
            result = q.quantize(q.calibrate(calib, num_threads=1), enable_progress_report=False)
    except (ValueError, RuntimeError, KeyError) as exc:
        from edgeq.errors import first_line

        raise QuantizeError(
            f"ai-edge-quantizer cannot quantize this .tflite to int8: {first_line(exc, 160)}; "
            "quantize the float Keras model instead"
        ) from None
    return bytes(result.quantized_model)


def _check_fixed_batch(tflite_bytes: bytes) -> None:
    """A dynamic batch (-1 in the input's shape signature) computes every Reshape's shape at run
    time (SHAPE/STRIDED_SLICE/PACK on float tensors), which stays float after quantization."""
    from edgeq.tflite import read_tflite_bytes

    for t in read_tflite_bytes(tflite_bytes).input_tensors:
        if t.shape_signature is not None and -1 in t.shape_signature:
            raise QuantizeError(
                f".tflite input '{t.name}' has a dynamic shape {list(t.shape_signature)} "
                "(-1), which leaves float SHAPE/PACK ops a microcontroller cannot run; re-export "
                "it with batch 1 (or pass the Keras model, which edgeq converts with batch 1)"
            )


def _single_input_name(float_bytes: bytes) -> str:
    from edgeq.oracles import litert_ref_interpreter

    sig = litert_ref_interpreter(float_bytes).get_signature_list().get("serving_default")
    if not sig:
        raise QuantizeError(
            ".tflite has no 'serving_default' signature, which int8 calibration needs; "
            "re-export it with a signature (TFLiteConverter does by default)"
        )
    if len(sig["inputs"]) != 1:
        raise QuantizeError(
            f".tflite has {len(sig['inputs'])} inputs; int8 calibration of a .tflite handles "
            "one input: quantize the float Keras model instead"
        )
    return str(sig["inputs"][0])

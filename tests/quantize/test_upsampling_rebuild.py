"""Keras 3 UpSampling2D is rebuilt in tf-keras before conversion, so the .tflite holds
RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (which TFLite Micro runs) rather than TILE."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.quantize import qat as Q
from edgeq.quantize.ptq import convert_ptq
from edgeq.quantize.upsampling import prepare_upsampling
from edgeq.tflite import read_tflite_bytes


def _two_outputs(interpolation: str, gate: bool = False):  # noqa: ANN202
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    k.utils.set_random_seed(1)
    i = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c")(i)
    u = k.layers.UpSampling2D(2, interpolation=interpolation, name="up")(h)
    if gate:  # a layer the tf-keras rebuild does not know
        u = k.layers.Multiply(name="gate")([u, u])
    seg = k.layers.Conv2D(2, 1, name="seg")(u)
    side = k.layers.Dense(3, name="side")(k.layers.Flatten()(h))
    return k.Model(i, [seg, side])


def _opcodes(model) -> set[str]:  # noqa: ANN001
    rng = np.random.default_rng(0)

    def rep():  # noqa: ANN202
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 8, 8, 1)).astype(np.float32)]

    return {op.opcode for op in read_tflite_bytes(convert_ptq(model, rep)).operators}


@pytest.mark.parametrize(("interpolation", "op"), [("nearest", "RESIZE_NEAREST_NEIGHBOR"),
                                                   ("bilinear", "RESIZE_BILINEAR")])
def test_keras3_upsampling2d_is_rebuilt_and_converts_to_resize(interpolation: str, op: str) -> None:
    model = _two_outputs(interpolation)
    rebuilt = prepare_upsampling(model)
    assert type(rebuilt).__module__.split(".")[0] == "tf_keras"
    x = np.random.default_rng(5).uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    for a, b in zip(model(x), rebuilt(x), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)
    ops = _opcodes(model)
    assert op in ops and "TILE" not in ops, ops


def test_keras3_model_the_rebuild_cannot_express_keeps_its_tile() -> None:
    model = _two_outputs("nearest", gate=True)
    assert prepare_upsampling(model) is model
    assert "TILE" in _opcodes(model)


def test_rebuild_check_compares_every_output() -> None:
    """A rebuild whose second output differs is refused, not only one whose first does."""
    model = _two_outputs("nearest")
    rebuilt = Q.keras3_to_tf_keras(model)
    side = rebuilt.get_layer("side")
    kernel, bias = side.get_weights()
    side.set_weights([kernel, bias + 1e-3])
    with pytest.raises(QuantizeError, match="differs by 0.001"):
        Q._check_same(model, rebuilt, None)

"""AdaRound: learned rounding gives a lower layer-output error than round-to-nearest."""

from __future__ import annotations

import numpy as np

from edgeq.quantize.adaround import adaround_layer


def _dense(seed: int = 0):  # noqa: ANN202
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    inp = keras.Input((48,))
    layer = keras.layers.Dense(16, name="d")
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.2, (48, 16)).astype(np.float32), np.zeros(16, np.float32)])
    return model, layer


def test_adaround_beats_nearest_on_a_layer_by_an_independent_measure() -> None:
    model, layer = _dense()
    rng = np.random.default_rng(1)
    # correlated, non-negative inputs (post-ReLU-like): where nearest rounding errors add up
    x = np.maximum(rng.normal(0.5, 1.0, (512, 48)) @ rng.normal(0, 0.3, (48, 48)), 0)
    x = x.astype(np.float32)
    w = layer.get_weights()[0].astype(np.float64)
    res = adaround_layer(layer, x[:256], bits=4, iterations=500)
    # the result is exactly on the per-channel 4-bit grid and keeps each channel's scale
    scale = np.abs(w).max(axis=0) / 7
    q = res.kernel / scale
    np.testing.assert_allclose(q, np.round(q), atol=1e-4)
    assert np.abs(np.round(q)).max() <= 7
    np.testing.assert_allclose(np.abs(res.kernel).max(axis=0), np.abs(w).max(axis=0), rtol=1e-6)
    # held-out inputs, numpy matmul: the oracle is not the code's own loss
    held = x[256:].astype(np.float64)
    nearest = np.clip(np.round(w / scale), -7, 7) * scale
    err_near = np.mean((held @ nearest - held @ w) ** 2)
    err_ada = np.mean((held @ res.kernel.astype(np.float64) - held @ w) ** 2)
    assert err_ada < 0.7 * err_near
    assert 0.0 < res.flipped < 0.5

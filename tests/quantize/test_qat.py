"""QAT: tf-keras through TF-MOT, Keras 3 through an exact tf-keras rebuild, stochastic rounding."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.quantize import qat as Q


def _keras3_zoo():
    """A Keras 3 functional model using every layer type the rebuild supports."""
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    k.utils.set_random_seed(3)
    L = k.layers
    inp = k.Input((12, 12, 3), name="img")
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(8, 3, activation="relu", name="c1")(x)
    x = L.BatchNormalization(name="bn")(x)
    a = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    a = L.ReLU(6.0, name="r6")(a)
    b = L.SeparableConv2D(8, 3, padding="same", name="sep")(x)
    b = L.Activation("relu6", name="act")(b)
    x = L.Add(name="add")([a, b])
    x = L.Concatenate(name="cat")([x, a])
    x = L.MaxPooling2D(2, name="mp")(x)
    y = L.AveragePooling2D(2, name="ap")(x)
    g = L.GlobalAveragePooling2D(name="gap")(x)
    gm = L.GlobalMaxPooling2D(name="gmp")(x)
    y = L.Flatten(name="flat")(y)
    y = L.Reshape((-1,), name="rs")(y)
    y = L.Concatenate(name="cat2")([y, g, gm])
    y = L.Dropout(0.2, name="drop")(y)
    out = L.Dense(5, activation="softmax", name="dense")(y)
    model = k.Model(inp, out)
    # non-trivial BN statistics so the copy of moving mean/variance is exercised
    bn = model.get_layer("bn")
    g_, b_, m_, v_ = bn.get_weights()
    bn.set_weights([g_ * 1.5, b_ + 0.1, m_ + 0.2, v_ * 2.0])
    return model


def test_keras3_rebuild_matches_outputs_within_1e5() -> None:
    model = _keras3_zoo()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 12, 12, 3)).astype(np.float32)
    rebuilt = Q.keras3_to_tf_keras(model, x)
    assert type(rebuilt).__module__.startswith("tf_keras")
    diff = np.max(np.abs(np.asarray(model(x)) - rebuilt(x).numpy()))
    assert diff <= 1e-5
    assert {layer.name for layer in rebuilt.layers} >= {"c1", "bn", "dw", "sep", "cat2", "dense"}


def test_keras3_sequential_rebuild() -> None:
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    model = k.Sequential([k.Input((6,)), k.layers.Dense(4, activation="relu"), k.layers.Dense(2)])
    rebuilt = Q.keras3_to_tf_keras(model)
    x = np.ones((2, 6), np.float32)
    assert np.allclose(np.asarray(model(x)), rebuilt(x).numpy(), atol=1e-5)


def test_unsupported_keras3_layer_is_named() -> None:
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    inp = k.Input((4,))
    out = k.layers.LayerNormalization(name="ln_block")(k.layers.Dense(4)(inp))
    with pytest.raises(QuantizeError) as exc:
        Q.keras3_to_tf_keras(k.Model(inp, out))
    msg = str(exc.value)
    assert "ln_block" in msg and "LayerNormalization" in msg and "\n" not in msg


def test_qat_refuses_a_tflite() -> None:
    with pytest.raises(QuantizeError, match="not a .tflite"):
        Q.as_tf_keras(b"TFL3", "tflite")


def test_unknown_rounding_is_refused() -> None:
    with pytest.raises(QuantizeError, match="nearest or stochastic"):
        Q.qat_model(object(), "banker")


def test_stochastic_rounding_is_unbiased() -> None:
    from edgeq.tfenv import import_tf

    tf = import_tf()
    vals = np.array([0.3, -1.7, 2.5, 5.0, -0.05], np.float32)
    x = tf.constant(np.tile(vals, (20000, 1)))
    r = Q.stochastic_round(x, seed=1).numpy()
    assert set(np.unique(r - np.floor(vals))) <= {0.0, 1.0}  # only floor or ceil
    assert np.allclose(r.mean(axis=0), vals, atol=0.02)
    assert np.all(r[:, 3] == 5.0)  # integers never move


def test_stochastic_weight_quantizer_is_unbiased_and_straight_through() -> None:
    from edgeq.tfenv import import_tf, import_tf_keras

    tf = import_tf()
    tk = import_tf_keras()
    import tensorflow_model_optimization as tfmot

    base = tfmot.quantization.keras.quantizers.LastValueQuantizer(8, False, True, True)
    quant = Q.stochastic_quantizer(base)
    holder = tk.layers.Dense(1)
    holder.build((None, 1))
    w = tf.constant([[1.0, 0.3 / 127, -0.62 / 127, 0.0049]])  # absmax 1 -> step 1/127
    weights = quant.build(w.shape, "kernel", holder)
    draws = np.stack([quant(w, True, weights).numpy() for _ in range(3000)])
    assert np.allclose(draws.mean(axis=0), w.numpy(), atol=3e-4)
    assert len(np.unique(draws[:, 0, 1])) == 2  # both neighbours occur
    nearest = quant(w, False, weights).numpy()  # inference: ordinary nearest rounding
    assert np.allclose(nearest * 127, np.round(w.numpy() * 127), atol=1e-4)
    with tf.GradientTape() as tape:
        v = tf.Variable(w)
        loss = tf.reduce_sum(quant(v, True, weights) * tf.constant([[1.0, 2.0, 3.0, 4.0]]))
    assert np.allclose(tape.gradient(loss, v).numpy(), [[1.0, 2.0, 3.0, 4.0]])


def _mnist():
    from edgeq.data.datasets import load_dataset

    ds = load_dataset("mnist5k")
    return ds.x_train / 255.0, ds.y_train, ds.x_test / 255.0, ds.y_test


def _ptq_accuracy(model, x_rep, x, y) -> float:
    from edgeq.quantize.calibration import convert_calibrated

    tfl, _ = convert_calibrated(model, x_rep[:200], "minmax")
    return float(np.mean(Q.int8_predict(tfl, x).argmax(1) == y))


def _check(res: Q.QatResult, ptq: float) -> None:
    assert res.int8_accuracy >= ptq
    assert res.int8_accuracy >= res.float_accuracy - 0.005
    matched, total = res.ranges_from_training
    assert total > 0 and matched == total  # the converter used the trained ranges
    assert res.tflite[4:8] == b"TFL3" and res.float_ops == []  # full integer


@pytest.mark.slow
def test_qat_tf_keras_mnist5k_nearest_and_stochastic() -> None:
    from edgeq.models.builders import mnist_cnn

    xtr, ytr, xte, yte = _mnist()
    model = mnist_cnn(0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=12, batch_size=32, verbose=0)
    ptq = _ptq_accuracy(model, xtr, xte, yte)
    for rounding in ("nearest", "stochastic"):
        res = Q.train_qat(model, xtr, ytr, xte, yte, epochs=3, rounding=rounding, learning_rate=5e-4)
        assert res.rounding == rounding and len(res.history) == 3
        _check(res, ptq)


@pytest.mark.slow
def test_qat_keras3_mnist5k() -> None:
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    k.utils.set_random_seed(0)
    L = k.layers
    inp = k.Input((28, 28, 1))
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = k.Model(inp, L.Dense(10, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    xtr, ytr, xte, yte = _mnist()
    model.fit(xtr, ytr, epochs=12, batch_size=32, verbose=0)
    tkm = Q.as_tf_keras(model, "keras3", xte[:16])
    ptq = _ptq_accuracy(tkm, xtr, xte, yte)
    res = Q.train_qat(tkm, xtr, ytr, xte, yte, epochs=3, rounding="stochastic",
                      learning_rate=5e-4)
    _check(res, ptq)


def test_partial_qat_quantizes_only_the_named_layers() -> None:
    from edgeq.models.builders import digits_cnn

    qm = Q.qat_model(digits_cnn(0), layers=["conv1", "logits"])
    wrapped = {layer.layer.name for layer in qm.layers if hasattr(layer, "layer")}
    assert {"conv1", "logits"} <= wrapped
    assert not wrapped & {"dw2", "pw2"}  # the conv layers not named stay float
    from helpers_calibration import trained_digits_cnn

    model, ds = trained_digits_cnn(3)
    res = Q.train_qat(model, ds.x_train[:300], ds.y_train[:300], ds.x_test[:100],
                      ds.y_test[:100], epochs=1, layers=["conv1", "pw2"])
    assert res.ranges_from_training[0] == res.ranges_from_training[1] > 0
    assert any("FULLY_CONNECTED" in op for op in res.float_ops)  # not named: stays float
    assert not any("CONV_2D" in op for op in res.float_ops)
    with pytest.raises(QuantizeError, match="no layer named 'nope'"):
        Q.qat_model(digits_cnn(0), layers=["nope"])


def _keras3_digits_file(tmp_path):
    import json

    from edgeq.data.datasets import load_dataset
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    k.utils.set_random_seed(0)
    L = k.layers
    inp = k.Input((8, 8, 1))
    x = L.Flatten()(L.MaxPooling2D(2)(L.Conv2D(8, 3, padding="same", activation="relu")(inp)))
    model = k.Model(inp, L.Dense(10, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ds = load_dataset("digits")
    model.fit(ds.x_train / 16.0, ds.y_train, epochs=10, verbose=0)
    path = tmp_path / "d3.keras"
    model.save(path)
    (tmp_path / "d3.edgeq.json").write_text(json.dumps(
        {"dataset": "digits", "normalization": {"mean": [0.0], "std": [16.0]}}))
    return path


@pytest.mark.slow
def test_cli_train_qat_on_a_keras3_file(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from edgeq.cli import cli
    from edgeq.tflite import read_tflite

    src = _keras3_digits_file(tmp_path)
    out = tmp_path / "q.tflite"
    r = CliRunner().invoke(cli, ["train-qat", str(src), "--epochs", "1", "--rounding",
                                 "stochastic", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert res["kind"] == "keras3" and res["rounding"] == "stochastic"
    assert res["int8_accuracy"] >= res["float_accuracy"] - 0.02
    m, t = res["ranges_from_training"]
    assert m == t > 0
    model = read_tflite(out)
    assert model.input_tensors[0].dtype == "int8" and model.output_tensors[0].dtype == "int8"


def test_cli_train_qat_refuses_an_unsupported_keras3_layer(tmp_path) -> None:
    from click.testing import CliRunner

    from edgeq.cli import cli
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    inp = k.Input((4,))
    bad = k.Model(inp, k.layers.LayerNormalization(name="ln")(k.layers.Dense(4)(inp)))
    path = tmp_path / "bad.keras"
    bad.save(path)
    r = CliRunner().invoke(cli, ["train-qat", str(path), "--data", "digits",
                                 "-o", str(tmp_path / "o.tflite")])
    assert r.exit_code == 1
    assert "'ln' (LayerNormalization)" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.tflite").exists()


def _keras3_conv1d_zoo():
    """A Keras 3 raw-audio / U-Net-ish model: Conv1D and the other layers added for issue 13."""
    from edgeq.tfenv import import_keras3

    k = import_keras3()
    k.utils.set_random_seed(5)
    L = k.layers
    inp = k.Input((32, 2), name="wave")
    x = L.ZeroPadding1D(1, name="pad1")(inp)
    x = L.Conv1D(6, 3, strides=2, activation="relu", name="c1")(x)
    x = L.Conv1D(6, 3, padding="causal", dilation_rate=2, name="c2")(x)
    x = L.LeakyReLU(0.1, name="lrelu")(x)
    a = L.MaxPooling1D(2, name="mp1")(x)
    a = L.UpSampling1D(2, name="up1")(a)
    x = L.Add(name="add")([x, a])
    g = L.GlobalAveragePooling1D(name="gap1")(x)
    gm = L.GlobalMaxPooling1D(name="gmp1")(L.AveragePooling1D(2, name="ap1")(x))
    img = L.Reshape((4, 4, 1), name="to_img")(L.Dense(16, name="d16")(L.Concatenate()([g, gm])))
    img = L.UpSampling2D(2, interpolation="bilinear", name="up2")(img)
    img = L.Conv2DTranspose(3, 3, strides=2, padding="same", name="tconv")(img)
    y = L.Dense(4, name="logits")(L.Flatten(name="flat")(img))
    return k.Model(inp, L.Softmax(name="sm")(y))


def test_keras3_conv1d_rebuild_matches_and_quantizes() -> None:
    model = _keras3_conv1d_zoo()
    x = np.random.default_rng(2).uniform(-1, 1, (8, 32, 2)).astype(np.float32)
    rebuilt = Q.keras3_to_tf_keras(model, x)
    assert [type(layer).__name__ for layer in rebuilt.layers].count("Conv1D") == 2
    np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(model(x)), atol=1e-5)
    qat = Q.qat_model(rebuilt)
    names = {layer.name for layer in qat.layers}
    assert {"quant_c1", "quant_c2", "quant_tconv"} <= names, sorted(names)
    assert np.asarray(qat(x)).shape == (8, 4)
    Q.init_activation_ranges(qat, rebuilt, x)
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(Q.convert_qat(qat))
    assert Q.float_ops(Q.convert_qat(qat)) == []
    convs = [op for op in m.operators if op.opcode == "CONV_2D"]
    assert len(convs) == 2  # the two Conv1D, with int8 filters
    assert all(m.tensors[op.inputs[1]].dtype == "int8" for op in convs)


def test_tf_mot_refusal_is_printed_whole() -> None:
    """TF-MOT's message ends with its own advice; it used to be cut at 200 characters."""
    from edgeq.tfenv import import_tf_keras

    tk = import_tf_keras()
    inp = tk.Input((8,))
    model = tk.Model(inp, tk.layers.LayerNormalization(name="ln")(tk.layers.Dense(4)(inp)))
    with pytest.raises(QuantizeError) as err:
        Q.qat_model(model)
    msg = str(err.value)
    assert "\n" not in msg and "..." not in msg
    assert "Layer ln:" in msg and "is not supported" in msg
    assert "`quantize_annotate_layer` API." in msg and "--layers" in msg

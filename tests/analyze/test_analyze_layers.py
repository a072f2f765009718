"""Per-layer analysis: SQNR per op, model-level figures, the 6.02·b line, the HTML report."""

from __future__ import annotations

import base64
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_calibration import trained_digits_cnn, with_4bit_weights

from edgeq.analyze import layers as L
from edgeq.analyze.report import format_table, write_report
from edgeq.cli import cli
from edgeq.errors import AnalyzeError
from edgeq.quantize import numerics as nx
from edgeq.quantize.calibration import convert_calibrated


@pytest.fixture(scope="module")
def digits():
    model, ds = trained_digits_cnn()
    tfl, _ = convert_calibrated(model, ds.x_train[:200], "minmax")
    return model, ds, tfl


@pytest.mark.parametrize("snr_db", [-3.0, 0.0, 12.5, 40.0, 75.0])
def test_sqnr_of_signals_with_a_known_snr(snr_db: float) -> None:
    """A sine plus noise scaled to a chosen power ratio: SQNR is 10·log10(P_signal / P_noise),
    checked against numpy and against the SNR the signal was built with."""
    rng = np.random.default_rng(int(snr_db * 10) + 100)
    t = np.arange(20_000)
    signal = 3.0 * np.sin(2 * np.pi * t / 97.0) + 0.5
    noise = rng.normal(0.0, 1.0, t.size)
    noise *= math.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10) / np.mean(noise**2))
    expected = 10 * np.log10(np.mean(signal**2) / np.mean(noise**2))
    assert expected == pytest.approx(snr_db, abs=1e-9)
    assert nx.sqnr_db(signal, signal + noise) == pytest.approx(snr_db, abs=1e-6)
    # analyze() accumulates sum(signal^2) and sum(noise^2) over samples and layers
    assert L._sqnr(float(np.sum(signal**2)), float(np.sum(noise**2))) == pytest.approx(
        snr_db, abs=1e-6)
    assert nx.sqnr_db(signal, signal) == math.inf
    assert nx.sqnr_db(np.zeros(4), np.ones(4)) == -math.inf
    # the accumulated form: equal powers are 0 dB, no noise is +inf, no signal is -inf
    assert L._sqnr(1.0, 1.0) == 0.0 and L._sqnr(3.0, 0.0) == math.inf
    assert L._sqnr(0.0, 2.0) == -math.inf and L._sqnr(1.0, 0.5) == pytest.approx(3.0103, 1e-4)


def test_sanity_line_matches_6db_per_bit() -> None:
    rows = L.sanity_6db()
    assert [r["bits"] for r in rows] == [4, 8, 16]
    for r in rows:
        assert abs(r["sqnr_db"] - 6.0206 * r["bits"]) < 0.5
        assert r["theory_db"] == pytest.approx(20 * math.log10(2 ** r["bits"]))
        assert r["delta_db"] == pytest.approx(r["sqnr_db"] - r["theory_db"])


def test_per_layer_sqnr_is_finite_and_4bit_layer_is_worse_than_its_8bit_twin(digits) -> None:
    model, ds, tfl = digits
    x, y = ds.x_test[:200], ds.y_test[:200]
    a8 = L.analyze(tfl, model, x, y)
    pw = next(s for s in a8.layers if s.tensor.startswith("digits_cnn/pw2"))
    a4 = L.analyze(with_4bit_weights(tfl, pw.op_index), model, x, y)
    assert all(math.isfinite(s.sqnr_db) and s.sqnr_db > 10 for s in a8.layers)
    assert all(math.isfinite(s.sqnr_db) for s in a4.layers)
    by_op8 = {s.op_index: s for s in a8.layers}
    by_op4 = {s.op_index: s for s in a4.layers}
    # layers before the edited one are identical; the 4-bit layer loses > 10 dB
    for i in range(pw.op_index):
        assert by_op4[i].sqnr_db == pytest.approx(by_op8[i].sqnr_db)
    assert by_op4[pw.op_index].sqnr_db < by_op8[pw.op_index].sqnr_db - 10
    assert by_op8[pw.op_index].weight_bits == 8 and by_op4[pw.op_index].weight_bits == 4
    assert a8.worst(1)[0].op_index != pw.op_index or len(a8.layers) == 1
    # the suggestion names the 4-bit layer first
    tips = L.suggest(a4)
    assert f"op {pw.op_index} " in tips[0] and "4 bits" in tips[0]
    # ... by the Keras layer it came from (read from the tensor name), not only the op index
    assert pw.keras_layer == "pw2" and "Keras layer 'pw2'" in tips[0]
    named = [s.keras_layer for s in a8.layers if s.keras_layer is not None]
    assert set(named) <= {layer.name for layer in model.layers}
    assert len(named) >= len(a8.layers) - 1, [(s.op, s.tensor) for s in a8.layers]  # output
    # model level
    m = a8.model
    assert m.samples == 200 and m.int8_accuracy > 0.8
    assert abs(m.int8_accuracy - m.float_accuracy) < 0.05
    assert m.top1_agreement > 0.95 and 0 <= m.kl_softmax < 0.1 and m.output_sqnr_db > 20
    assert a4.model.output_sqnr_db < m.output_sqnr_db
    # the last layer's tensor is the model output: its per-layer SQNR (accumulated sums) must be
    # the SQNR of the outputs, which test_sqnr_of_signals_with_a_known_snr pins to numpy
    assert a8.layers[-1].sqnr_db == pytest.approx(m.output_sqnr_db, abs=0.01)
    assert a4.layers[-1].sqnr_db == pytest.approx(a4.model.output_sqnr_db, abs=0.01)
    # observed range and scale are consistent; softmax output has the fixed scale
    for s in a8.layers:
        assert s.range_used[0] <= 0.0 <= s.range_used[1]
        assert s.range_used[1] - s.range_used[0] == pytest.approx(255 * s.scale, rel=1e-4)
    assert a8.layers[-1].op == "SOFTMAX" and a8.layers[-1].scale == pytest.approx(1 / 256)
    assert "adds most error" in format_table(a8)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")


def test_html_report_is_self_contained_and_has_its_images(digits, tmp_path: Path) -> None:
    model, ds, tfl = digits
    a = L.analyze(tfl, model, ds.x_test[:60], ds.y_test[:60])
    a.suggestions = L.suggest(a)
    page = write_report(a, tmp_path / "rep")
    parser = _Images()
    parser.feed(page.read_text())
    weighted = sum(1 for s in a.layers if s.weight_channel_absmax)
    assert len(parser.srcs) == 1 + len(a.layers) + weighted  # SQNR bars, histograms, weights
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "rep" / "sqnr.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert len(doc["layers"]) == len(a.layers)


def test_float_model_with_other_outputs_is_refused(digits) -> None:
    from edgeq.tfenv import import_tf_keras

    _, ds, tfl = digits
    k = import_tf_keras()
    inp = k.Input((8, 8, 1))
    other = k.Model(inp, k.layers.Dense(5)(k.layers.Flatten()(inp)))
    with pytest.raises(AnalyzeError) as exc:
        L.analyze(tfl, other, ds.x_test[:4])
    assert "outputs" in str(exc.value) and "float model" in str(exc.value)


@pytest.mark.slow
def test_cli_quantize_with_calibration_then_analyze(tmp_path: Path, digits) -> None:
    model, ds, _ = digits
    h5 = tmp_path / "digits.h5"
    model.save(h5)
    (tmp_path / "digits.edgeq.json").write_text(json.dumps(
        {"dataset": "digits", "normalization": {"mean": [0.0], "std": [16.0]}}))
    out = tmp_path / "digits_kl.tflite"
    runner = CliRunner()
    r = runner.invoke(cli, ["quantize", str(h5), "-o", str(out), "--calibration", "kl", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["range_calibration"]["method"] == "kl" and res["range_calibration"]["calibrated"] > 5
    rep = tmp_path / "report"
    r = runner.invoke(cli, ["analyze", str(out), "--float", str(h5), "--limit", "100",
                            "--report", str(rep), "--suggest", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output[r.output.index("{"):])
    assert doc["model"]["int8_accuracy"] > 0.8 and (rep / "report.html").is_file()
    r = runner.invoke(cli, ["analyze", str(out), "--float", str(h5), "--limit", "50"])
    assert r.exit_code == 0 and "SQNR" in r.output and "6.02" in r.output


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path, digits) -> None:
    from edgeq.tfenv import import_tf_keras

    _, ds, tfl = digits
    runner = CliRunner()
    model_file = tmp_path / "m.tflite"
    model_file.write_bytes(tfl)
    k = import_tf_keras()
    inp = k.Input((8, 8, 1))
    other = k.Model(inp, k.layers.Dense(3)(k.layers.Flatten()(inp)))
    other_path = tmp_path / "other.h5"
    other.save(other_path)
    cases = [
        (["quantize", str(other_path), "--data", "digits", "--calibration", "percentile:101"],
         "outside [50, 100]"),
        (["train-qat", str(model_file), "--data", "digits"], "not a .tflite"),
        (["analyze", str(model_file), "--float", str(other_path), "--data", "digits"],
         "outputs"),
    ]
    for args, needle in cases:
        r = runner.invoke(cli, args)
        assert r.exit_code == 1, (args, r.output)
        err = r.stderr if hasattr(r, "stderr") else r.output
        assert needle in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "other_int8.tflite").exists()

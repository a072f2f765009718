"""``edgeq export android``: variants, TFLite Model Metadata, LiteRT host validation, bad input.

The metadata is read back with a reader edgeq did not write: the module generated from the
public metadata schema that ships inside the ``tflite-support`` 0.4.4 wheel, loaded from its file
alone (the package's ``__init__`` cannot import beside TF 2.21). tflite-support cannot be a
declared dependency (it pins protobuf < 4, TF 2.21 needs >= 6.31), so `make setup` installs it
with ``pip install --no-deps tflite-support==0.4.4``; the tests fail without it.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from edgeq.errors import ExportError
from edgeq.export.metadata import (
    ASSOCIATED_FILE_TENSOR_AXIS_LABELS,
    AssociatedFile,
    ModelInfo,
    TensorInfo,
    associated_files,
    attach_metadata,
    build_metadata,
    metadata_buffer,
)

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "models" / "digits_cnn" / "digits_cnn.h5"
EDGEQ = [sys.executable, "-m", "edgeq.cli"]
ASSETS = Path("app/src/main/assets")
VARIANTS = ("fp32", "fp16", "dynamic", "int8")


# ---------------------------------------------------------------------- the independent reader


def load_md_schema() -> ModuleType | None:
    """tflite-support's generated ``metadata_schema_py_generated``, loaded by file path."""
    from importlib import metadata

    try:
        dist = metadata.distribution("tflite-support")
    except metadata.PackageNotFoundError:
        return None
    paths = [p for p in dist.files or [] if str(p).endswith("metadata_schema_py_generated.py")]
    if not paths:
        return None
    spec = importlib.util.spec_from_file_location(
        "tfls_metadata_schema", dist.locate_file(paths[0])
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def md_schema() -> ModuleType:
    module = load_md_schema()
    if module is None:
        pytest.fail("tflite-support missing: `make test` installs it (pip install --no-deps tflite-support==0.4.4)")
    return module


def read_metadata(md: ModuleType, buf: bytes) -> dict[str, Any]:
    """Everything an Android app reads from the metadata, through tflite-support's reader."""
    assert md.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0)
    root = md.ModelMetadata.GetRootAs(buf, 0)
    sg = root.SubgraphMetadata(0)
    tin, tout = sg.InputTensorMetadata(0), sg.OutputTensorMetadata(0)
    unit = tin.ProcessUnits(0)
    assert unit.OptionsType() == md.ProcessUnitOptions.NormalizationOptions
    norm = md.NormalizationOptions()
    norm.Init(unit.Options().Bytes, unit.Options().Pos)

    def text(v: bytes | None) -> str:
        return (v or b"").decode()

    out = {
        "name": text(root.Name()),
        "version": text(root.Version()),
        "description": text(root.Description()),
        "min_parser_version": text(root.MinParserVersion()),
        "subgraphs": root.SubgraphMetadataLength(),
        "input_name": tin.Name().decode(),
        "input_content": tin.Content().ContentPropertiesType(),
        "mean": norm.MeanAsNumpy().tolist(),
        "std": norm.StdAsNumpy().tolist(),
        "output_name": tout.Name().decode(),
        "output_description": text(tout.Description()),
        "files": [
            (tout.AssociatedFiles(i).Name().decode(), tout.AssociatedFiles(i).Type())
            for i in range(tout.AssociatedFilesLength())
        ],
    }
    if out["input_content"] == md.ContentProperties.ImageProperties:
        props = md.ImageProperties()
        table = tin.Content().ContentProperties()
        props.Init(table.Bytes, table.Pos)
        out["image"] = (
            props.ColorSpace(),
            props.DefaultSize().Width(),
            props.DefaultSize().Height(),
        )
    if tin.Stats() is not None:
        out["stats"] = (tin.Stats().MinAsNumpy().tolist(), tin.Stats().MaxAsNumpy().tolist())
    return out


def _info() -> ModelInfo:
    return ModelInfo(
        name="tiny",
        description="a test model",
        version="3.1",
        inputs=(
            TensorInfo(
                "image",
                "pixels",
                image=("rgb", 32, 24),
                mean=(127.5, 1.0, 2.0),
                std=(127.5, 2.0, 4.0),
                stats_min=(0.0,),
                stats_max=(255.0,),
            ),
        ),
        outputs=(
            TensorInfo(
                "probability", "softmax scores", files=(AssociatedFile("labels.txt", "the labels"),)
            ),
        ),
    )


def test_metadata_flatbuffer_reads_back(md_schema: ModuleType) -> None:
    got = read_metadata(md_schema, build_metadata(_info()))
    assert got["name"] == "tiny" and got["version"] == "3.1"
    assert got["description"] == "a test model"
    assert got["min_parser_version"] == "1.0.0"
    assert got["subgraphs"] == 1
    assert got["input_content"] == md_schema.ContentProperties.ImageProperties
    assert got["image"] == (md_schema.ColorSpaceType.RGB, 32, 24)
    assert got["mean"] == [127.5, 1.0, 2.0] and got["std"] == [127.5, 2.0, 4.0]
    assert got["stats"] == ([0.0], [255.0])
    assert got["files"] == [("labels.txt", md_schema.AssociatedFileType.TENSOR_AXIS_LABELS)]
    assert ASSOCIATED_FILE_TENSOR_AXIS_LABELS == md_schema.AssociatedFileType.TENSOR_AXIS_LABELS
    # the object API of the same reader unpacks every table without error
    obj = md_schema.ModelMetadataT.InitFromPackedBuf(build_metadata(_info()), 0)
    assert obj.subgraphMetadata[0].outputTensorMetadata[0].associatedFiles[0].name == b"labels.txt"


def test_attach_keeps_model_and_replaces_old_metadata(md_schema: ModuleType,
                                                     shared_models: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    plain = (shared_models / "tflm" / "hello_world_int8.tflite").read_bytes()
    first = attach_metadata(plain, build_metadata(_info()), {})
    info2 = ModelInfo("second", "", "2", _info().inputs, _info().outputs)
    again = attach_metadata(first, build_metadata(info2), {"labels.txt": b"a\nb\n"})
    from edgeq.tflite import read_tflite_bytes

    names = read_tflite_bytes(again).metadata_names
    assert names.count("TFLITE_METADATA") == 1
    assert {"min_runtime_version", "CONVERSION_METADATA"} <= set(names)
    assert read_metadata(md_schema, metadata_buffer(again))["name"] == "second"
    assert associated_files(again) == {"labels.txt": b"a\nb\n"}
    interp = Interpreter(model_content=again)
    interp.allocate_tensors()
    x = np.array([[5]], dtype=np.int8)
    ref = Interpreter(model_content=plain)
    ref.allocate_tensors()
    for it in (interp, ref):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
    np.testing.assert_array_equal(
        interp.get_tensor(interp.get_output_details()[0]["index"]),
        ref.get_tensor(ref.get_output_details()[0]["index"]),
    )
    with pytest.raises(ExportError, match="already carries associated files"):
        attach_metadata(again, build_metadata(info2), {"labels.txt": b"x"})


# ----------------------------------------------------------------------- whole-bundle exports


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEQ, *args], capture_output=True, text=True, cwd=REPO)


def export(model: Path, out: Path, *extra: str) -> dict[str, Any]:
    proc = run_cli(
        "export", "android", str(model), "-o", str(out), "--latency-runs", "5", "--json", *extra
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    assert DIGITS.is_file(), "models/digits_cnn/digits_cnn.h5 is committed; run models/digits_cnn/train.py"
    out = tmp_path_factory.mktemp("digits") / "bundle"
    return out, export(DIGITS, out)


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mnist5k CNN, trained for seconds, saved with its sidecar."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.models.builders import mnist_cnn
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    ds = load_dataset("mnist5k")
    norm = Normalization(mean=(0.0,), std=(255.0,))
    model = mnist_cnn(seed=0)
    x = prepare_inputs(ds.x_train, model.input_shape, norm)
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy")
    model.fit(x, ds.y_train, epochs=6, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("mnist")
    model.save(folder / "mnist_cnn.h5", include_optimizer=False)
    (folder / "mnist_cnn.edgeq.json").write_text(
        json.dumps(
            {
                "dataset": "mnist5k",
                "task": "classification",
                "labels": [
                    "zero",
                    "one",
                    "two",
                    "three",
                    "four",
                    "five",
                    "six",
                    "seven",
                    "eight",
                    "nine",
                ],
                "normalization": norm.as_dict(),
            }
        )
    )
    return folder / "mnist_cnn.h5"


@pytest.fixture(scope="module")
def mnist_bundle(mnist_model: Path) -> tuple[Path, dict[str, Any]]:
    out = mnist_model.parent / "bundle"
    return out, export(mnist_model, out, "--model-version", "2.0")


@functools.cache
def _test_split(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    from edgeq.data import load_dataset

    ds = load_dataset(dataset)
    return ds.x_test, ds.y_test


def evaluate_file(path: Path, dataset: str, mean: list[float], std: list[float]) -> np.ndarray:
    """Top-1 of every test sample through LiteRT's default interpreter, from the file."""
    from ai_edge_litert.interpreter import Interpreter

    x_test, _ = _test_split(dataset)
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    din, dout = interp.get_input_details()[0], interp.get_output_details()[0]
    x = (x_test.astype(np.float32) - np.float32(mean[0])) / np.float32(std[0])
    if din["dtype"] == np.int8:
        scale, zp = din["quantization"]
        x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    top1 = []
    for k in range(len(x)):
        interp.set_tensor(din["index"], x[k : k + 1].reshape(din["shape"]))
        interp.invoke()
        top1.append(int(np.argmax(interp.get_tensor(dout["index"]))))
    return np.array(top1)


def check_bundle(
    out: Path,
    config: dict[str, Any],
    md: ModuleType,
    *,
    dataset: str,
    labels: list[str],
    mean: list[float],
    std: list[float],
    version: str,
) -> None:
    stem = config["name"]
    expected = {f"{ASSETS}/{stem}_{v}.tflite" for v in VARIANTS} | {
        f"{ASSETS}/labels.txt",
        f"{ASSETS}/edgeq_model.json",
        "README.md",
    }
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == expected
    saved = json.loads((out / ASSETS / "edgeq_model.json").read_text())
    assert saved["variants"] == config["variants"]
    assert saved["labels"] == labels
    assert saved["normalization"] == {"mean": mean, "std": std}
    assert (out / ASSETS / "labels.txt").read_text().splitlines() == labels
    assert saved["latency"]["label"] == "host CPU, not a phone"

    _, y = _test_split(dataset)
    by_variant = {v["variant"]: v for v in config["variants"]}
    assert list(by_variant) == list(VARIANTS)
    top1 = {}
    for variant, v in by_variant.items():
        path = out / v["file"]
        data = path.read_bytes()
        assert v["bytes"] == len(data)
        # metadata present, parseable by tflite-support's reader, values as given
        buf = metadata_buffer(data)
        assert buf is not None and buf[4:8] == b"M001"
        meta = read_metadata(md, buf)  # tflite-support's own reader
        assert meta["name"] == stem and meta["version"] == version
        assert meta["mean"] == mean and meta["std"] == std
        assert meta["input_content"] == md.ContentProperties.ImageProperties
        assert meta["files"] == [("labels.txt", md.AssociatedFileType.TENSOR_AXIS_LABELS)]
        assert associated_files(data) == {"labels.txt": ("\n".join(labels) + "\n").encode()}
        assert zipfile.ZipFile(io.BytesIO(data)).getinfo("labels.txt").compress_type == 0
        # accuracy as reported, measured again from the written file
        top1[variant] = evaluate_file(path, dataset, mean, std)
        assert v["accuracy"] == round(float(np.mean(top1[variant] == y)), 4)
        assert set(v["latency_ms"]) == {"1", "2"} and all(t > 0 for t in v["latency_ms"].values())
    for variant, v in by_variant.items():
        assert v["top1_agreement_vs_fp32"] == round(
            float(np.mean(top1[variant] == top1["fp32"])), 4
        )
    assert by_variant["int8"]["input"]["dtype"] == "int8"
    assert by_variant["fp32"]["input"]["dtype"] == "float32"
    assert abs(by_variant["int8"]["accuracy"] - by_variant["fp32"]["accuracy"]) <= 0.01
    # sizes: float16 weights are half of float32, int8 about a quarter (int32 biases on top)
    assert 0.45 <= by_variant["fp16"]["weight_ratio_vs_fp32"] <= 0.55
    assert 0.20 <= by_variant["int8"]["weight_ratio_vs_fp32"] <= 0.33
    readme = (out / "README.md").read_text()
    assert 'implementation("com.google.ai.edge.litert:litert:' in readme
    assert 'noCompress += "tflite"' in readme
    assert "CompiledModel.create(" in readme and f"{stem}_fp32.tflite" in readme
    assert "host CPU, not a phone" in readme


def test_digits_bundle(digits_bundle: tuple[Path, dict[str, Any]], md_schema: ModuleType) -> None:
    out, config = digits_bundle
    check_bundle(
        out,
        config,
        md_schema,
        dataset="digits",
        labels=[str(i) for i in range(10)],
        mean=[0.0],
        std=[16.0],
        version="1",
    )
    assert config["variants"][0]["accuracy"] > 0.9
    dynamic = config["variants"][2]
    # every digits_cnn weight tensor is under 1024 elements: the converter keeps them float
    assert "stayed float32" in dynamic["note"]


@pytest.mark.slow
def test_mnist5k_bundle(mnist_bundle: tuple[Path, dict[str, Any]], md_schema: ModuleType) -> None:
    out, config = mnist_bundle
    labels = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    check_bundle(
        out,
        config,
        md_schema,
        dataset="mnist5k",
        labels=labels,
        mean=[0.0],
        std=[255.0],
        version="2.0",
    )
    dynamic = next(v for v in config["variants"] if v["variant"] == "dynamic")
    assert dynamic["weight_ratio_vs_fp32"] < 0.9  # the 16x3x3x16 conv is quantized


# ------------------------------------------------------------------------------ bad input


def assert_one_line(proc: subprocess.CompletedProcess[str], out: Path, text: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgeq: error: ") and text in lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_bad_inputs_write_nothing(tmp_path: Path, shared_models: Path) -> None:
    assert DIGITS.is_file(), "models/digits_cnn/digits_cnn.h5 is committed; run models/digits_cnn/train.py"
    out = tmp_path / "out"
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    proc = run_cli(
        "export",
        "android",
        str(DIGITS),
        "-o",
        str(out),
        "--labels",
        str(labels),
        "--variants",
        "fp32",
    )
    assert_one_line(proc, out, "3 labels but the model has 10 output classes")

    proc = run_cli("export", "android", str(DIGITS), "-o", str(out), "--variants", "fp32,int4")
    assert_one_line(proc, out, "unknown variant(s) 'int4'")

    # points, like --max-drop elsewhere: a value over 100 is a unit mistake, said in one line
    proc = run_cli("export", "android", str(DIGITS), "-o", str(out), "--max-accuracy-drop", "150")
    assert_one_line(proc, out, "--max-accuracy-drop is in percentage points")

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run_cli("export", "android", str(DIGITS), "-o", str(blocker / "out"))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "is not writable" in proc.stderr
    assert blocker.read_text() == "x"

    tflite = shared_models / "tflm" / "hello_world_int8.tflite"
    proc = run_cli("export", "android", str(tflite), "-o", str(out))
    assert_one_line(proc, out, "export needs the float Keras model")


def test_parse_variants() -> None:
    from edgeq.export.android import parse_variants

    assert parse_variants("int8, fp32") == ["fp32", "int8"]
    assert parse_variants(["dynamic"]) == ["dynamic"]
    with pytest.raises(ExportError, match="no variants"):
        parse_variants(" , ")


# ------------------------------------------------------------------ a non-square image input


@pytest.fixture(scope="module")
def wide_digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits cropped to 6 rows x 8 columns (height != width), pixels mapped to 3 + 2 * p so
    the raw range [3, 35] is not the default one; a tiny CNN trained for seconds."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    ds = load_dataset("digits")
    folder = tmp_path_factory.mktemp("wide")

    def crop(x: np.ndarray) -> np.ndarray:
        return (3.0 + 2.0 * x.reshape(-1, 8, 8, 1)[:, 1:7, :, :]).astype(np.float32)

    np.savez(folder / "wide_digits.npz", x_train=crop(ds.x_train), y_train=ds.y_train,
             x_test=crop(ds.x_test), y_test=ds.y_test)
    norm = Normalization(mean=(3.0,), std=(32.0,))
    model = keras.Sequential([
        keras.layers.Input((6, 8, 1)),
        keras.layers.Conv2D(8, (2, 3), activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    x = prepare_inputs(crop(ds.x_train), model.input_shape, norm)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, ds.y_train, epochs=3, batch_size=64, verbose=0)
    model.save(folder / "wide.h5", include_optimizer=False)
    (folder / "wide.edgeq.json").write_text(json.dumps(
        {"dataset": str(folder / "wide_digits.npz"), "task": "classification",
         "labels": [str(i) for i in range(10)], "normalization": norm.as_dict()}))
    return folder / "wide.h5"


def test_non_square_image_metadata_reads_back(wide_digits_model: Path, md_schema: ModuleType,
                                              tmp_path: Path) -> None:
    """Width and height come from the model's (N, H, W, C) input; the input stats are the raw
    training pixels' min and max, computed here with numpy from the dataset file."""
    config = export(wide_digits_model, tmp_path / "bundle", "--variants", "fp32,int8")
    x_train = np.load(wide_digits_model.parent / "wide_digits.npz")["x_train"]
    assert (float(x_train.min()), float(x_train.max())) == (3.0, 35.0)
    assert len(config["variants"]) == 2
    for v in config["variants"]:
        meta = read_metadata(md_schema, metadata_buffer((tmp_path / "bundle" / v["file"])
                                                        .read_bytes()))
        # ImageProperties.default_size: width = 8 columns, height = 6 rows
        assert meta["image"] == (md_schema.ColorSpaceType.GRAYSCALE, 8, 6), v["variant"]
        assert meta["stats"] == ([float(x_train.min())], [float(x_train.max())])
        assert meta["mean"] == [3.0] and meta["std"] == [32.0]


def test_feature_vector_metadata_and_model_fields_read_back(md_schema: ModuleType,
                                                            shared_models: Path) -> None:
    """A non-image input (FeatureProperties), only a mean given (std defaults to 1), one-sided
    stats absent, author/license/subgraph name set; the attached files are stored, not
    deflated, with a fixed date so exports are byte-for-byte reproducible."""
    info = ModelInfo(
        name="feat", description="d", version="1", author="edgeq team", license="Apache-2.0",
        inputs=(TensorInfo("input", "features", mean=(2.0,)),),
        outputs=(TensorInfo("score", "logits"),),
    )
    buf = build_metadata(info)
    root = md_schema.ModelMetadata.GetRootAs(buf, 0)
    assert root.Author() == b"edgeq team" and root.License() == b"Apache-2.0"
    sg = root.SubgraphMetadata(0)
    assert sg.Name() == b"feat"
    tin = sg.InputTensorMetadata(0)
    assert tin.Name() == b"input" and tin.Description() == b"features"
    assert tin.Content().ContentPropertiesType() == md_schema.ContentProperties.FeatureProperties
    assert tin.Stats() is None
    norm = md_schema.NormalizationOptions()
    opts = tin.ProcessUnits(0).Options()
    norm.Init(opts.Bytes, opts.Pos)
    assert norm.MeanAsNumpy().tolist() == [2.0] and norm.StdAsNumpy().tolist() == [1.0]
    assert sg.OutputTensorMetadata(0).ProcessUnitsLength() == 0
    with pytest.raises(ExportError, match="unknown color space 'cmyk'; use rgb or grayscale"):
        build_metadata(ModelInfo("x", "", "1", (TensorInfo("i", "", image=("cmyk", 2, 2)),), ()))
    plain = (shared_models / "tflm" / "hello_world_int8.tflite").read_bytes()
    a = attach_metadata(plain, buf, {"labels.txt": b"a\nb\n"})
    assert a == attach_metadata(plain, buf, {"labels.txt": b"a\nb\n"})
    entry = zipfile.ZipFile(io.BytesIO(a)).getinfo("labels.txt")
    assert entry.compress_type == zipfile.ZIP_STORED and entry.date_time == (1980, 1, 1, 0, 0, 0)
    with pytest.raises(ExportError, match="^metadata buffer lacks the M001 identifier; build it "
                                          "with build_metadata$"):
        attach_metadata(plain, b"\x00" * 16, {})

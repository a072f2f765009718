"""``edgeq export android``: a drop-in asset bundle for an Android app, validated with LiteRT.

One Keras model becomes up to four ``.tflite`` variants (float32; float16 weights for GPU
delegates; dynamic-range int8 weights for CPU; full int8 for NPUs), each carrying TFLite Model
Metadata (normalization, labels as an associated file) so Android Studio's ML model binding and
the Support library can read it. Beside them: ``labels.txt``, ``edgeq_model.json`` (everything
an app that reads its own config needs, plus the measured variant table) and a README with the
Gradle and Kotlin side. Every variant is reloaded from its bytes and measured on the test split
before anything is written; the output directory appears complete or not at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import ExportError, first_line

VARIANTS = ("fp32", "fp16", "dynamic", "int8")
VARIANT_PURPOSE = {
    "fp32": "float32 weights and activations (reference; CPU or GPU)",
    "fp16": "float16 weights, float compute (GPU delegates)",
    "dynamic": "dynamic-range: int8 weights, float activations (CPU)",
    "int8": "full integer int8 with int8 I/O (NPUs, NNAPI-style accelerators, CPU)",
}
ASSETS_DIR = Path("app") / "src" / "main" / "assets"
LABELS_FILE = "labels.txt"
CONFIG_FILE = "edgeq_model.json"
LITERT_ANDROID_VERSION = "2.3.0"  # com.google.ai.edge.litert:litert, same release as the host wheel
DEFAULT_LATENCY_RUNS = 50
CALIBRATION_SAMPLES = 200
# a variant may score at most this much (fraction) below the float Keras model, else it is refused
DEFAULT_MAX_ACCURACY_DROP = 2.0  # percentage points, as every other command's --max-drop


@dataclass
class VariantReport:
    variant: str
    file: str
    bytes: int
    weight_bytes: int
    input: dict[str, Any]
    output: dict[str, Any]
    accuracy: float | None
    agreement: float
    latency_ms: dict[str, float]
    weight_ratio: float = 1.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "purpose": VARIANT_PURPOSE[self.variant],
            "file": self.file,
            "bytes": self.bytes,
            "weight_bytes": self.weight_bytes,
            "weight_ratio_vs_fp32": round(self.weight_ratio, 4),
            "input": self.input,
            "output": self.output,
            "accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "top1_agreement_vs_fp32": round(self.agreement, 4),
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()},
            **({"note": self.note} if self.note else {}),
        }


def parse_variants(spec: str | Sequence[str]) -> list[str]:
    """``"fp32,int8"`` -> ``["fp32", "int8"]`` in canonical order; unknown names are refused."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    unknown = [s for s in items if s not in VARIANTS]
    if unknown:
        raise ExportError(
            f"unknown variant(s) {', '.join(repr(u) for u in unknown)}; "
            f"choose from {','.join(VARIANTS)}"
        )
    if not items:
        raise ExportError(f"no variants given; choose from {','.join(VARIANTS)}")
    return [v for v in VARIANTS if v in items]


def check_writable(out_dir: Path) -> None:
    """Fail before any conversion if ``out_dir`` cannot be created or written."""
    import tempfile

    probe = out_dir if out_dir.is_dir() else out_dir.parent
    try:
        probe.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ExportError(
            f"output directory {out_dir} is not writable ({exc.strerror or type(exc).__name__}); "
            "choose another -o"
        ) from None


def convert_float32(keras_model: Any) -> bytes:
    """Plain float32 conversion (no optimizations), variables frozen in, batch 1 as apps run it."""
    from edgeq.quantize.ptq import keras_converter
    from edgeq.tfenv import import_tf, quiet_native_output

    tf = import_tf()
    try:
        conv = keras_converter(tf, keras_model)
        with quiet_native_output():
            return bytes(conv.convert())
    except Exception as exc:
        first = first_line(exc, None)
        raise ExportError(f"float32 conversion failed: {first[:160]}") from None


def keras_accuracy(keras_model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the float Keras model itself: what every variant is held to."""
    pred = np.asarray(keras_model.predict(x, batch_size=64, verbose=0))
    return float(np.mean(np.argmax(pred.reshape(len(x), -1), axis=1) == y))


def check_within_tolerance(variant: str, accuracy: float, float_accuracy: float,
                           tolerance_pt: float) -> None:
    """Refuse a variant whose accuracy (a fraction) falls more than ``tolerance_pt`` percentage
    points below the float model's."""
    if 100.0 * accuracy < 100.0 * float_accuracy - tolerance_pt - 1e-7:
        raise ExportError(
            f"variant {variant} scores {accuracy * 100:.2f}% where the float model scores "
            f"{float_accuracy * 100:.2f}% (more than {tolerance_pt:g} points below); "
            f"nothing written: drop it from --variants or raise --max-accuracy-drop"
        )


def _convert(variant: str, keras_model: Any, representative: Any) -> bytes:
    if variant == "fp32":
        return convert_float32(keras_model)
    from edgeq.quantize.ptq import convert_ptq

    mode = {"fp16": "float16", "dynamic": "dynamic", "int8": "int8"}[variant]
    return convert_ptq(
        keras_model,
        representative if variant == "int8" else None,
        mode=mode,
        io_dtype="int8" if variant == "int8" else "float32",
        per_channel=True,
    )


def weight_bytes(tflite: bytes) -> int:
    from edgeq.tflite import read_tflite_bytes

    return read_tflite_bytes(tflite).weight_bytes()


def _file_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()
    if not stem:
        raise ExportError(f"model name {name!r} gives an empty file name; pass --name")
    return stem


def _float_weights_note(tflite: bytes) -> str:
    """Say so when dynamic-range conversion left weights in float (small tensors stay float)."""
    from edgeq.tflite import read_tflite_bytes

    info = read_tflite_bytes(tflite)
    weights = [t for t in info.tensors if t.is_constant and len(t.shape) >= 2]
    kept = [t for t in weights if t.dtype == "float32"]
    if not kept:
        return ""
    return (
        f"{len(kept)} of {len(weights)} weight tensors stayed float32: TFLite's dynamic-range "
        "quantizer only quantizes weight tensors of at least 1024 elements"
    )


def _ends_in_softmax(tflite: bytes) -> bool:
    from edgeq.tflite import read_tflite_bytes

    info = read_tflite_bytes(tflite)
    producer = info.producer(info.outputs[0])
    return producer is not None and producer.opcode == "SOFTMAX"


def _metadata_for(
    *,
    name: str,
    version: str,
    description: str,
    variant: str,
    input_shape: tuple[int, ...],
    normalization: Any,
    raw_range: tuple[float, float],
    num_classes: int,
    softmax: bool,
    out_io: Any,
) -> bytes:
    from edgeq.export.metadata import AssociatedFile, ModelInfo, TensorInfo, build_metadata

    image = None
    if len(input_shape) == 4 and input_shape[3] in (1, 3):
        image = ("grayscale" if input_shape[3] == 1 else "rgb", input_shape[2], input_shape[1])
    kind = "Image" if image else "Feature vector"
    inp = TensorInfo(
        name="image" if image else "input",
        description=(
            f"{kind} of shape {list(input_shape[1:])}; normalize raw values as (x - mean) / std"
            + (
                ""
                if out_io.dtype == "float32"
                else ", then quantize with the input tensor's scale and zero point"
            )
        ),
        image=image,
        mean=tuple(normalization.mean),
        std=tuple(normalization.std),
        stats_min=(float(raw_range[0]),),
        stats_max=(float(raw_range[1]),),
    )
    semantics = "probabilities (softmax)" if softmax else "unnormalized scores (logits)"
    quant_note = (
        ""
        if out_io.dtype == "float32"
        else f"; {out_io.dtype}: dequantize as scale * (q - zero_point)"
    )
    out = TensorInfo(
        name="probability" if softmax else "score",
        description=f"{semantics} of the {num_classes} labels, index = class{quant_note}",
        files=(AssociatedFile(LABELS_FILE, "Labels for the classes the model recognizes."),),
    )
    return build_metadata(
        ModelInfo(
            name=name,
            description=f"{description} Variant {variant}: {VARIANT_PURPOSE[variant]}.",
            version=version,
            inputs=(inp,),
            outputs=(out,),
            author="edgeq",
        )
    )


def export_android(
    model_path: str | Path,
    out_dir: str | Path,
    *,
    data: str | None = None,
    variants: str | Sequence[str] = VARIANTS,
    name: str | None = None,
    labels: list[str] | None = None,
    version: str = "1",
    description: str | None = None,
    latency_runs: int = DEFAULT_LATENCY_RUNS,
    seed: int = 0,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Build, validate and describe the bundle; returns the config and ``{relative path: bytes}``.

    Nothing is written here (the caller writes the files atomically).
    """
    from edgeq.data import Normalization, load_dataset, prepare_inputs, representative_dataset
    from edgeq.export.metadata import attach_metadata
    from edgeq.export.validate import (
        LATENCY_LABEL,
        THREADS,
        host_description,
        io_details,
        latency_ms,
        predict,
    )
    from edgeq.fileio import sha256_file
    from edgeq.models import load_model

    wanted = parse_variants(variants)
    if latency_runs < 1:
        raise ExportError(f"latency runs must be >= 1, got {latency_runs}")
    if not 0.0 <= max_accuracy_drop <= 100.0:
        raise ExportError(
            f"--max-accuracy-drop is in percentage points (e.g. 2 for two points), got "
            f"{max_accuracy_drop:g}; give a value in [0, 100]"
        )
    loaded = load_model(model_path)
    if loaded.kind == "tflite":
        raise ExportError(
            f"{loaded.path}: export needs the float Keras model (.keras/.h5/SavedModel), "
            "not a .tflite; pass the model you trained"
        )
    meta = loaded.meta
    spec = data or meta.get("dataset")
    if not spec:
        raise ExportError(f"{loaded.path}: no dataset to validate on; pass --data (e.g. digits)")
    ds = load_dataset(spec, input_shape=tuple(loaded.input_shape[1:]))
    if ds.y_test is None:
        raise ExportError(f"dataset '{ds.name}' has no labels; export validates a classifier")
    num_classes = int(loaded.output_shape[-1] or 0)
    label_list = [str(s) for s in (labels or meta.get("labels") or ds.labels)]
    if len(label_list) != num_classes:
        raise ExportError(
            f"{len(label_list)} labels but the model has {num_classes} output classes; "
            "give one label per class"
        )
    normalization = Normalization.from_meta(meta)
    stem = _file_stem(name or loaded.name)
    x_test = prepare_inputs(
        ds.x_test, loaded.input_shape, normalization, source=f"dataset '{ds.name}'"
    )
    y_test = np.asarray(ds.y_test)
    representative = (
        representative_dataset(
            ds.x_train,
            input_shape=loaded.input_shape,
            normalization=normalization,
            num_samples=CALIBRATION_SAMPLES,
            seed=seed,
            source=f"dataset '{ds.name}'",
        )
        if "int8" in wanted
        else None
    )
    desc = description or (
        f"{stem}: {loaded.task} of {tuple(x_test.shape[1:])} inputs into {num_classes} classes, "
        f"validated on the '{ds.name}' test split."
    )
    raw_range = (float(np.min(ds.x_train)), float(np.max(ds.x_train)))

    float_accuracy = keras_accuracy(loaded.model, x_test, y_test)
    fp32 = convert_float32(loaded.model)
    fp32_pred = predict(fp32, x_test)
    fp32_top1 = np.argmax(fp32_pred, axis=1)
    fp32_weights = weight_bytes(fp32)
    softmax = _ends_in_softmax(fp32)
    sample = x_test[:1]

    reports: list[VariantReport] = []
    files: dict[str, bytes] = {}
    for variant in wanted:
        plain = fp32 if variant == "fp32" else _convert(variant, loaded.model, representative)
        in_io, out_io = io_details(plain)
        meta_fb = _metadata_for(
            name=stem,
            version=version,
            description=desc,
            variant=variant,
            input_shape=in_io.shape,
            normalization=normalization,
            raw_range=raw_range,
            num_classes=num_classes,
            softmax=softmax,
            out_io=out_io,
        )
        labels_bytes = ("\n".join(label_list) + "\n").encode("utf-8")
        model = attach_metadata(plain, meta_fb, {LABELS_FILE: labels_bytes})
        # measured on the bytes that are shipped, reloaded from scratch
        pred = predict(model, x_test)
        top1 = np.argmax(pred, axis=1)
        accuracy = float(np.mean(top1 == y_test))
        check_within_tolerance(variant, accuracy, float_accuracy, max_accuracy_drop)
        lat = {str(t): latency_ms(model, sample, threads=t, runs=latency_runs) for t in THREADS}
        fname = f"{stem}_{variant}.tflite"
        wbytes = weight_bytes(model)
        note = _float_weights_note(model) if variant == "dynamic" else ""
        reports.append(
            VariantReport(
                variant=variant,
                file=(ASSETS_DIR / fname).as_posix(),
                bytes=len(model),
                weight_bytes=wbytes,
                weight_ratio=wbytes / fp32_weights if fp32_weights else 1.0,
                input=in_io.as_dict(),
                output=out_io.as_dict(),
                accuracy=accuracy,
                agreement=float(np.mean(top1 == fp32_top1)),
                latency_ms=lat,
                note=note,
            )
        )
        files[(ASSETS_DIR / fname).as_posix()] = model

    config = {
        "format": "edgeq-android-bundle/1",
        "name": stem,
        "version": version,
        "description": desc,
        "task": loaded.task,
        "source": {
            "path": str(loaded.path),
            "kind": loaded.kind,
            "sha256": sha256_file(loaded.path),
        },
        "dataset": {"name": ds.name, "test_samples": int(len(x_test)), "split": "test"},
        "labels": label_list,
        "float_model_accuracy": round(float_accuracy, 4),
        "max_accuracy_drop_pt": max_accuracy_drop,
        "labels_file": (ASSETS_DIR / LABELS_FILE).as_posix(),
        "normalization": normalization.as_dict(),
        "raw_input_range": list(raw_range),
        "input_shape": [int(d) for d in x_test.shape[1:]],
        "output": "probabilities (softmax)" if softmax else "unnormalized scores (logits)",
        "fp32_weight_bytes": fp32_weights,
        "variants": [r.as_dict() for r in reports],
        "latency": {
            **host_description(),
            "statistic": f"median of {latency_runs} invocations after 5 warm-up, batch 1",
            "threads": list(THREADS),
            "label": LATENCY_LABEL,
        },
    }
    import json

    files[(ASSETS_DIR / LABELS_FILE).as_posix()] = ("\n".join(label_list) + "\n").encode()
    files[(ASSETS_DIR / CONFIG_FILE).as_posix()] = (
        json.dumps(config, indent=2, sort_keys=True) + "\n"
    ).encode()
    files["README.md"] = render_readme(config).encode("utf-8")
    config["files"] = sorted(files)
    config["sha256"] = {k: hashlib.sha256(v).hexdigest()[:16] for k, v in sorted(files.items())}
    return config, files


def variant_table(config: dict[str, Any]) -> str:
    """The variant table as aligned text (also used in the README)."""
    rows = [
        (
            "variant",
            "file bytes",
            "weights",
            "accuracy",
            "agree fp32",
            "1 thread ms",
            "2 threads ms",
        )
    ]
    for v in config["variants"]:
        acc = "-" if v["accuracy"] is None else f"{v['accuracy'] * 100:.2f}%"
        rows.append(
            (
                v["variant"],
                str(v["bytes"]),
                f"{v['weight_bytes']} ({v['weight_ratio_vs_fp32']:.2f}x)",
                acc,
                f"{v['top1_agreement_vs_fp32'] * 100:.2f}%",
                f"{v['latency_ms']['1']:.4f}",
                f"{v['latency_ms']['2']:.4f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += [f"note ({v['variant']}): {v['note']}" for v in config["variants"] if v.get("note")]
    return "\n".join(lines)


def _markdown_table(config: dict[str, Any]) -> str:
    head = (
        "| variant | for | file bytes | weight bytes | accuracy | top-1 agreement with fp32 "
        "| latency 1 thread (ms) | latency 2 threads (ms) |"
    )
    lines = [head, "|" + "---|" * 8]
    for v in config["variants"]:
        acc = "-" if v["accuracy"] is None else f"{v['accuracy'] * 100:.2f}%"
        lines.append(
            f"| `{v['variant']}` | {v['purpose']} | {v['bytes']} | {v['weight_bytes']} "
            f"({v['weight_ratio_vs_fp32']:.2f}x) | {acc} | "
            f"{v['top1_agreement_vs_fp32'] * 100:.2f}% | {v['latency_ms']['1']:.4f} | "
            f"{v['latency_ms']['2']:.4f} |"
        )
    notes = [f"- `{v['variant']}`: {v['note']}" for v in config["variants"] if v.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def _kotlin_floats(values: Sequence[float]) -> str:
    return ", ".join(f"{float(v)!r}f" for v in values)


def render_readme(config: dict[str, Any]) -> str:
    """README for the app developer: Gradle, noCompress, Kotlin, and the measured variants."""
    name = config["name"]
    norm = config["normalization"]
    first = config["variants"][0]
    int8 = next((v for v in config["variants"] if v["variant"] == "int8"), None)
    shape = config["input_shape"]
    lat = config["latency"]
    float_variant = next((v for v in config["variants"] if v["input"]["dtype"] == "float32"), first)
    float_file = Path(float_variant["file"]).name
    int8_section = ""
    if int8 is not None:
        i, o = int8["input"], int8["output"]
        int8_section = f"""
### Full-integer variant (`{Path(int8["file"]).name}`)

Its input and output are int8: quantize after normalizing, dequantize the scores.

```kotlin
val inScale = {i["scale"]!r}f; val inZeroPoint = {i["zero_point"]}
val outScale = {o["scale"]!r}f; val outZeroPoint = {o["zero_point"]}
val q = ByteArray(x.size) {{ k ->
    (Math.round(x[k] / inScale) + inZeroPoint).coerceIn(-128, 127).toByte()
}}
inputs[0].writeInt8(q)
model.run(inputs, outputs)
val scores = outputs[0].readInt8().map {{ (it - outZeroPoint) * outScale }}
```
"""
    return f"""# {name}: Android assets

Generated by `edgeq export android`. {config["description"]}

Copy `app/src/main/assets/` into your app module. Every `.tflite` carries TFLite Model Metadata
(normalization, labels as the associated file `{LABELS_FILE}`), which Android Studio's ML model
binding and the LiteRT Support library read; `{CONFIG_FILE}` holds the same facts (shapes,
dtypes, quantization, normalization, labels, measured variants) for apps that read their own
config.

## Variants

{_markdown_table(config)}

Accuracy on {config["dataset"]["test_samples"]} test samples of `{config["dataset"]["name"]}`.
Latency: **{lat["label"]}** ({lat["cpu"]}; {lat["runtime"]}; {lat["statistic"]}).
It ranks the variants; measure on your target phones.

## Gradle (module `build.gradle.kts`)

```kotlin
dependencies {{
    implementation("com.google.ai.edge.litert:litert:{LITERT_ANDROID_VERSION}")
}}

android {{
    androidResources {{
        // a compressed asset cannot be memory-mapped; LiteRT maps the model from the APK
        noCompress += "tflite"
    }}
}}
```

## Kotlin

```kotlin
import android.util.Log
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel

val model = CompiledModel.create(
    context.assets, "{float_file}", CompiledModel.Options(Accelerator.CPU)
)
val inputs = model.createInputBuffers()
val outputs = model.createOutputBuffers()
val labels = context.assets.open("{LABELS_FILE}").bufferedReader().readLines()

// raw: FloatArray of {" x ".join(str(d) for d in shape)} raw values, row-major (channels last)
val mean = floatArrayOf({_kotlin_floats(norm["mean"])})
val std = floatArrayOf({_kotlin_floats(norm["std"])})
val x = FloatArray(raw.size) {{ k ->
    val c = if (mean.size == 1) 0 else k % mean.size  // channels last: k % channels
    (raw[k] - mean[c]) / std[c]
}}
inputs[0].writeFloat(x)
model.run(inputs, outputs)
val scores = outputs[0].readFloat()
val best = scores.indices.maxByOrNull {{ scores[it] }} ?: 0
Log.i("{name}", "${{labels[best]}} (${{scores[best]}})")
```
{int8_section}"""

"""TFLite Model Metadata, written without tflite-support.

Android Studio's ML model binding and the TFLite/LiteRT Support library read a ``ModelMetadata``
flatbuffer (file identifier ``M001``, public schema ``metadata_schema.fbs`` of tflite-support)
stored in a model buffer named ``TFLITE_METADATA``, and associated files (``labels.txt``) from a
zip archive appended to the ``.tflite`` (the model file is also a valid zip, stored
uncompressed so it can be memory-mapped). ``tflite-support`` cannot be imported beside TF 2.21,
so the flatbuffer is built here with the ``flatbuffers`` package, table by table, with field
slots in the schema's declaration order.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import ExportError

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
# The fields written here all exist since schema 1.0.0 (no tokenizers, tensor groups, ...).
MIN_PARSER_VERSION = "1.0.0"

# enums of metadata_schema.fbs
ASSOCIATED_FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACE = {"rgb": 1, "grayscale": 2}
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2  # ContentProperties union tags
PROCESS_UNIT_NORMALIZATION = 1  # ProcessUnitOptions union tag

# number of field slots per table (unions take two: type tag, then value)
_SLOTS = {
    "AssociatedFile": 4,  # name, description, type, locale
    "FeatureProperties": 0,
    "ImageSize": 2,  # width, height
    "ImageProperties": 2,  # color_space, default_size
    "Content": 3,  # content_properties_type, content_properties, range
    "NormalizationOptions": 2,  # mean, std
    "ProcessUnit": 2,  # options_type, options
    "Stats": 2,  # max, min
    "TensorMetadata": 7,  # name, description, dimension_names, content, process_units, stats,
    # associated_files
    "SubGraphMetadata": 5,  # name, description, input_tensor_metadata, output_tensor_metadata,
    # associated_files
    "ModelMetadata": 8,  # name, description, version, subgraph_metadata, author, license,
    # associated_files, min_parser_version
}


@dataclass(frozen=True)
class AssociatedFile:
    name: str
    description: str
    type: int = ASSOCIATED_FILE_TENSOR_AXIS_LABELS


@dataclass(frozen=True)
class TensorInfo:
    """What an app needs to know about one input or output tensor."""

    name: str
    description: str
    image: tuple[str, int, int] | None = None  # (color space, width, height) for image inputs
    mean: tuple[float, ...] | None = None  # normalization (x - mean) / std, per channel
    std: tuple[float, ...] | None = None
    stats_min: tuple[float, ...] | None = None
    stats_max: tuple[float, ...] | None = None
    files: tuple[AssociatedFile, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    version: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    author: str = ""
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class _Writer:
    """Thin helpers over ``flatbuffers.Builder``: children first, then the table."""

    def __init__(self) -> None:
        import flatbuffers

        self.b = flatbuffers.Builder(1024)

    def string(self, s: str | None) -> int | None:
        return self.b.CreateString(s) if s else None

    def offsets(self, items: list[int]) -> int | None:
        if not items:
            return None
        self.b.StartVector(4, len(items), 4)
        for off in reversed(items):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def floats(self, values: tuple[float, ...] | None) -> int | None:
        if values is None:
            return None
        return self.b.CreateNumpyVector(np.asarray(values, dtype="<f4"))

    def table(
        self,
        kind: str,
        refs: dict[int, int | None],
        u8: dict[int, int] | None = None,
        u32: dict[int, int] | None = None,
    ) -> int:
        """End a table of ``kind`` with offset fields ``refs`` and scalar fields by slot."""
        b = self.b
        b.StartObject(_SLOTS[kind])
        for slot, value in (u32 or {}).items():
            b.PrependUint32Slot(slot, value, 0)
        for slot, off in refs.items():
            if off is not None:
                b.PrependUOffsetTRelativeSlot(slot, off, 0)
        for slot, value in (u8 or {}).items():
            b.PrependUint8Slot(slot, value, 0)
        return b.EndObject()


def _associated_file(w: _Writer, f: AssociatedFile) -> int:
    name, desc = w.string(f.name), w.string(f.description)
    return w.table("AssociatedFile", {0: name, 1: desc}, u8={2: f.type})


def _tensor(w: _Writer, t: TensorInfo) -> int:
    if t.image is not None:
        color, width, height = t.image
        if color not in COLOR_SPACE:
            raise ExportError(f"unknown color space '{color}'; use rgb or grayscale")
        size = w.table("ImageSize", {}, u32={0: width, 1: height})
        props = w.table("ImageProperties", {1: size}, u8={0: COLOR_SPACE[color]})
        content = w.table("Content", {1: props}, u8={0: CONTENT_IMAGE})
    else:
        props = w.table("FeatureProperties", {})
        content = w.table("Content", {1: props}, u8={0: CONTENT_FEATURE})
    units: list[int] = []
    if t.mean is not None or t.std is not None:
        mean, std = w.floats(t.mean or (0.0,)), w.floats(t.std or (1.0,))
        norm = w.table("NormalizationOptions", {0: mean, 1: std})
        units.append(w.table("ProcessUnit", {1: norm}, u8={0: PROCESS_UNIT_NORMALIZATION}))
    stats = None
    if t.stats_min is not None or t.stats_max is not None:
        smax, smin = w.floats(t.stats_max), w.floats(t.stats_min)
        stats = w.table("Stats", {0: smax, 1: smin})
    files = w.offsets([_associated_file(w, f) for f in t.files])
    process_units = w.offsets(units)
    name, desc = w.string(t.name), w.string(t.description)
    return w.table(
        "TensorMetadata",
        {0: name, 1: desc, 3: content, 4: process_units, 5: stats, 6: files},
    )


def build_metadata(info: ModelInfo) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) describing one subgraph."""
    w = _Writer()
    inputs = w.offsets([_tensor(w, t) for t in info.inputs])
    outputs = w.offsets([_tensor(w, t) for t in info.outputs])
    sg_name = w.string(info.name)
    subgraph = w.table("SubGraphMetadata", {0: sg_name, 2: inputs, 3: outputs})
    subgraphs = w.offsets([subgraph])
    refs = {
        0: w.string(info.name),
        1: w.string(info.description),
        2: w.string(info.version),
        3: subgraphs,
        4: w.string(info.author),
        5: w.string(info.license),
        7: w.string(MIN_PARSER_VERSION),
    }
    root = w.table("ModelMetadata", refs)
    w.b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(w.b.Output())


def attach_metadata(tflite: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """Return ``tflite`` with ``metadata`` in a ``TFLITE_METADATA`` buffer and ``files`` zipped on.

    An existing ``TFLITE_METADATA`` entry is replaced; the model's other metadata entries
    (``min_runtime_version``, ``CONVERSION_METADATA``) are kept.
    """
    from ai_edge_litert import schema_py_generated as schema

    from edgeq.tflite import load_model_t, serialize_model_t

    if metadata[4:8] != METADATA_IDENTIFIER:
        raise ExportError("metadata buffer lacks the M001 identifier; build it with build_metadata")
    model_t = load_model_t(tflite, "<export>")
    if zipfile.is_zipfile(io.BytesIO(tflite)):
        raise ExportError("model already carries associated files; export from the plain model")
    buf = schema.BufferT()
    buf.data = np.frombuffer(metadata, dtype=np.uint8).copy()
    model_t.buffers = list(model_t.buffers or []) + [buf]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model_t.buffers) - 1
    kept = [m for m in (model_t.metadata or []) if _name(m.name) != METADATA_NAME]
    model_t.metadata = kept + [entry]
    packed = serialize_model_t(model_t)
    if not files:
        return packed
    out = io.BytesIO()
    out.write(packed)
    with zipfile.ZipFile(out, mode="a", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def _name(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v or "")


def metadata_buffer(tflite: bytes) -> bytes | None:
    """The raw ``TFLITE_METADATA`` flatbuffer of a model, or ``None``."""
    from edgeq.tflite import load_model_t

    model_t = load_model_t(tflite, "<model>")
    for m in model_t.metadata or []:
        if _name(m.name) == METADATA_NAME:
            data = model_t.buffers[m.buffer].data
            return None if data is None else bytes(np.asarray(data, dtype=np.uint8).tobytes())
    return None


def associated_files(tflite: bytes) -> dict[str, bytes]:
    """The files zipped onto a model (empty when there are none)."""
    bio = io.BytesIO(tflite)
    if not zipfile.is_zipfile(bio):
        return {}
    with zipfile.ZipFile(bio) as zf:
        return {n: zf.read(n) for n in zf.namelist()}

"""Weight coding for edgeq-rt: how int8 filters are stored in flash, and what that costs.

Pure functions over int8 arrays, no training: k-bit LUT indices into a per-layer or
per-channel table (dense, or a bitmap of nonzeros plus indices of the nonzeros), the packing
the C kernels unpack, and the Huffman/entropy bounds that say what entropy coding could reach.
``ops_lut`` lowers with them; ``weight_report`` sizes a whole model (``edgeq compress``).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgeq.errors import CodegenError

LUT_BITS = (1, 2, 4)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# --- size accounting ----------------------------------------------------------------------------


def huffman_code_lengths(values: np.ndarray) -> dict[int, int]:
    """Optimal prefix-code length per symbol (one symbol alone gets length 1)."""
    counts = Counter(np.asarray(values).ravel().tolist())
    if not counts:
        return {}
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap: list[tuple[int, int, list[int]]] = [
        (c, i, [sym]) for i, (sym, c) in enumerate(sorted(counts.items()))
    ]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for sym in s1 + s2:
            lengths[sym] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def huffman_bits(values: np.ndarray) -> int:
    """Bits of ``values`` Huffman-coded with their own frequencies (code table excluded)."""
    lengths = huffman_code_lengths(values)
    counts = Counter(np.asarray(values).ravel().tolist())
    return sum(counts[s] * n for s, n in lengths.items())


def entropy_bits(values: np.ndarray) -> float:
    """Zero-order entropy times count: the lower bound Huffman coding approaches."""
    counts = np.array(list(Counter(np.asarray(values).ravel().tolist()).values()), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def channel_axis(opcode: str) -> int:
    """Output-channel axis of a TFLite weight tensor."""
    return 3 if opcode == "DEPTHWISE_CONV_2D" else 0


def distinct_per_channel(weights: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.asarray(weights), axis, 0).reshape(weights.shape[axis], -1)
    return np.array([len(np.unique(row)) for row in moved])


def lut_index_bits(max_distinct: int) -> int | None:
    """Smallest supported index width k (1, 2, 4) with 2^k >= ``max_distinct``; None if > 16."""
    for k in LUT_BITS:
        if max_distinct <= (1 << k):
            return k
    return None


def pack_indices(indices: np.ndarray, bits: int) -> np.ndarray:
    """Pack flat indices (< 2^bits), lowest bits first, into uint8 bytes."""
    if bits not in LUT_BITS:
        raise CodegenError(f"LUT index width {bits} is not one of {LUT_BITS}")
    idx = np.asarray(indices, dtype=np.uint8).reshape(-1)
    per = 8 // bits
    padded = np.zeros(-(-idx.size // per) * per, dtype=np.uint8)
    padded[: idx.size] = idx
    lanes = padded.reshape(-1, per).astype(np.uint16)
    shifts = (np.arange(per, dtype=np.uint16) * bits)[np.newaxis, :]
    return (lanes << shifts).sum(axis=1).astype(np.uint8)


def unpack_indices(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_indices` (for tests and checks)."""
    per = 8 // bits
    p = np.asarray(packed, dtype=np.uint8).astype(np.uint16)[:, np.newaxis]
    shifts = (np.arange(per, dtype=np.uint16) * bits)[np.newaxis, :]
    return ((p >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.uint8)


def _bits_for(count: int) -> int | None:
    return next((b for b in LUT_BITS if count <= (1 << b)), None)


def _choose_tables(
    values: list[np.ndarray], stored: int
) -> tuple[int, bool, list[np.ndarray], np.ndarray] | None:
    """The cheaper of one shared table (the union of all channels' values) and one table per
    channel, for ``stored`` indices: (bits, per_channel, lookup per channel, flat table)."""
    channels = len(values)
    union = np.unique(np.concatenate(values)) if channels else np.zeros(0, np.int8)
    options = []
    bits_s = _bits_for(max(len(union), 1))
    if bits_s is not None:
        options.append((math.ceil(stored * bits_s / 8) + (1 << bits_s), bits_s, False))
    bits_p = _bits_for(max([len(v) for v in values] + [1]))
    if bits_p is not None:
        options.append((math.ceil(stored * bits_p / 8) + channels * (1 << bits_p), bits_p, True))
    if not options:
        return None
    _, bits, per_channel = min(options)
    size = 1 << bits
    if per_channel:
        table = np.zeros((channels, size), dtype=np.int8)
        for c, v in enumerate(values):
            table[c, : len(v)] = v
        return bits, True, values, table.reshape(-1)
    table = np.zeros(size, dtype=np.int8)
    table[: len(union)] = union
    return bits, False, [union] * channels, table


def lut_encode(weights: np.ndarray, axis: int) -> tuple[int, np.ndarray, np.ndarray, bool] | None:
    """(bits, packed indices, table, per_channel) for int8 ``weights``.

    None when no table fits (more than 16 values) or the coding would not be smaller than int8.
    The table is one per layer (the union of the channels' values) or one 2^bits-entry table
    per output channel, whichever is smaller.
    """
    w = np.asarray(weights, dtype=np.int8)
    channels = w.shape[axis]
    rows = np.moveaxis(w, axis, 0).reshape(channels, -1)
    choice = _choose_tables([np.unique(r) for r in rows], w.size)
    if choice is None:
        return None
    bits, per_channel, lookup, table = choice
    idx_rows = np.stack([np.searchsorted(v, r) for v, r in zip(lookup, rows, strict=True)])
    moved_shape = (channels, *np.delete(np.array(w.shape), axis))
    idx = np.moveaxis(idx_rows.reshape(moved_shape), 0, axis)
    packed = pack_indices(idx.reshape(-1), bits)
    if packed.size + table.size >= w.size:
        return None
    return bits, packed, table, per_channel


@dataclass
class SparseLut:
    """Sparse LUT coding of one int8 filter (edgeq-rt ``eq_*_s8_sparse_lut`` kernels)."""

    bits: int
    per_channel: bool
    channel_size: int
    mask: np.ndarray  # uint8, ceil(K/8) bytes per channel
    offsets: np.ndarray  # uint32, nonzeros before each channel
    indices: np.ndarray  # uint8, packed k-bit indices of the nonzeros
    table: np.ndarray  # int8

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + self.offsets.nbytes + self.indices.nbytes
                   + self.table.nbytes)


def sparse_lut_encode(weights: np.ndarray, axis: int) -> SparseLut | None:
    """Bitmap of nonzeros + k-bit indices of the nonzero values, per output channel.

    A channel's weights are taken in filter order without the channel axis. None when no table
    fits (more than 16 distinct nonzero values).
    """
    w = np.asarray(weights, dtype=np.int8)
    channels = w.shape[axis]
    rows = np.moveaxis(w, axis, 0).reshape(channels, -1)
    nonzero = [r[r != 0] for r in rows]
    stored = int(sum(len(n) for n in nonzero))
    choice = _choose_tables([np.unique(n) for n in nonzero], stored)
    if choice is None:
        return None
    bits, per_channel, lookup, table = choice
    mask = np.concatenate([pack_indices((r != 0).astype(np.uint8), 1) for r in rows])
    counts = np.array([len(n) for n in nonzero], dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.uint32)
    idx = np.concatenate([np.searchsorted(v, n).astype(np.int64)
                          for v, n in zip(lookup, nonzero, strict=True)])
    packed = pack_indices(idx, bits) if idx.size else np.zeros(1, dtype=np.uint8)
    return SparseLut(bits, per_channel, rows.shape[1], mask.astype(np.uint8), offsets, packed,
                     table)


@dataclass
class LayerWeights:
    op_index: int
    opcode: str
    name: str
    count: int
    channels: int
    zeros: float  # fraction of int8 weights equal to 0
    max_distinct: int  # max distinct int8 values in one output channel
    lut_bits: int | None  # None: stays int8 (> 16 values, or LUT coding would not be smaller)
    # lut_bytes: the smaller of dense and sparse (bitmap + nonzero indices) LUT coding
    bias_bytes: int
    int8_bytes: int
    float32_bytes: int
    lut_bytes: int | None
    huffman_bytes: float
    entropy_bytes: float
    file_bytes: int = 0  # what the .tflite stores: int8 one byte a weight, int4 packed two


@dataclass
class WeightReport:
    layers: list[LayerWeights] = field(default_factory=list)

    def total(self, key: str) -> float:
        """Sum of a byte field over layers, biases included (LUT falls back to int8)."""
        out = 0.0
        for layer in self.layers:
            v = getattr(layer, key)
            if v is None:
                v = layer.int8_bytes
            bias = layer.bias_bytes
            out += v + bias
        return out

    def summary(self) -> dict[str, float]:
        f32 = self.total("float32_bytes")
        return {
            "float32_bytes": f32,
            "int8_bytes": self.total("int8_bytes"),
            "lut_bytes": self.total("lut_bytes"),
            "huffman_bytes": self.total("huffman_bytes"),
            "entropy_bytes": self.total("entropy_bytes"),
            "file_bytes": self.total("file_bytes"),
            "ratio_int8": f32 / self.total("int8_bytes"),
            "ratio_lut": f32 / self.total("lut_bytes"),
            "ratio_huffman": f32 / self.total("huffman_bytes"),
        }


def weight_report(model: bytes) -> WeightReport:
    """Size accounting of every int8/int4 weight layer of a .tflite (biases counted as int32).

    ``int8_bytes`` is what a layer would take as int8, ``file_bytes`` what the file stores."""
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(model)
    rep = WeightReport()
    for op in m.operators:
        if op.opcode not in WEIGHT_OPS:
            continue
        w = m.tensors[op.inputs[1]]
        if w.dtype not in ("int8", "int4") or w.data is None:
            continue
        b = m.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        bias_count = int(np.prod(b.shape)) if b is not None else 0
        axis = channel_axis(op.opcode)
        distinct = distinct_per_channel(w.data, axis)
        enc = lut_encode(w.data, axis)  # exactly what edgeq-rt's LUT lowering stores
        sparse = sparse_lut_encode(w.data, axis)
        coded = [int(enc[1].size + enc[2].size)] if enc is not None else []
        if sparse is not None and sparse.nbytes < w.data.size:
            coded.append(sparse.nbytes)
        n = int(w.data.size)
        ch = int(w.data.shape[axis])
        rep.layers.append(
            LayerWeights(
                op_index=op.index,
                opcode=op.opcode,
                name=m.tensors[op.outputs[0]].name,
                count=n,
                channels=ch,
                zeros=float(np.mean(w.data == 0)),
                max_distinct=int(distinct.max()),
                lut_bits=(enc[0] if enc is not None else sparse.bits if coded and sparse
                          else None),
                bias_bytes=4 * bias_count,
                int8_bytes=n,
                float32_bytes=4 * n,
                lut_bytes=min(coded) if coded else None,
                huffman_bytes=huffman_bits(w.data) / 8.0,
                entropy_bytes=entropy_bits(w.data) / 8.0,
                file_bytes=(n + 1) // 2 if w.dtype == "int4" else n,
            )
        )
    if not rep.layers:
        raise CodegenError("no int8/int4 CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED weights "
                           "found; give a full-integer int8 .tflite")
    return rep

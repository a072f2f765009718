"""Filters rearranged ahead of time into the order the kernels' inner loops read them.

The int8 conv and fully-connected kernels compute four output channels at a time, four input
values per step. They read weights from one pointer that walks a *block-interleaved* layout:
for each block of four output channels, for each group of four consecutive weights along the
reduction axis, the four channels' four bytes one after the other (16 bytes per step; one LDM
on a Cortex-M4, and the bytes of a word stay in reduction order so SXTB16 pairs weight k with
input k). Channels past the last full block keep the plain row-major order. Pure numpy, no C.
"""

from __future__ import annotations

import numpy as np

BLOCK = 4  # output channels per block (the kernels' register tile)
STEP = 4  # weights along the reduction axis per step (one 32-bit input load)


CONV_WINDOW_MAX = 256  # EQ_CONV_WINDOW_MAX: the conv kernel's stack copy of one window
# Copying each window pays off once enough output channels share it; on DSP cores whole windows
# with rows of two words or more are read in place (no copy), so 8 channels of a 3x3x3 conv
# already run faster on the tile than on the plain byte loop (measured on Cortex-M4).
WINDOW_MIN_CHANNELS = 8


def padded_row(row_bytes: int) -> int:
    """A filter row's length rounded up to whole 4-byte steps."""
    return -(-row_bytes // STEP) * STEP


def pad_rows(rows: np.ndarray, width: int) -> np.ndarray:
    """``rows[..., k]`` zero-padded along the last axis to ``width`` (zero weights add 0)."""
    pad = width - rows.shape[-1]
    return np.pad(rows, [(0, 0)] * (rows.ndim - 1) + [(0, pad)]).astype(np.int8)


def can_pack(reduction: int) -> bool:
    """Whether rows of ``reduction`` weights split into whole 4-byte steps."""
    return reduction > 0 and reduction % STEP == 0


def pack_blocks(rows: np.ndarray) -> np.ndarray:
    """``rows[c, k]`` (one row per output channel, reduction axis last) -> flat packed int8.

    Element ``(c, k)`` with ``c < 4 * (C // 4)`` lands at
    ``(c // 4) * 4 * K + (k // 4) * 16 + (c % 4) * 4 + k % 4``; later channels at ``c * K + k``.
    """
    w = np.asarray(rows, dtype=np.int8)
    if w.ndim != 2 or not can_pack(w.shape[1]):
        raise ValueError(f"cannot pack filter rows of shape {w.shape}")
    c, k = w.shape
    full = (c // BLOCK) * BLOCK
    blocks = (w[:full].reshape(c // BLOCK, BLOCK, k // STEP, STEP)
              .transpose(0, 2, 1, 3).reshape(-1))
    return np.concatenate([blocks, w[full:].reshape(-1)]).astype(np.int8)


def packed_index(c: int, k: int, channels: int, reduction: int) -> int:
    """Where ``pack_blocks`` puts element ``(c, k)`` (the formula the C kernels use)."""
    if c < (channels // BLOCK) * BLOCK:
        return ((c // BLOCK) * BLOCK * reduction + (k // STEP) * STEP * BLOCK
                + (c % BLOCK) * STEP + k % STEP)
    return c * reduction + k


def can_pack_depthwise(channels: int, depth_multiplier: int) -> bool:
    """Whether a depthwise filter splits into whole groups of four channels."""
    return depth_multiplier == 1 and channels > 0 and channels % BLOCK == 0


def pack_depthwise(filt: np.ndarray) -> np.ndarray:
    """Depthwise filter ``[1, H, W, C]`` (int8) -> int32 words of two int16 lanes.

    Group-major: for group ``g`` of channels ``4g .. 4g+3`` and tap ``t = y * W + x``, words
    ``2 * (g * H * W + t)`` and ``+ 1`` hold ``(w[4g], w[4g+2])`` and ``(w[4g+1], w[4g+3])``
    (low half first): the lanes SXTB16 makes of four input bytes, so one LDRD (walking a
    group's taps in order) + four SMLABB/SMLATT finish a tap. Sign-extended ahead of time, so
    the kernel extends only the inputs.
    """
    w = np.asarray(filt, dtype=np.int8)
    if w.ndim != 4 or w.shape[0] != 1 or not can_pack_depthwise(w.shape[3], 1):
        raise ValueError(f"cannot pack depthwise filter of shape {w.shape}")
    lanes = w.reshape(-1, w.shape[3] // BLOCK, BLOCK).astype(np.int32)  # [taps, groups, 4]
    lanes = lanes.transpose(1, 0, 2)  # [groups, taps, 4]
    low = lanes[..., [0, 1]] & 0xFFFF
    high = lanes[..., [2, 3]] << 16
    return (low | high).astype(np.int32).reshape(-1)


def can_pack_depthwise_multiplier(depth_multiplier: int, filter_h: int, filter_w: int) -> bool:
    """Whether a depthwise filter with depth multiplier > 1 runs as one small convolution per
    input channel: a padded window that fits the kernel's stack copy."""
    return depth_multiplier > 1 and filter_h * padded_row(filter_w) <= CONV_WINDOW_MAX


def pack_depthwise_multiplier(filt: np.ndarray, depth_multiplier: int) -> np.ndarray:
    """Depthwise filter ``[1, H, W, C * M]`` (int8, M = depth multiplier) -> flat packed int8.

    Input channel ``c`` feeds outputs ``c * M .. c * M + M - 1``: its filter, one row per output
    (the ``H x W`` window, each window row zero-padded to ``padded_row(W)`` taps), goes through
    ``pack_blocks``; the channels follow one another. The kernel reads each window row as
    ``padded_row(W)`` consecutive input bytes (zero weights on the padding taps add 0); the
    last ``M % 4`` outputs' rows stay plain (``pack_blocks``' remainder).
    """
    w = np.asarray(filt, dtype=np.int8)
    if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] % depth_multiplier != 0 or \
            not can_pack_depthwise_multiplier(depth_multiplier, w.shape[1], w.shape[2]):
        raise ValueError(f"cannot pack depthwise filter of shape {w.shape} "
                         f"with depth multiplier {depth_multiplier}")
    _, h, width, oc = w.shape
    rows = w[0].transpose(2, 0, 1)  # [oc, H, W]
    rows = pad_rows(rows, padded_row(width)).reshape(oc // depth_multiplier, depth_multiplier, -1)
    return np.concatenate([pack_blocks(r) for r in rows]).astype(np.int8)

"""The edgeq-rt generator: refusals, determinism, the generated API, cross-compilation, planner."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_edgeq_rt import keras_layers, random_inputs
from helpers_host_harness import CORTEX_M4_CFLAGS, build_host_model, compile_objects

from edgeq.codegen.edgeq_rt import runtime_dir, write_edgeq_rt
from edgeq.codegen.kernels import kernel_sources
from edgeq.codegen.planner import Buffer, check_plan, plan_arena
from edgeq.errors import CodegenError, EdgeqError, ModelError


@pytest.fixture()
def hello_world(shared_models: Path) -> Path:
    return shared_models / "tflm" / "hello_world_int8.tflite"


@pytest.fixture()
def person_detect(shared_models: Path) -> Path:
    return shared_models / "tflm" / "person_detect.tflite"


# --- refusals: one line, nothing written ---------------------------------------------------------


def _refused(path: Path, tmp_path: Path, exc: type[EdgeqError] = CodegenError) -> str:
    out = tmp_path / "out"
    with pytest.raises(exc) as err:
        write_edgeq_rt(path, out)
    assert not out.exists(), "a refused model must not leave files behind"
    assert not list(tmp_path.glob(".out.*")), "no temp directory left behind"
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def _convert(model, *, quant: str | None) -> bytes:  # noqa: ANN001
    from edgeq.tfenv import import_tf

    tf = import_tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "int8":
        rng = np.random.default_rng(0)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])

        def rep():  # noqa: ANN202
            for _ in range(8):
                yield [rng.standard_normal((1, *shape)).astype(np.float32)]

        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _dense_model():  # noqa: ANN202
    keras = keras_layers()
    inp = keras.Input((64,))
    out = keras.layers.Dense(64, activation="relu")(inp)
    return keras.Model(inp, keras.layers.Dense(8)(out))


def test_float_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "float.tflite"
    path.write_bytes(_convert(_dense_model(), quant=None))
    msg = _refused(path, tmp_path)
    assert "float model" in msg and "edgeq quantize" in msg


def test_hybrid_dynamic_range_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(_convert(_dense_model(), quant="dynamic"))
    msg = _refused(path, tmp_path)
    assert "hybrid" in msg and "FULLY_CONNECTED" in msg and "representative" in msg


def test_unsupported_op_is_refused_with_its_index_and_keras_layer(tmp_path: Path) -> None:
    from edgeq.tfenv import import_tf

    tf = import_tf()
    keras = keras_layers()
    inp = keras.Input((16,))
    x = keras.layers.Dense(16)(inp)
    x = keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1), name="running_sum")(x)
    path = tmp_path / "cumsum.tflite"
    path.write_bytes(_convert(keras.Model(inp, keras.layers.Dense(4)(x)), quant="int8"))
    msg = _refused(path, tmp_path)
    assert re.search(r"op \d+ CUMSUM in Keras layer 'running_sum' \(op not supported\)", msg), msg


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty"])
def test_corrupt_flatbuffer_is_refused(hello_world: Path, tmp_path: Path, kind: str) -> None:
    data = hello_world.read_bytes()
    bad = {
        "truncated": data[: len(data) // 3],
        "garbage": data[:8] + bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8)),
        "empty": b"",
    }[kind]
    path = tmp_path / "bad.tflite"
    path.write_bytes(bad)
    _refused(path, tmp_path, ModelError)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.tflite", tmp_path)


# --- the generated code ------------------------------------------------------------------------


def test_generation_is_deterministic(person_detect: Path, tmp_path: Path) -> None:
    a = write_edgeq_rt(person_detect, tmp_path / "a")
    b = write_edgeq_rt(person_detect, tmp_path / "b")
    for name in ("model.c", "model.h", "memory_plan.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.arena_bytes == b.arena_bytes


def test_header_matches_the_pinned_api(person_detect: Path, tmp_path: Path) -> None:
    res = write_edgeq_rt(person_detect, tmp_path / "g", name="person")
    h = (tmp_path / "g" / "model.h").read_text()
    c = (tmp_path / "g" / "model.c").read_text()
    sha = hashlib.sha256(person_detect.read_bytes()).hexdigest()[:16]
    assert f'#define EDGEQ_MODEL_HASH "{sha}"' in h
    assert '#define EDGEQ_MODEL_NAME "person"' in h
    assert f"#define EDGEQ_MODEL_ARENA_BYTES {res.arena_bytes}" in h
    assert f"#define EDGEQ_MODEL_NUM_LAYERS {len(res.layers)}" in h
    assert "#if EQ_RT_ABI_VERSION != 1" in h and "#error" in h
    for decl in ("void *edgeq_model_input(int32_t i);", "eq_status edgeq_model_invoke(void);",
                 "void edgeq_layer_hook(int32_t layer, int32_t end);"):
        assert decl in h
    # weights are const and 16-byte aligned (here the biases: every int8 filter is packed, the
    # first depthwise one, multiplier 8, into filter_blocks); parameters are const structs
    assert re.search(r"static const int32_t tensor\d+\[\d+\] EQ_ALIGN16 = \{", c)
    assert c.count(".filter_blocks = ") == 1
    assert "static const eq_conv2d_params op" in c
    assert res.arena_bytes % 16 == 0
    # RESHAPE is a view: no call, and its layer is not counted
    assert len(res.layers) == 30 and res.views == [29]
    assert sum(layer.macs for layer in res.layers) > 7_000_000


def test_profile_hook_is_called_around_every_layer(hello_world: Path, tmp_path: Path) -> None:
    host = build_host_model(hello_world, tmp_path, defines=["EDGEQ_PROFILE_LAYERS"])
    host.run(random_inputs(hello_world, 5))
    assert host.last_stdout.split() == ["hook_calls", str(5 * 3 * 2)]


REPEAT_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"
int main(void)
{
    static uint8_t first[4096];
    int8_t *in = (int8_t *)edgeq_model_input(0);
    for (int32_t i = 0; i < edgeq_model_input_info[0].bytes; ++i) {
        in[i] = (int8_t)((i * 37) % 251 - 125);
    }
    const int32_t n = edgeq_model_output_info[0].bytes;
    if (edgeq_model_invoke() != EQ_OK) return 2;
    memcpy(first, edgeq_model_output(0), (size_t)n);
    if (edgeq_model_invoke() != EQ_OK) return 2;  /* input not rewritten */
    printf("%s\n", memcmp(first, edgeq_model_output(0), (size_t)n) == 0 ? "same" : "differs");
    return 0;
}
"""


def test_preserved_inputs_survive_repeated_invokes(shared_models: Path, tmp_path: Path) -> None:
    import subprocess

    path = shared_models / "tflm" / "micro_speech_quantized.tflite"
    default = write_edgeq_rt(path, tmp_path / "reuse")
    kept = write_edgeq_rt(path, tmp_path / "keep", preserve_inputs=True)
    assert kept.arena_bytes >= default.arena_bytes
    (tmp_path / "main.c").write_text(REPEAT_MAIN)
    for res in (default, kept):
        exe = res.out_dir / "repeat"
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2",
                        "-I", str(res.out_dir), "-I", str(res.include_dir),
                        str(tmp_path / "main.c"), str(res.out_dir / "model.c"),
                        *map(str, res.kernel_sources), "-o", str(exe), "-lm"], check=True)
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        if res is kept:
            assert out.strip() == "same"
            assert "#define EDGEQ_MODEL_INPUTS_PRESERVED 1" in (res.out_dir / "model.h").read_text()


def test_abi_mismatch_refuses_to_compile(hello_world: Path, tmp_path: Path) -> None:
    write_edgeq_rt(hello_world, tmp_path / "g")
    inc = tmp_path / "include"
    shutil.copytree(runtime_dir() / "include", inc)
    rt = inc / "edgeq_rt.h"
    rt.write_text(rt.read_text().replace("#define EQ_RT_ABI_VERSION 1", "#define EQ_RT_ABI_VERSION 2"))
    import subprocess

    proc = subprocess.run(["gcc", "-std=c99", "-I", str(tmp_path / "g"), "-I", str(inc), "-c",
                           str(tmp_path / "g" / "model.c"), "-o", str(tmp_path / "m.o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "regenerate" in proc.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_cross_compiles_for_cortex_m4(person_detect: Path, tmp_path: Path) -> None:
    res = write_edgeq_rt(person_detect, tmp_path / "g")
    objs = compile_objects(tmp_path / "g", tmp_path / "obj", cc="arm-none-eabi-gcc",
                           cflags=CORTEX_M4_CFLAGS, sources=res.kernel_sources)
    assert len(objs) == len(res.kernel_sources) + 1
    assert all(o.stat().st_size > 0 for o in objs)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_every_conv_family_kernel_cross_compiles(tmp_path: Path) -> None:
    import subprocess

    kernels = sorted({p for p in kernel_sources() if _is_conv_family(p)})
    assert len(kernels) >= 16
    for src in kernels:
        for defs in ([], ["-DEDGEQ_RT_SINGLE_ROUNDING"]):
            proc = subprocess.run(
                ["arm-none-eabi-gcc", *CORTEX_M4_CFLAGS, *defs, "-I", str(runtime_dir() / "include"),
                 "-c", str(src), "-o", str(tmp_path / f"{src.stem}.o")],
                capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr


def _is_conv_family(p: Path) -> bool:
    return any(p.name.startswith(k) for k in (
        "eq_conv2d", "eq_depthwise", "eq_fully_connected", "eq_avg_pool", "eq_max_pool",
        "eq_quantize", "eq_dequantize", "eq_transpose_conv"))


def test_timeline_png_is_written(hello_world: Path, tmp_path: Path) -> None:
    res = write_edgeq_rt(hello_world, tmp_path / "g", timeline_png=True)
    png = tmp_path / "g" / "memory_timeline.png"
    assert png in res.files and png.read_bytes()[:4] == b"\x89PNG"


# --- the memory planner ------------------------------------------------------------------------


def test_views_share_storage_and_cost_nothing(shared_models: Path, tmp_path: Path) -> None:
    from edgeq.tflite import read_tflite

    path = shared_models / "tflm" / "micro_speech_quantized.tflite"
    model = read_tflite(path)
    reshape = model.operators[0]
    assert reshape.opcode == "RESHAPE"
    res = write_edgeq_rt(path, tmp_path)
    names = {b.name for b in res.plan.buffers}
    assert f"t{reshape.inputs[0]}" in names  # the model input holds the data ...
    assert f"t{reshape.outputs[0]}" not in names  # ... and the reshaped view is no new buffer
    assert res.views == [0] and [layer.op_index for layer in res.layers] == [1, 2, 3]
    c = (tmp_path / "model.c").read_text()
    input_offset = res.plan.offset_of(f"t{reshape.inputs[0]}")
    assert f"eq_depthwise_conv2d_s8(&op1_params, EQ_ARENA(int8_t, {input_offset})," in c


def test_planner_reuses_memory_and_never_overlaps_live_buffers() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        bufs = []
        for k in range(12):
            first = int(rng.integers(-1, 10))
            bufs.append(Buffer(f"b{k}", int(rng.integers(1, 5000)), first,
                               first + int(rng.integers(0, 4))))
        plan = plan_arena(bufs, 12)
        check_plan(plan.buffers)  # raises on any overlap of live buffers
        peak = max(sum(b.size for b in bufs if b.first <= s <= b.last) for s in range(-1, 14))
        assert peak <= plan.arena_bytes <= sum(-(-b.size // 16) * 16 for b in bufs)
        assert all(b.offset % 16 == 0 for b in plan.buffers)


def test_planner_chain_needs_only_two_buffers() -> None:
    chain = [Buffer(f"t{k}", 1000, k - 1, k) for k in range(10)]
    plan = plan_arena(chain, 9)
    assert plan.arena_bytes == 2 * 1008
    assert len(plan.timeline) == 9 and plan.timeline[3]["live_bytes"] == 2000


def _raster_overlap_is_safe(d: int, n: int, ih: int, iw: int, ic: int, oh: int, ow: int,
                            oc: int, k: int, s: int, pad: int, dil: int, es: int) -> bool:
    """Replay the conv kernel's order: per output pixel read the window, write all channels,
    and the window is read again for every further channel; the output starts d bytes above the
    input. Safe when no input byte is read after the output overwrote it."""
    clobbered = np.zeros(n * ih * iw * ic * es, dtype=bool)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                window = [((b * ih + y) * iw + x) * ic
                          for y in (oy * s - pad + dil * f for f in range(k)) if 0 <= y < ih
                          for x in (ox * s - pad + dil * f for f in range(k)) if 0 <= x < iw]
                p = (b * oh + oy) * ow + ox
                start, end = d + p * oc * es, d + (p + 1) * oc * es
                lo, hi = max(start, 0), min(end, clobbered.size)
                for phase in range(2):  # before the first write, and after writing the pixel
                    for w in window:
                        if clobbered[w * es : (w + ic) * es].any():
                            return False
                    if phase == 0 and lo < hi:
                        clobbered[lo:hi] = True
    return True


def test_raster_overlap_never_lets_a_kernel_read_overwritten_input() -> None:
    from edgeq.codegen.ops_conv import out_size, raster_overlap, same_padding

    rng = np.random.default_rng(4)
    helped = unsafe = 0
    for _ in range(60):
        n, ih, iw = int(rng.integers(1, 3)), int(rng.integers(3, 9)), int(rng.integers(3, 9))
        ic, oc = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        k, s, dil = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        es = int(rng.choice([1, 2]))
        padding = str(rng.choice(["SAME", "VALID"]))
        oh, ow = (out_size(padding, v, k, s, dil) for v in (ih, iw))
        if oh <= 0 or ow <= 0:
            continue
        pad_h = same_padding(s, dil, ih, k, oh) if padding == "SAME" else 0
        pad_w = same_padding(s, dil, iw, k, ow) if padding == "SAME" else 0
        if pad_h != pad_w:
            continue
        d = raster_overlap(n, (ih, iw, ic), (oh, ow, oc), {"h": s, "w": s},
                           {"h": pad_h, "w": pad_w}, es, es)
        assert _raster_overlap_is_safe(d, n, ih, iw, ic, oh, ow, oc, k, s, pad_h, dil, es)
        helped += d > -(n * oh * ow * oc * es)  # overlap saves bytes
        # the replay does catch a clobber when the output starts a window's width higher
        unsafe += not _raster_overlap_is_safe(d + (k * dil + 1) * iw * ic * es, n, ih, iw, ic,
                                              oh, ow, oc, k, s, pad_h, dil, es)
    assert helped > 10 and unsafe > 10


def test_planner_overlaps_shrink_a_chain_and_stay_valid() -> None:
    chain = [Buffer(f"t{k}", 1000, k - 1, k) for k in range(6)]
    plain = plan_arena(chain, 5)
    overlaps = [(f"t{k + 1}", f"t{k}", -100) for k in range(5)]
    tight = plan_arena(chain, 5, overlaps=overlaps)
    assert tight.arena_bytes < plain.arena_bytes
    check_plan(tight.buffers, overlaps)
    with pytest.raises(AssertionError):
        check_plan(tight.buffers)  # the same plan is invalid without the overlaps


def test_check_plan_detects_overlap() -> None:
    with pytest.raises(AssertionError):
        check_plan([Buffer("a", 100, 0, 2, 0), Buffer("b", 100, 1, 3, 50)])

"""Test aid: run a generated edgeq-rt model on the host (compile it with gcc, stream a test set
through). Lives with the tests, not in the product package.

This is how edgeq-rt is held to the reference interpreters: the same generated C that goes on a
microcontroller is compiled for the host (``-std=c99 -Wall -Wextra -Werror -O2``), a small C
``main`` reads every sample from a binary file, invokes the model and writes every output, and
the caller compares the bytes with ``run_tflm`` / ``run_litert_ref``. ``single_rounding=True``
builds with ``-DEDGEQ_RT_SINGLE_ROUNDING`` (LiteRT's FULLY_CONNECTED rounding).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.codegen.edgeq_rt import EdgeqRtResult, runtime_dir, write_edgeq_rt
from edgeq.codegen.kernels import kernel_sources
from edgeq.errors import BuildError

HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
CORTEX_M4_CFLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                    *HOST_CFLAGS)

_NP_DTYPES = {0: np.int8, 1: np.int16, 2: np.float32, 3: np.int32, 4: np.uint8}

HOST_MAIN = r"""/* edgeq-rt host runner: samples in (binary, all inputs per sample), outputs out. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#if defined(EDGEQ_PROFILE_LAYERS)
static long eq_hook_calls;
void edgeq_layer_hook(int32_t layer, int32_t end)
{
    (void)layer;
    (void)end;
    ++eq_hook_calls;
}
#endif

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s inputs.bin outputs.bin count\n", argv[0]);
        return 2;
    }
    FILE *fin = fopen(argv[1], "rb");
    FILE *fout = fopen(argv[2], "wb");
    const long count = strtol(argv[3], NULL, 10);
    if (fin == NULL || fout == NULL) {
        fprintf(stderr, "cannot open files\n");
        return 2;
    }
    for (long s = 0; s < count; ++s) {
        for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
            const size_t n = (size_t)edgeq_model_input_info[i].bytes;
            if (fread(edgeq_model_input(i), 1, n, fin) != n) {
                fprintf(stderr, "short input file at sample %ld\n", s);
                return 3;
            }
        }
        const eq_status status = edgeq_model_invoke();
        if (status != EQ_OK) {
            fprintf(stderr, "invoke failed with status %d at sample %ld\n", (int)status, s);
            return 4;
        }
        for (int32_t o = 0; o < EDGEQ_MODEL_NUM_OUTPUTS; ++o) {
            const size_t n = (size_t)edgeq_model_output_info[o].bytes;
            if (fwrite(edgeq_model_output(o), 1, n, fout) != n) {
                return 5;
            }
        }
    }
#if defined(EDGEQ_PROFILE_LAYERS)
    printf("hook_calls %ld\n", eq_hook_calls);
#endif
    fclose(fin);
    return fclose(fout) == 0 ? 0 : 5;
}
"""


@dataclass
class IoSpec:
    dtype: type
    shape: tuple[int, ...]


def _io_specs(model_path: Path) -> tuple[list[IoSpec], list[IoSpec]]:
    from edgeq.tflite import read_tflite

    m = read_tflite(model_path)

    def spec(i: int) -> IoSpec:
        t = m.tensors[i]
        return IoSpec(np.dtype(t.dtype).type, tuple(int(d) for d in t.shape))

    return [spec(i) for i in m.inputs], [spec(i) for i in m.outputs]


def _run(cmd: Sequence[str], what: str) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise BuildError(f"{what} failed: {' | '.join(detail[:12])}")
    return proc.stdout


def compile_objects(
    gen_dir: Path, out_dir: Path, *, cc: str = "gcc", cflags: Sequence[str] = HOST_CFLAGS,
    defines: Sequence[str] = (), sources: Sequence[Path] | None = None,
) -> list[Path]:
    """Compile model.c and its kernels to objects (``-c``); used for the cross-compile check."""
    out_dir.mkdir(parents=True, exist_ok=True)
    srcs = [gen_dir / "model.c", *(sources if sources is not None else kernel_sources())]
    objs = []
    for k, src in enumerate(sorted(set(srcs), key=str)):
        obj = out_dir / f"{k:03d}_{src.stem}.o"
        _run([cc, *cflags, *(f"-D{d}" for d in defines), "-I", str(gen_dir),
              "-I", str(runtime_dir() / "include"), "-c", str(src), "-o", str(obj)],
             f"{cc} {src.name}")
        objs.append(obj)
    return objs


@dataclass
class HostModel:
    """A generated model compiled into a host executable, ready to run test sets."""

    exe: Path
    inputs: list[IoSpec]
    outputs: list[IoSpec]
    work_dir: Path
    last_stdout: str = ""

    def run(self, inputs: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run every sample (first axis) through the model; one stacked array per output."""
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self.inputs):
            raise ValueError(f"model has {len(self.inputs)} inputs, got {len(arrays)} arrays")
        count = arrays[0].shape[0]
        per_sample = []
        for arr, spec in zip(arrays, self.inputs, strict=True):
            a = np.ascontiguousarray(arr, dtype=spec.dtype).reshape(count, -1)
            if a.shape[1] != int(np.prod(spec.shape)):
                raise ValueError(f"input holds {a.shape[1]} values per sample, "
                                 f"model wants {spec.shape}")
            per_sample.append(a)
        blob = b"".join(a[s].tobytes() for s in range(count) for a in per_sample)
        in_file, out_file = self.work_dir / "inputs.bin", self.work_dir / "outputs.bin"
        in_file.write_bytes(blob)
        self.last_stdout = _run([str(self.exe), str(in_file), str(out_file), str(count)],
                                "host model run")
        raw = out_file.read_bytes()
        sizes = [int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in self.outputs]
        if len(raw) != count * sum(sizes):
            raise BuildError(f"host model wrote {len(raw)} bytes, expected {count * sum(sizes)}")
        outs: list[list[np.ndarray]] = [[] for _ in self.outputs]
        pos = 0
        for _ in range(count):
            for j, (spec, size) in enumerate(zip(self.outputs, sizes, strict=True)):
                outs[j].append(np.frombuffer(raw[pos : pos + size], dtype=spec.dtype))
                pos += size
        return [
            np.stack(o).reshape((count, *spec.shape[1:]) if spec.shape and spec.shape[0] == 1
                                else (count, *spec.shape))
            for o, spec in zip(outs, self.outputs, strict=True)
        ]


def build_host_model(
    tflite_path: str | Path,
    work_dir: str | Path,
    *,
    single_rounding: bool = False,
    defines: Sequence[str] = (),
    result: EdgeqRtResult | None = None,
    cc: str = "gcc",
) -> HostModel:
    """Generate (unless ``result`` is given) and compile the model with the host runner main."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if result is None:
        result = write_edgeq_rt(tflite_path, work / "gen", plan_json=False)
    gen = result.out_dir
    if shutil.which(cc) is None:
        raise BuildError(f"{cc} not found; install a C compiler")
    main_c = work / "host_main.c"
    main_c.write_text(HOST_MAIN, encoding="utf-8")
    defs = [*defines, *(["EDGEQ_RT_SINGLE_ROUNDING"] if single_rounding else [])]
    tag = "single" if single_rounding else "double"
    exe = work / f"host_model_{tag}"
    srcs = [main_c, gen / "model.c", *result.kernel_sources]
    _run([cc, *HOST_CFLAGS, *(f"-D{d}" for d in defs), "-I", str(gen),
          "-I", str(result.include_dir), *map(str, srcs), "-o", str(exe), "-lm"],
         f"{cc} host model")
    ins, outs = _io_specs(Path(tflite_path))
    return HostModel(exe, ins, outs, work)

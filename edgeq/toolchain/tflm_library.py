"""TFLite Micro static libraries built once from ``../shared/third_party/tflite-micro`` and cached.

A TFLM library build takes minutes, so each variant (host, Cortex-M4 + CMSIS-NN, Cortex-M4
reference kernels) is built once with TFLM's own Makefile in a private copy of the tree under
``~/.cache/edgeq/tflm/<key>/`` (``EDGEQ_CACHE_DIR`` overrides ``~/.cache/edgeq``) and reused by
everything that links TFLM: the runtime speed benchmark, the TFLM bundle test, a TFLM firmware.
The copy is built in a temporary directory and renamed into place, so an interrupted build leaves
no half-built cache entry. Builds run at ``nice 10`` with ``-j2``: the machine is shared.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgeq.errors import BuildError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
M4_FLAGS = ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb")
# C++ flags code linked with the library must share (TFLM's Makefile builds with these)
CXXFLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
            "-funsigned-char", "-ffunction-sections", "-fdata-sections")
# edgeq_model_invoke's codes beyond edgeq-rt's in a TFLM firmware (firmware/tflm_rt)
TFLM_STATUS = {4: "an op registration failed", 5: "the model's schema version is not TFLM's",
               6: "AllocateTensors() failed (arena too small)",
               7: "an input/output tensor differs from the model's I/O table",
               8: "Invoke() failed"}
# --tflm-kernels -> the Cortex-M4 library variant (the only firmware core built so far)
M4_KERNELS = {"cmsis-nn": "cm4_cmsis_nn", "reference": "cm4_reference"}


@dataclass(frozen=True)
class Variant:
    name: str
    make_args: tuple[str, ...]
    gen_dir: str  # under gen/
    cross: bool


VARIANTS = {
    "host": Variant("host", (), "linux_x86_64_default_gcc", False),
    "cm4_cmsis_nn": Variant("cm4_cmsis_nn", ("TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m4+fp",
                                             "OPTIMIZED_KERNEL_DIR=cmsis_nn",
                                             "TARGET_TOOLCHAIN_ROOT=/usr/bin/"),
                            "cortex_m_generic_cortex-m4+fp_default_cmsis_nn_gcc", True),
    "cm4_reference": Variant("cm4_reference", ("TARGET=cortex_m_generic",
                                               "TARGET_ARCH=cortex-m4+fp",
                                               "TARGET_TOOLCHAIN_ROOT=/usr/bin/"),
                             "cortex_m_generic_cortex-m4+fp_default_gcc", True),
}


@dataclass(frozen=True)
class TflmLibrary:
    variant: str
    root: Path  # the built copy of the TFLM tree
    library: Path  # libtensorflow-microlite.a

    @property
    def include_dirs(self) -> list[Path]:
        dl = self.root / "tensorflow/lite/micro/tools/make/downloads"
        return [self.root, dl / "flatbuffers/include", dl / "gemmlowp"]

    @property
    def defines(self) -> list[str]:
        return ["-DTF_LITE_STATIC_MEMORY"]


def tflm_source(tree: str | os.PathLike[str] | None = None) -> Path:
    """The TFLM tree: ``tree`` (``--tflm-dir``), else ``EDGEQ_TFLM_DIR``, else the offline tree
    in ``../shared/third_party/tflite-micro``."""
    env = os.environ.get("EDGEQ_TFLM_DIR")
    given = tree if tree is not None else env
    src = (Path(given).expanduser() if given
           else REPO_ROOT.parent / "shared" / "third_party" / "tflite-micro")
    if not (src / MAKEFILE).is_file():
        how = ("--tflm-dir" if tree is not None else "EDGEQ_TFLM_DIR" if env
               else "no --tflm-dir or EDGEQ_TFLM_DIR given, and the default")
        raise BuildError(f"TFLite Micro tree not found at {src} ({how}: no {MAKEFILE} there); "
                         "pass --tflm-dir DIR with a tflite-micro checkout (or set "
                         "EDGEQ_TFLM_DIR)")
    return src


def cache_root() -> Path:
    env = os.environ.get("EDGEQ_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "edgeq") / "tflm"


def cache_key(variant: Variant, src: Path) -> str:
    """Variant name + a digest of the tree identity and the make arguments."""
    h = hashlib.sha256()
    h.update(str(src.resolve()).encode())
    h.update((src / MAKEFILE).read_bytes())
    readme = src.parent / "README.md"
    if readme.is_file():
        h.update(readme.read_bytes())  # names the pinned commits
    h.update(" ".join(variant.make_args).encode())
    return f"{variant.name}-{h.hexdigest()[:12]}"


def tflm_library(variant: str, *, jobs: int = 2, build: bool = True,
                 tree: str | os.PathLike[str] | None = None,
                 progress: bool = False) -> TflmLibrary:
    """The cached library of ``variant`` from ``tree`` (see ``tflm_source``), built first if
    absent (and ``build`` is true); ``progress`` counts the compiled files on stderr."""
    if variant not in VARIANTS:
        raise BuildError(f"unknown TFLM variant {variant!r}; use one of {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    src = tflm_source(tree)
    dest = cache_root() / cache_key(v, src)
    lib = dest / "gen" / v.gen_dir / "lib" / "libtensorflow-microlite.a"
    if lib.is_file():
        return TflmLibrary(variant, dest, lib)
    if not build:
        raise BuildError(f"TFLM library {variant} is not built yet (expected {lib})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same key: wait for it
        if lib.is_file():
            return TflmLibrary(variant, dest, lib)
        _build(v, src, dest, jobs, progress)
    return TflmLibrary(variant, dest, lib)


def _make(cmd: list[str], cwd: Path, env: dict[str, str], progress: bool) -> tuple[int, str]:
    """Run make, merging its output; with ``progress`` a bar counts the compile commands."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="building TFLM", unit="file", leave=False)
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if bar is not None and " -c " in line:
                bar.update(1)
        code = proc.wait()
    if bar is not None:
        bar.close()
    return code, "".join(lines)


def _build(v: Variant, src: Path, dest: Path, jobs: int, progress: bool = False) -> None:
    variant = v.name
    if v.cross and shutil.which("arm-none-eabi-gcc") is None:
        raise BuildError("arm-none-eabi-gcc not found; install gcc-arm-none-eabi (make setup)")
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    log.info("building TFLM %s in %s (a few minutes, once)", variant, tmp)
    shutil.copytree(src, tmp, symlinks=True)
    for p in tmp.rglob("*"):  # the shared tree is read-only; the copy must be writable
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
    tmp.chmod(tmp.stat().st_mode | 0o200)
    env = dict(os.environ)
    # TFLM's Makefile runs a python3 that needs numpy and Pillow while it parses
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = ["nice", "-n", "10", "make", "-f", MAKEFILE, f"-j{jobs}", *v.make_args, "microlite"]
    code, output = _make(cmd, tmp, env, progress)
    if code != 0:
        (tmp.parent / f"{dest.name}.log").write_text(output)
        shutil.rmtree(tmp, ignore_errors=True)
        errors = [ln for ln in output.splitlines() if "error" in ln.lower()]
        tail = (errors or output.strip().splitlines() or ["?"])[0 if errors else -1]
        raise BuildError(f"TFLM {variant} build failed ({tail[:160]}); log in "
                         f"{tmp.parent / (dest.name + '.log')}")
    tmp.rename(dest)

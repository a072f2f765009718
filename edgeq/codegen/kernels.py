"""Where the edgeq-rt C kernels live, found by a naming rule instead of by reading C.

Rule: ``firmware/runtime/kernels/eq_<op>_<dtype>[_<variant>].c`` defines exactly one kernel,
the function ``eq_<op>_<dtype>[_<variant>]``. ``<dtype>`` is the element type the kernel works
on (``s8``, ``s16``, ``s32``, ``u8``, ``f32``, or ``x`` for any), ``<op>`` is lower-case words
joined by ``_``, ``<variant>`` an optional implementation choice (``lut``, ``sparse_lut``, a
second type such as the int16 output of ``eq_softmax_s8_s16``). Helpers two kernels share
live in a header next to them (``eq_<op>_impl.h``). A lowering names the function; the file
follows from the name, so adding a kernel is adding one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgeq.errors import CodegenError

KERNEL_DTYPES = ("s8", "s16", "s32", "u8", "f32", "x")
_WORDS = r"[a-z0-9]+(?:_[a-z0-9]+)*"
KERNEL_NAME = re.compile(
    rf"eq_(?P<op>{_WORDS}?)_(?P<dtype>{'|'.join(KERNEL_DTYPES)})(?:_(?P<variant>{_WORDS}))?"
)


@dataclass(frozen=True)
class KernelName:
    op: str
    dtype: str
    variant: str | None

    @property
    def function(self) -> str:
        return "_".join(["eq", self.op, self.dtype] + ([self.variant] if self.variant else []))


def parse_kernel_name(function: str) -> KernelName:
    """Split a kernel function name by the rule; ``CodegenError`` if it does not obey it."""
    m = KERNEL_NAME.fullmatch(function)
    if m is None or any(w in KERNEL_DTYPES for w in m["op"].split("_")):
        raise CodegenError(
            f"kernel name {function!r} does not follow eq_<op>_<dtype>[_<variant>] with dtype "
            f"one of {', '.join(KERNEL_DTYPES)}"
        )
    return KernelName(m["op"], m["dtype"], m["variant"])


def runtime_dir() -> Path:
    """``firmware/runtime`` of this checkout: kernels and headers the generated C links with."""
    return Path(__file__).resolve().parents[2] / "firmware" / "runtime"


def kernel_source(function: str, root: Path | None = None) -> Path:
    """The one ``.c`` file that defines ``function`` (by the naming rule)."""
    parse_kernel_name(function)
    path = (root or runtime_dir()) / "kernels" / f"{function}.c"
    if not path.is_file():
        raise CodegenError(
            f"runtime kernel {function} missing: no {path}; update the edgeq checkout"
        )
    return path


def kernel_sources(root: Path | None = None) -> list[Path]:
    """Every kernel file, sorted (for builds that link all kernels)."""
    return sorted(((root or runtime_dir()) / "kernels").glob("eq_*.c"))

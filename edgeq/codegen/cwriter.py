"""The one place that turns values and text into C/C++ source tokens.

Every literal, identifier and comment the generators write goes through here, because text
from a model (tensor and op names, metadata), a file name or a label file is untrusted: a
carriage return or a backslash-newline in a comment, or ``??/`` (a trigraph under
``-std=c++11 -trigraphs``) in a string, is enough to end the comment or string early and put
code of the model author's choice into the firmware. So:

* comments keep printable ASCII only, without ``\\``, ``?`` (no trigraph can form) and without
  ``/*`` or ``*/`` (no early end, no nested-comment warning); anything else becomes ``_``;
* string literals escape ``\\``, ``"``, every ``?``, control characters and non-ASCII (as
  three-digit octal escapes of the UTF-8 bytes, which cannot swallow a following digit);
* identifiers either come from a strict mapping onto ``[A-Za-z_][A-Za-z0-9_]*`` that avoids
  C/C++ keywords and reserved names, or (when the user gave them) are checked and refused.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping

import numpy as np

from edgeq.errors import CodegenError

# C99/C11/C23 and C++11..C++20 keywords, alternative operator tokens, and the macros and types
# the generated files (or the headers they include) define: none may be a generated name.
KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
    _Generic _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false
    nullptr static_assert thread_local true typeof typeof_unqual _BitInt _Decimal32
    _Decimal64 _Decimal128
    and and_eq asm bitand bitor catch char8_t char16_t char32_t class compl concept consteval
    constinit const_cast co_await co_return co_yield decltype delete dynamic_cast explicit
    export final friend import module mutable namespace new noexcept not not_eq operator or
    or_eq override private protected public reinterpret_cast requires static_cast template
    this throw try typeid typename using virtual wchar_t xor xor_eq
""".split())
RESERVED = frozenset("""
    main std tflite NULL EOF errno assert offsetof size_t ptrdiff_t int8_t int16_t int32_t
    int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t INFINITY NAN
""".split())

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_IDENT = 48
_MAX_COMMENT = 160


# --- identifiers ---------------------------------------------------------------------------------


def is_reserved(name: str) -> bool:
    """Keywords, names the C/C++ implementation owns (``_X``, ``__``, leading ``_``), and the
    standard names the generated files use."""
    return (name in KEYWORDS or name in RESERVED or name.startswith("_") or "__" in name)


def identifier(text: str, fallback: str = "model") -> str:
    """A safe identifier derived from arbitrary text (a model or file name).

    Characters outside ``[A-Za-z0-9_]`` become ``_``, runs of ``_`` collapse (C++ reserves
    ``__``), leading/trailing ``_`` go, a leading digit gets ``m_``, a keyword or reserved name
    gets a trailing ``_m``; overlong names are cut and get a hash of the full text.
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text)
    ident = re.sub(r"_+", "_", ident).strip("_") or fallback
    if ident[0].isdigit():
        ident = f"m_{ident}"
    if len(ident) > _MAX_IDENT:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        ident = f"{ident[:_MAX_IDENT - 9].rstrip('_')}_{digest}"
    if is_reserved(ident):
        ident = f"{ident}_m"
    return ident


def check_identifier(name: str, what: str, taken: Iterable[str] = ()) -> str:
    """``name`` unchanged if it is a usable identifier the user chose; a one-line error if not."""
    if not _IDENT.fullmatch(name):
        raise CodegenError(
            f"{what} {name!r} is not a C identifier; use letters, digits and _ (not first a digit)"
        )
    if is_reserved(name) or name in set(taken):
        raise CodegenError(
            f"{what} {name!r} is a C/C++ keyword or a name the generated code already uses "
            "(or starts with _ / contains __); choose another name"
        )
    return name


def check_distinct(names: Mapping[str, str]) -> None:
    """Refuse two generated things (role -> identifier) that would share one name."""
    seen: dict[str, str] = {}
    for role, name in names.items():
        if name in seen:
            raise CodegenError(
                f"{role} and {seen[name]} would both be named {name!r} in the generated code; "
                "choose different names"
            )
        seen[name] = role


# --- comments ------------------------------------------------------------------------------------


def comment_text(text: str, limit: int = _MAX_COMMENT) -> str:
    """Untrusted text made safe inside ``/* */`` or ``//`` (see the module docstring)."""
    safe = "".join(ch if " " <= ch <= "~" and ch not in "\\?" else "_" for ch in text)
    while "/*" in safe or "*/" in safe:
        safe = safe.replace("/*", "/_").replace("*/", "_/")
    if len(safe) > limit:
        safe = safe[: limit - 3] + "..."
    return safe


def block_comment(*lines: str) -> str:
    """``/* ... */`` over one or more lines of text (each line whitelisted)."""
    body = [comment_text(line) for line in lines]
    if len(body) == 1:
        return f"/* {body[0]} */"
    return "/* " + "\n * ".join(body) + " */"


def line_comment(text: str) -> str:
    """``// ...`` (C99 and C++) with the text whitelisted."""
    return f"// {comment_text(text)}"


# --- literals ------------------------------------------------------------------------------------

_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(text: str) -> str:
    """A C/C++ string literal holding exactly the UTF-8 bytes of ``text``."""
    out = ['"']
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def float_literal(x: float, nonfinite: str = "error") -> str:
    """A ``float`` literal that reads back as the same float32 value.

    ``nonfinite="macro"`` writes ``NAN``/``INFINITY`` (the file must include ``<math.h>`` or
    ``<cmath>``); the default refuses them.
    """
    f = float(np.float32(x))
    if not math.isfinite(f):
        if nonfinite != "macro":
            raise CodegenError(f"non-finite constant {f} in model parameters")
        return "NAN" if math.isnan(f) else ("INFINITY" if f > 0 else "-INFINITY")
    text = f"{f:.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def int_literal(v: int, ctype: str = "int32_t") -> str:
    """An integer literal; ``INT32_MIN`` is written ``(-2147483647 - 1)`` because
    ``-2147483648`` negates a literal too large for ``int``."""
    v = int(v)
    if ctype == "int64_t":
        if v == -(1 << 63):
            return f"(INT64_C({v + 1}) - 1)"
        return f"INT64_C({v})"
    if ctype == "bool":
        return "true" if v else "false"
    if v > 0x7FFFFFFF:
        return f"{v}u"
    if v == -(1 << 31):
        return f"({v + 1} - 1)"
    return str(v)


_NP_C_TYPES = {
    np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t",
    np.dtype(np.uint32): "uint32_t", np.dtype(np.float32): "float", np.dtype(np.bool_): "bool",
}


def c_type(dtype: np.dtype) -> str | None:
    """The C element type for a numpy dtype (``bool`` is C++ ``bool``/C ``uint8_t`` storage)."""
    return _NP_C_TYPES.get(np.dtype(dtype))


def array_items(
    values: np.ndarray, per_line: int = 16, indent: str = "    ", bool_as: str = "int",
    nonfinite: str = "error",
) -> str:
    """The body lines of an array initializer (each line ends with ``,``).

    ``bool_as="int"`` writes booleans as ``0``/``1`` (C storage), ``"bool"`` as
    ``true``/``false`` (C++ ``bool``).
    """
    flat = np.asarray(values).reshape(-1)
    ctype = c_type(flat.dtype)
    if ctype == "float":
        items = [float_literal(x, nonfinite) for x in flat.tolist()]
    elif ctype == "bool":
        items = [int_literal(int(x), "bool" if bool_as == "bool" else "uint8_t")
                 for x in flat.tolist()]
    elif ctype is None:
        raise CodegenError(f"no C type for array dtype {flat.dtype}")
    else:
        items = [int_literal(int(x), ctype) for x in flat.tolist()]
    return "\n".join(
        indent + ", ".join(items[k : k + per_line]) + "," for k in range(0, len(items), per_line)
    )


def byte_items(data: bytes, per_line: int = 12, indent: str = "    ") -> str:
    """``0x..`` lines for an ``unsigned char`` array (a flatbuffer)."""
    hexed = data.hex()
    lines = []
    for i in range(0, len(data), per_line):
        chunk = hexed[2 * i : 2 * (i + per_line)]
        lines.append(indent + ", ".join(f"0x{chunk[j : j + 2]}" for j in range(0, len(chunk), 2))
                     + ",")
    return "\n".join(lines)

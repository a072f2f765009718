"""One exception tree for the whole package.

Library code raises these; only ``edgeq.cli`` prints them (one line, exit 1). Messages name the
problem and the fix, because that line is all a user sees.
"""


class EdgeqError(Exception):
    """Base of every error edgeq reports to a user."""


class ModelError(EdgeqError):
    """A model file is missing, corrupt, or of a kind edgeq cannot use."""


class DataError(EdgeqError):
    """A dataset is missing, empty, or does not fit the model."""


class QuantizeError(EdgeqError):
    """A quantization request is invalid or the converter failed."""


class AnalyzeError(EdgeqError):
    """Evaluation or analysis could not run."""


class CodegenError(EdgeqError):
    """A model cannot be lowered to C (unsupported op/type, float model, ...)."""


class BuildError(EdgeqError):
    """Firmware could not be configured, compiled, or does not fit the board."""


class OutputError(EdgeqError):
    """An artifact could not be written (read-only or missing directory, full disk, no rights)."""


class DeviceError(EdgeqError):
    """Talking to a board or emulator failed (port, timeout, protocol)."""


class ExportError(EdgeqError):
    """An export bundle could not be produced."""


def first_line(exc: BaseException, limit: int | None = 160) -> str:
    """The first non-empty line of an exception's text, cut to ``limit`` characters.

    Converters and native interpreters raise messages that run to pages; a user-facing error
    quotes only their opening line.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    if limit is not None and len(first) > limit:
        return first[: limit - 3] + "..."
    return first

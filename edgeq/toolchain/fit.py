"""Does a model fit a board? The one check, with the numbers, made before anything is compiled.

The linker has the last word (``compiler`` reports its measured overflow), but weights and the
arena are known from code generation, so an obvious misfit is refused up front.
"""

from __future__ import annotations

from edgeq.errors import BuildError
from edgeq.toolchain.boards import Board


def check_fit(board: Board, *, arena_bytes: int, input_bytes: int,
              weight_bytes: int | None = None) -> None:
    """Refuse a model whose weights alone exceed the flash, or whose arena, input staging
    buffer and stack exceed the RAM."""
    if weight_bytes is not None and weight_bytes > board.flash.length:
        raise BuildError(f"model does not fit {board.name} flash: weights need {weight_bytes} "
                         f"bytes, the board has {board.flash.length} (over by "
                         f"{weight_bytes - board.flash.length}); pick a larger board or a "
                         "smaller model")
    need = arena_bytes + input_bytes + board.stack_bytes
    if need > board.ram.length:
        raise BuildError(f"model does not fit {board.name} RAM: arena {arena_bytes} + input "
                         f"{input_bytes} + stack {board.stack_bytes} = {need} bytes > "
                         f"{board.ram.length} bytes (over by {need - board.ram.length}); pick a "
                         "larger board or a smaller model")

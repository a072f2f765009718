"""Lowering of TFLite operators to edgeq-rt kernel calls: the registry and the call record.

Every supported op has one lowering function, registered with ``@lowering("OP_NAME")``, that
does TFLM's "Prepare" ahead of time: it reads the operator and its tensors and returns a
``KernelCall`` holding the C function to call and the constant parameter struct (multipliers,
shifts, offsets, clamps, dims). The generator renders ``KernelCall``s into ``model.c``; no
lowering function writes C text itself.

Generated call convention (the C prototypes follow it):
``eq_status fn(const params_type *p, <inputs: const T *>..., <outputs: T *>...[, scratch]);``
Omitted optional inputs (tensor index -1) are passed as NULL. Inputs that are views (RESHAPE)
resolve to the viewed tensor's storage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeq.errors import CodegenError
from edgeq.tflite import Operator, TfliteModel


@dataclass
class KernelCall:
    """One kernel invocation in the generated straight-line ``edgeq_model_invoke()``.

    ``params`` maps struct field names to values: ints, floats, nested dicts (nested structs,
    rendered as designated initializers) or numpy arrays (rendered as separate const arrays
    that the field points to; the array's dtype picks the C element type).
    """

    layer: int  # operator index in the .tflite graph
    op: str  # TFLite op name, e.g. "CONV_2D"
    function: str  # C function, e.g. "eq_conv2d_s8"
    params_type: str  # C struct type, e.g. "eq_conv2d_params"
    params: dict[str, Any]
    inputs: list[int]  # tensor indices (-1 = NULL)
    outputs: list[int]
    scratch_bytes: int = 0
    macs: int = 0
    view: bool = False  # True: no call; output aliases inputs[0] (RESHAPE and friends)
    in_place: bool = False  # True: output may share the first input's buffer
    extra: dict[str, Any] = field(default_factory=dict)


LoweringFn = Callable[[TfliteModel, Operator], KernelCall]

_LOWERINGS: dict[str, LoweringFn] = {}


def lowering(*op_names: str) -> Callable[[LoweringFn], LoweringFn]:
    """Register a lowering function for one or more TFLite op names."""

    def register(fn: LoweringFn) -> LoweringFn:
        for name in op_names:
            if name in _LOWERINGS:
                raise RuntimeError(f"two lowerings registered for {name}")
            _LOWERINGS[name] = fn
        return fn

    return register


def registered_ops() -> dict[str, LoweringFn]:
    """All registered lowerings (importing the op modules registers them)."""
    return dict(_LOWERINGS)


# Alternative lowerings selected by a generator option (e.g. "lut" weight coding); each may
# return None to leave the op to the plain lowering above. Registered by edgeq.codegen.ops_lut.
_VARIANTS: dict[str, dict[str, Callable[[TfliteModel, Operator], KernelCall | None]]] = {}


def lowering_variant(variant: str, *op_names: str) -> Callable[[Any], Any]:
    """Register an alternative lowering for ``op_names`` under the option name ``variant``."""

    def register(fn: Any) -> Any:
        table = _VARIANTS.setdefault(variant, {})
        for name in op_names:
            if name in table:
                raise RuntimeError(f"two '{variant}' lowerings registered for {name}")
            table[name] = fn
        return fn

    return register


def lower_operator(
    model: TfliteModel, op: Operator, variants: tuple[str, ...] = ()
) -> KernelCall:
    for variant in variants:
        alt = _VARIANTS.get(variant, {}).get(op.opcode)
        call = alt(model, op) if alt is not None else None
        if call is not None:
            return call
    fn = _LOWERINGS.get(op.opcode)
    if fn is None:
        raise CodegenError(f"operator {op.index} ({op.opcode}) is not supported by edgeq-rt")
    return fn(model, op)

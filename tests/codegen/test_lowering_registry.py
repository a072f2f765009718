"""The lowering registry: one lowering per op name, alternatives per option, refusals named.

Registration normally runs at import; these tests register under names no real op uses (and
remove them again) so that the checks run while the test does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from helpers_elementwise import T, build_model, opts

from edgeq.codegen import lowering as L
from edgeq.errors import CodegenError
from edgeq.tflite import read_tflite_bytes

FAKE_OPS = ("EQ_TEST_OP_A", "EQ_TEST_OP_B")
FAKE_VARIANT = "eq-test-variant"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = dict(L._LOWERINGS)
    yield
    for name in FAKE_OPS:
        L._LOWERINGS.pop(name, None)
    L._VARIANTS.pop(FAKE_VARIANT, None)
    assert L._LOWERINGS == before  # a real op's lowering was never replaced


def _lowered(model, op) -> L.KernelCall:  # noqa: ANN001
    shape = model.tensors[op.outputs[0]].shape  # a lowering reads the model's tensors
    return L.KernelCall(layer=op.index, op=op.opcode, function="eq_test", params_type="p",
                        params={"n": int(np.prod(shape))}, inputs=list(op.inputs),
                        outputs=list(op.outputs))


def test_one_lowering_per_op_name(clean_registry: None) -> None:
    assert L.lowering(*FAKE_OPS)(_lowered) is _lowered
    ops = L.registered_ops()
    assert ops["EQ_TEST_OP_A"] is _lowered and ops["EQ_TEST_OP_B"] is _lowered
    with pytest.raises(RuntimeError, match="^two lowerings registered for EQ_TEST_OP_B$"):
        L.lowering("EQ_TEST_OP_B")(lambda m, o: _lowered(m, o))
    assert L.registered_ops()["EQ_TEST_OP_B"] is _lowered
    # a real op cannot be registered a second time either
    with pytest.raises(RuntimeError, match="two lowerings registered for ADD"):
        L.lowering("ADD")(_lowered)


def test_variant_lowerings_take_precedence_only_when_asked(clean_registry: None) -> None:
    o, kind = opts("AddOptions", fusedActivationFunction=0)
    model = read_tflite_bytes(build_model("ADD", [T((1, 4), "int8", 0.1, 0),
                                                  T((1, 4), "int8", 0.1, 0)],
                                          [T((1, 4), "int8", 0.2, 0)], o, kind))
    op = model.operators[0]
    plain = L.lower_operator(model, op)
    assert plain.function.startswith("eq_add")

    declined: list[str] = []

    def decline(m, o):  # noqa: ANN001, ANN202
        declined.append(o.opcode)

    assert L.lowering_variant(FAKE_VARIANT, "ADD", "MUL")(_lowered) is _lowered
    alt = L.lower_operator(model, op, (FAKE_VARIANT,))
    assert (alt.function, alt.params) == ("eq_test", {"n": 4})
    assert L.lower_operator(model, op).function == plain.function
    assert L.lower_operator(model, op, ("no-such-variant",)).function == plain.function
    with pytest.raises(RuntimeError, match=f"^two '{FAKE_VARIANT}' lowerings registered for MUL$"):
        L.lowering_variant(FAKE_VARIANT, "MUL")(decline)
    # a variant that returns None leaves the op to the plain lowering
    L._VARIANTS.pop(FAKE_VARIANT)
    L.lowering_variant(FAKE_VARIANT, "ADD")(decline)
    assert L.lower_operator(model, op, (FAKE_VARIANT,)).function == plain.function
    assert declined == ["ADD"]


def test_unregistered_op_is_refused_in_one_line() -> None:
    # FLOOR is a real TFLite op that edgeq-rt has no kernel for
    assert "FLOOR" not in L.registered_ops()
    model = read_tflite_bytes(build_model("FLOOR", [T((1, 4), "float32", None)],
                                          [T((1, 4), "float32", None)]))
    with pytest.raises(CodegenError) as exc:
        L.lower_operator(model, model.operators[0])
    assert str(exc.value) == "operator 0 (FLOOR) is not supported by edgeq-rt"

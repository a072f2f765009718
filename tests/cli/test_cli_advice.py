"""Every error's advice names options that exist on the command that printed it (issue 13, 5).

Errors are triggered through the real CLI for build, quantize, evaluate and codegen; every
``--flag`` in the error line is checked against the click command's own options. A flag inside a
backquoted ``edgeq <command> ...`` suggestion is checked against that command instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = REPO / "models" / "digits_cnn" / "digits_cnn.h5"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SUGGESTED = re.compile(r"`edgeq ([a-z-]+)([^`]*)`")


def command_options(name: str) -> set[str]:
    cmd = cli.commands[name]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def advice_flags(command: str, message: str) -> list[tuple[str, str]]:
    """(command, flag) for every flag the message suggests."""
    pairs = []
    for m in SUGGESTED.finditer(message):
        pairs += [(m.group(1), f) for f in FLAG.findall(m.group(2))]
    rest = SUGGESTED.sub("", message)
    return pairs + [(command, f) for f in FLAG.findall(rest)]


def error_line(args: list[str]) -> str:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("edgeq: error:"), res.output
    return line


def test_advice_parser_sees_wrong_flags() -> None:
    """The check itself can fail: the issue's original messages are caught (`build` has had
    --runtime since `edgeq build --runtime tflm`; --arena-margin is codegen's alone)."""
    bad = "op 3 SHAPE (op not supported). Fix: deploy with --arena-margin 0 (use --metric mse)"
    wrong = [f for c, f in advice_flags("build", bad) if f not in command_options(c)]
    assert wrong == ["--arena-margin", "--metric"]
    assert "--runtime" in command_options("build") and "--tflm-dir" in command_options("build")
    good = "or with `edgeq codegen MODEL -o DIR --runtime tflm`"
    assert advice_flags("build", good) == [("codegen", "--runtime")]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, shared_models: Path) -> dict[str, Path]:
    shared = shared_models
    d = tmp_path_factory.mktemp("advice")
    refused = d / "svdf.tflite"  # SVDF: a model edgeq-rt refuses
    refused.write_bytes((shared / "tflm" / "keyword_scrambled_8bit.tflite").read_bytes())
    rng = np.random.default_rng(0)
    np.savez(d / "unlabelled.npz", x=rng.uniform(0, 16, (40, 8, 8, 1)).astype(np.float32))
    return {"refused": refused, "unlabelled": d / "unlabelled.npz", "dir": d}


def triggered_errors(zoo: dict[str, Path]) -> list[tuple[str, str]]:
    d = zoo["dir"]
    q = str(d / "q.tflite")
    cases: list[tuple[str, list[str]]] = [
        # build: edgeq-rt refuses the SVDF (checked on generated inputs: no dataset needed)
        ("build", ["build", str(zoo["refused"]), "--target", "cortex-m4", "-o", str(d / "b1")]),
        # build: a dataset without labels, for a classifier
        ("build", ["build", str(DIGITS_H5), "--target", "cortex-m4", "--data",
                   str(zoo["unlabelled"]), "-o", str(d / "b2")]),
        ("build", ["build", str(DIGITS_H5), "--target", "cortex-m4", "--samples", "0"]),
        ("quantize", ["quantize", str(DIGITS_H5), "-o", q, "--mode", "int8", "--io", "int16"]),
        ("quantize", ["quantize", str(DIGITS_H5), "-o", q, "--mode", "dynamic", "--target",
                      "cortex-m4"]),
        ("evaluate", ["evaluate", str(zoo["refused"])]),
        ("evaluate", ["evaluate", str(DIGITS_H5)]),
        ("codegen", ["codegen", str(zoo["refused"]), "-o", str(d / "c1"), "--runtime", "edgeq"]),
        ("codegen", ["codegen", str(zoo["refused"]), "-o", str(d / "c2"), "--runtime", "edgeq",
                     "--vectors", "3"]),
        ("codegen", ["codegen", str(zoo["refused"]), "-o", str(d / "c3"), "--arena-bytes", "9",
                     "--arena-margin", "0.1"]),
    ]
    return [(cmd, error_line(args)) for cmd, args in cases]


@pytest.mark.slow
def test_every_suggested_flag_exists_on_its_command(zoo: dict[str, Path]) -> None:
    errors = triggered_errors(zoo)
    suggested = 0
    for command, line in errors:
        for cmd, flag in advice_flags(command, line):
            assert flag in command_options(cmd), f"`{cmd}` has no {flag}: {line}"
            suggested += 1
    assert suggested >= 5, errors
    lines = dict((c + str(i), e) for i, (c, e) in enumerate(errors))
    assert "edgeq-rt cannot compile" in lines["build0"]
    assert "needs labels" in lines["build1"]

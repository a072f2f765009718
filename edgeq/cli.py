"""The ``edgeq`` command line: a thin click layer over the library.

Each command parses its options, calls one library function and prints the result (a table, or
JSON with ``--json``). Library errors (``EdgeqError``) become one line on stderr and exit 1; no
traceback reaches the user unless ``-v`` is given. Heavy imports happen inside commands so that
``edgeq --help`` and ``edgeq --version`` answer instantly.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from edgeq import __version__
from edgeq.errors import EdgeqError

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON or through its human renderer."""
    if as_json:
        from edgeq.fileio import _json_default

        click.echo(json.dumps(result, indent=2, sort_keys=True, default=_json_default))
    else:
        click.echo(render(result))


class EdgeqGroup(click.Group):
    """Maps edgeq's exception tree to a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeqError as exc:
            from edgeq.tfenv import is_verbose

            if is_verbose():
                import traceback

                traceback.print_exc()
            click.echo(f"edgeq: error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("edgeq: interrupted", err=True)
            sys.exit(130)


@click.group(cls=EdgeqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeq")
@click.option("-v", "--verbose", is_flag=True, help="Show TensorFlow logs and full tracebacks.")
def cli(verbose: bool) -> None:
    """edgeq: Keras model -> verified, measured int8 model on a microcontroller."""
    from edgeq.tfenv import set_verbose

    set_verbose(verbose)


# --- quantize / evaluate (foundation) -------------------------------------------------------

# --- calibration, QAT, analysis ------------------------------------------------------------

# --- codegen ---------------------------------------------------------------------------------

# --- boards, build, flash, bench, run ------------------------------------------------------

# --- export ----------------------------------------------------------------------------------


def main() -> None:
    cli(prog_name="edgeq")


if __name__ == "__main__":
    main()

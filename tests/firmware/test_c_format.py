"""The C tree keeps one style: every tracked C file is what `.clang-format` makes of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tracked_c_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def test_c_sources_are_clang_formatted() -> None:
    exe = shutil.which("clang-format")
    assert exe, "clang-format is missing: `make setup` installs it"
    files = _tracked_c_files()
    assert len(files) > 40, files  # the runtime, drivers, protocol and fixtures are all tracked
    r = subprocess.run([exe, "--dry-run", "--Werror", *files], cwd=REPO, capture_output=True,
                       text=True)
    offenders = sorted({line.split(":")[0] for line in r.stderr.splitlines() if "error:" in line})
    assert r.returncode == 0, f"not formatted (run `make format-c`): {offenders}"


def test_check_notices_an_unformatted_file(tmp_path: Path) -> None:
    exe = shutil.which("clang-format")
    assert exe
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void){return 1;}\n")
    shutil.copy(REPO / ".clang-format", tmp_path / ".clang-format")
    r = subprocess.run([exe, "--dry-run", "--Werror", str(bad)], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode != 0

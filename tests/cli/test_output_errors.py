"""A full disk or an unwritable output path ends in one line, exit 1, and no half-written output.

"Full disk" is simulated with ``RLIMIT_FSIZE`` (writes past the limit fail with EFBIG, as they
fail with ENOSPC on a full disk: both are an ``OSError`` in the middle of a write); a read-only
directory with a read-only tmpfs when this machine lets us mount one (root: file modes do not
stop root), and an unwritable path with a regular file where a directory is needed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "edgeq.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=900, preexec_fn=limit)


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edgeq: error: cannot write ") or last.startswith("edgeq: error: ")
    return last


def _no_leftovers(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".")], \
        f"temp files left in {parent}"


@pytest.fixture
def speech(shared_models: Path) -> Path:
    return shared_models / "tflm" / "micro_speech_quantized.tflite"


@pytest.mark.parametrize("runtime", ["tflm", "edgeq"])
def test_codegen_on_a_full_disk(speech: Path, tmp_path: Path, runtime: str) -> None:
    out = tmp_path / "gen"
    msg = _one_line(_cli("codegen", str(speech), "-o", str(out), "--runtime", runtime,
                         cwd=tmp_path, fsize=4096))
    assert f"cannot write {out}: File too large" in msg
    assert not out.exists()
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("runtime", ["tflm", "edgeq"])
def test_codegen_into_an_unwritable_path(speech: Path, tmp_path: Path, runtime: str) -> None:
    (tmp_path / "afile").write_text("not a directory")
    out = tmp_path / "afile" / "gen"
    msg = _one_line(_cli("codegen", str(speech), "-o", str(out), "--runtime", runtime,
                         cwd=tmp_path))
    assert str(out) in msg


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


@pytest.mark.parametrize("runtime", ["tflm", "edgeq"])
def test_codegen_into_a_read_only_directory(speech: Path, readonly_dir: Path,
                                            runtime: str) -> None:
    msg = _one_line(_cli("codegen", str(speech), "-o", str(readonly_dir / "gen"), "--runtime",
                         runtime, cwd=readonly_dir.parent))
    assert "Read-only file system" in msg
    assert not list(readonly_dir.iterdir())


@pytest.mark.slow
def test_quantize_on_a_full_disk(tmp_path: Path) -> None:
    out = tmp_path / "q" / "digits_int8.tflite"
    msg = _one_line(_cli("quantize", str(REPO / "models" / "digits_cnn" / "digits_cnn.h5"),
                         "--data", "digits", "-o", str(out), cwd=tmp_path, fsize=2048))
    assert "File too large" in msg
    assert not out.exists()
    if out.parent.exists():
        _no_leftovers(out.parent)


@pytest.mark.slow
def test_quantize_into_a_read_only_directory(readonly_dir: Path) -> None:
    out = readonly_dir / "digits_int8.tflite"
    msg = _one_line(_cli("quantize", str(REPO / "models" / "digits_cnn" / "digits_cnn.h5"),
                         "--data", "digits", "-o", str(out), cwd=readonly_dir.parent))
    assert "Read-only file system" in msg

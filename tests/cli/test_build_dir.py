"""The build directory: one build at a time, a manifest that never claims what did not happen for
the files now on disk, and one-line errors when the directory cannot be written."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_device import quantized_digits

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _build_cmd(model: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgeq.cli", "build", str(model), "--board", "mps2-an386",
            "-o", str(out), "--samples", "4", *extra]


def _cli(cmd: list[str], cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=_env(), timeout=900,
                          preexec_fn=limit)


def _sha(path: Path) -> str:
    from edgeq.fileio import sha256_file

    return sha256_file(path)


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantized_digits(tmp_path_factory.mktemp("bd_model"))


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _assert_sections_match_disk(out: Path, doc: dict) -> None:
    """Every section names the files it was made from, with the hashes they have now."""
    for name, section in doc.items():
        if not isinstance(section, dict) or name == "inputs":
            continue
        inputs = section.get("inputs")
        assert inputs, f"section {name} records no inputs"
        for rel, digest in inputs.items():
            assert _sha(out / rel) == digest, f"{name}: {rel} changed but the section stayed"


@pytest.mark.slow
def test_no_run_rebuild_drops_the_device_section(digits_tflite: Path, tmp_path: Path) -> None:
    out = tmp_path / "bd"
    r = _cli(_build_cmd(digits_tflite, out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = _manifest(out)
    assert doc["device"]["validation"]["samples"] == 4
    _assert_sections_match_disk(out, doc)
    elf_before = _sha(out / "firmware" / "fw.elf")

    r = _cli(_build_cmd(digits_tflite, out, "--no-run", "--opt", "-Os"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = _manifest(out)
    assert _sha(out / "firmware" / "fw.elf") != elf_before
    assert "device" not in doc, "device validation kept for firmware it never ran"
    _assert_sections_match_disk(out, doc)
    assert {"evaluate", "codegen", "build"} <= set(doc)

    # a section whose input file changed behind edgeq's back is dropped at the next write
    (out / "firmware" / "fw.elf").write_bytes(b"tampered")
    r = _cli(_build_cmd(digits_tflite, out, "--no-run", "--opt", "-Os"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    _assert_sections_match_disk(out, _manifest(out))


@pytest.mark.slow
def test_second_build_into_the_same_directory_fails(digits_tflite: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared_bd"
    first = subprocess.Popen(_build_cmd(digits_tflite, out, "--no-run"), cwd=tmp_path,
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and lock is None:  # wait until the first holds it
            for cand in out.glob(".*lock*") if out.is_dir() else []:
                fd = os.open(cand, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                except BlockingIOError:
                    lock = cand
                finally:
                    os.close(fd)
            time.sleep(0.05)
        assert lock is not None, "the first build never locked its directory"
        second = _cli(_build_cmd(digits_tflite, out, "--no-run"), cwd=tmp_path)
        assert second.returncode == 1
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("edgeq: error: ")
        assert f"in use by pid {first.pid}" in last
        assert first.wait(timeout=600) == 0, first.stderr.read().decode()[-3000:] \
            if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # the lock dies with its holder: a later build goes through
    r = _cli(_build_cmd(digits_tflite, out, "--no-run"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_build_on_a_full_disk_is_one_line(digits_tflite: Path, tmp_path: Path) -> None:
    out = tmp_path / "full"
    r = _cli(_build_cmd(digits_tflite, out, "--no-run"), cwd=tmp_path, fsize=16 * 1024)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edgeq: error: ") and "File too large" in last, last

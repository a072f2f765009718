"""Every QEMU edgeq starts is stopped on every exit path: SIGTERM or Ctrl-C to the CLI (while
connecting or mid-session), an interrupt inside ``QemuInstance.start``, and a killed parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_device import build_echo

from edgeq.device import qemu as qemu_mod
from edgeq.device.qemu import QemuInstance

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> list[int]:
    """All live descendants of ``pid``, from /proc/<pid>/task/*/children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:  # the process may exit while its task list is being read
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _is_qemu(pid: int) -> bool:
    try:
        return b"qemu-system-arm" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _build_dir(root: Path, link: str) -> Path:
    fw = build_echo("mps2-an386", root / "fw", link=link)
    (root / "bd" / "firmware").mkdir(parents=True)
    shutil.copy(fw.elf, root / "bd" / "firmware" / "fw.elf")
    return root / "bd"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Firmware on the TCP UART link: QEMU is reached by a socket connect."""
    return _build_dir(tmp_path_factory.mktemp("qemu_cleanup"), "uart")


@pytest.fixture(scope="module", params=["uart", "semihosting"])
def any_link_dir(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_dir(tmp_path_factory.mktemp(f"qemu_cleanup_{request.param}"), request.param)


def _wait_for_qemu(cli: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        qemus = [p for p in _descendants(cli.pid) if _is_qemu(p)]
        if qemus:
            return qemus[0]
        assert cli.poll() is None, "the CLI exited before starting QEMU"
        time.sleep(0.005)
    raise AssertionError("QEMU never started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("when", ["connecting", "in-session"])
def test_signalled_cli_leaves_no_qemu(any_link_dir: Path, sig: signal.Signals, when: str) -> None:
    build_dir = any_link_dir
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    cli = subprocess.Popen([sys.executable, "-m", "edgeq.cli", "bench", "--emulator",
                            "--board", "mps2-an386", "--build-dir", str(build_dir),
                            "--runs", "1000000"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env)
    try:
        seen = {_wait_for_qemu(cli)}
        if when == "in-session":
            time.sleep(1.5)  # HELLO done, a million inferences under way
            running = [p for p in _descendants(cli.pid) if _is_qemu(p) and _alive(p)]
            assert running, "no emulator running mid-session"
            seen.update(running)
        cli.send_signal(sig)
        _, err = cli.communicate(timeout=30)
        assert cli.returncode != 0
        assert b"Traceback" not in err, err.decode()[-2000:]
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [p for p in seen if _alive(p) and _is_qemu(p)]
        assert not survivors, f"qemu {survivors} survived {sig.name} ({when})"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_sigkilled_parent_takes_qemu_with_it(build_dir: Path) -> None:
    """No cleanup code runs on SIGKILL: the kernel's parent-death signal stops QEMU."""
    code = ("import sys, time\nfrom edgeq.device.qemu import QemuInstance\n"
            f"q = QemuInstance('mps2-an386', {str(build_dir / 'firmware' / 'fw.elf')!r})\n"
            "q.start()\nprint('up', flush=True)\ntime.sleep(600)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        qemu_pid = next(p for p in _descendants(proc.pid) if _is_qemu(p))
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(qemu_pid)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_interrupt_during_connect_stops_qemu(build_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C arriving exactly while ``start`` polls QEMU's socket (the connect call raises it)."""
    import serial

    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - records the real QEMU process
        p = real_popen(*a, **kw)
        started.append(p)
        return p

    def interrupted(*_a, **_kw):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(qemu_mod.subprocess, "Popen", popen)
    monkeypatch.setattr(serial, "serial_for_url", interrupted)
    q = QemuInstance("mps2-an386", build_dir / "firmware" / "fw.elf")
    with pytest.raises(KeyboardInterrupt):
        q.start()
    assert started and started[0].poll() is not None  # QEMU was stopped and reaped
    assert q not in qemu_mod._live
    assert signal.getsignal(signal.SIGTERM) is not qemu_mod._on_sigterm  # handler restored

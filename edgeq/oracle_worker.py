"""A child process that runs the native interpreters (TFLM, LiteRT), so their crashes are errors.

TFLite Micro's and LiteRT's C++ code trusts the flatbuffer it is given; on a corrupt model it
can dereference garbage (SIGSEGV) or abort. In-process that kills the CLI with no word about which
model did it. Here every call runs in one long-lived worker (``python -m edgeq.oracle_worker``,
started on first use and reused, so a whole evaluation pays the start-up once): a signal or a
hang becomes an ``AnalyzeError`` naming the model, and the next call starts a fresh worker.

The worker limits its own address space (``RLIMIT_AS``) and turns off core dumps, so a model
that asks for absurd allocations fails inside the child instead of swapping the machine.
Requests and replies are length-prefixed pickles over the child's stdin/stdout; only edgeq's
own functions are called (by module and name), and the child's fd 1 points at /dev/null so
native chatter cannot corrupt the channel.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from edgeq.errors import AnalyzeError, EdgeqError

log = logging.getLogger(__name__)

MEMORY_LIMIT_BYTES = 6 << 30  # address space of the worker (numpy + LiteRT + TFLM + a model)
DEFAULT_TIMEOUT_S = 900.0  # one call; EDGEQ_ORACLE_TIMEOUT overrides (seconds)
_HEADER = struct.Struct("<Q")
INTERPRETER_ADVICE = "the file is corrupt or uses something the interpreter cannot handle"


def call_timeout() -> float:
    text = os.environ.get("EDGEQ_ORACLE_TIMEOUT")
    try:
        return float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _send(stream: BinaryIO, obj: Any) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(blob)) + blob)
    stream.flush()


def _recv_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        part = stream.read(n - len(chunks))
        if not part:
            return None
        chunks += part
    return bytes(chunks)


def _recv(stream: BinaryIO) -> Any:
    head = _recv_exact(stream, _HEADER.size)
    if head is None:
        return None
    body = _recv_exact(stream, _HEADER.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class Worker:
    """One child process; :meth:`call` runs ``module.function(*args)`` in it."""

    def __init__(self) -> None:
        import edgeq
        from edgeq.tfenv import is_verbose

        env = dict(os.environ)
        root = str(Path(edgeq.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["EDGEQ_WORKER_VERBOSE"] = "1" if is_verbose() else ""
        self._stderr = None if is_verbose() else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgeq.oracle_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, env=env, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], *, source: str,
             progress_desc: str | None = None, timeout: float | None = None,
             what: str = "native interpreter", advice: str = INTERPRETER_ADVICE) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        limit = call_timeout() if timeout is None else timeout
        try:
            _send(self.proc.stdin, (fn.__module__, fn.__name__, args, progress_desc is not None))
        except (BrokenPipeError, OSError):
            raise self._died(source, what, advice) from None
        bar = None
        deadline = time.monotonic() + limit
        try:
            while True:
                wait = deadline - time.monotonic()
                ready, _, _ = select.select([self.proc.stdout], [], [], max(wait, 0))
                if not ready:
                    self.stop()
                    raise AnalyzeError(f"{source}: the {what} did not finish within "
                                       f"{limit:g} s (hung on this model?); stopped it")
                msg = _recv(self.proc.stdout)
                if msg is None:
                    raise self._died(source, what, advice)
                kind = msg[0]
                if kind == "progress":
                    if progress_desc is not None:
                        if bar is None:
                            from tqdm import tqdm

                            bar = tqdm(total=msg[2], desc=progress_desc, unit="sample",
                                       leave=False)
                        bar.update(msg[1] + 1 - bar.n)
                    continue
                if kind == "ok":
                    return msg[1]
                _, cls_name, text = msg
                if source != "the model" and not text.startswith(source):
                    text = f"{source}: {text}"
                import edgeq.errors as errors

                cls = getattr(errors, cls_name, AnalyzeError)
                raise cls(text) if isinstance(cls, type) and issubclass(cls, EdgeqError) else \
                    AnalyzeError(text)
        finally:
            if bar is not None:
                bar.close()

    def _died(self, source: str, what: str = "native interpreter",
              advice: str = INTERPRETER_ADVICE) -> AnalyzeError:
        """The child is gone: say how (signal, memory limit) in one line."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.proc.returncode
        detail = self._stderr_tail()
        self.stop()
        if code is not None and code < 0:
            how = f"crashed with {_signal_name(-code)}"
        elif "MemoryError" in detail or "bad_alloc" in detail:
            how = f"ran out of its {MEMORY_LIMIT_BYTES >> 30} GiB memory limit"
        else:
            how = f"exited unexpectedly (code {code})"
        return AnalyzeError(f"{source}: the {what} {how} on this model; {advice}")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return self._stderr.read()[-4000:].decode("utf-8", "replace")
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()


_lock = threading.Lock()
_worker: Worker | None = None


def isolated(fn: Callable[..., Any], *args: Any, source: str,
             progress_desc: str | None = None, timeout: float | None = None,
             what: str = "native interpreter", advice: str = INTERPRETER_ADVICE) -> Any:
    """Run module-level ``fn(*args)`` in the worker; native crashes and hangs become errors.

    ``fn`` gets a ``report(done, total)`` keyword when ``progress_desc`` is given (a progress
    bar with that title is drawn here). A crash reads "<source>: the <what> crashed with
    SIGSEGV on this model; <advice>".
    """
    global _worker
    with _lock:
        if _worker is None or not _worker.alive():
            _worker = Worker()
        w = _worker
        try:
            return w.call(fn, args, source=source, progress_desc=progress_desc, timeout=timeout,
                          what=what, advice=advice)
        except EdgeqError:
            raise  # the reply was read: the worker (if alive) is ready for the next call
        except BaseException:  # Ctrl-C mid-call: its late reply must not answer the next call
            w.stop()
            raise
        finally:
            if not w.alive():
                w.stop()
                _worker = None


@atexit.register
def shutdown() -> None:
    """Stop the worker (also registered to run at interpreter exit)."""
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


# --- the child side ----------------------------------------------------------------------------


def _limit_resources() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies, even mid-way through a call."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(0)


def _serve() -> None:
    _die_with_parent()
    _limit_resources()
    channel_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # native code printing to stdout must not corrupt the channel
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if os.environ.get("EDGEQ_WORKER_VERBOSE"):
        from edgeq.tfenv import set_verbose

        set_verbose(True)
    channel_in = sys.stdin.buffer
    while True:
        req = _recv(channel_in)
        if req is None:
            return
        module, name, args, wants_progress = req
        if not module.startswith("edgeq."):
            _send(channel_out, ("error", "AnalyzeError", f"refused to call {module}.{name}"))
            continue

        def report(done: int, total: int) -> None:
            _send(channel_out, ("progress", done, total))

        try:
            fn = getattr(importlib.import_module(module), name)
            kwargs = {"report": report} if wants_progress else {}
            _send(channel_out, ("ok", fn(*args, **kwargs)))
        except EdgeqError as exc:
            _send(channel_out, ("error", type(exc).__name__, str(exc)))
        except MemoryError:
            _send(channel_out, ("error", "AnalyzeError", "the interpreter ran out of its "
                                f"{MEMORY_LIMIT_BYTES >> 30} GiB memory limit on this model"))
        except Exception as exc:  # noqa: BLE001 - any failure of a native call is one line
            from edgeq.errors import first_line

            _send(channel_out, ("error", "AnalyzeError",
                                f"interpreter failed: {type(exc).__name__}: {first_line(exc)}"))


if __name__ == "__main__":
    _serve()

"""Seeded 1-4-byte mutants of real models, and a driver that runs edgeq's model paths on them.

Shared by ``tests/tflite/test_mutation_fuzz.py`` and ``benchmarks/fuzz_models.py``. The driver is
this file run as a script in a child process (address space limited with ``RLIMIT_AS``): it reads
jobs as JSON lines on stdin, calls the library entry points in-process and answers one JSON line
per job: ``ok``, ``error`` (an ``EdgeqError``: what a user would see) or ``unexpected`` (any other
exception, with its traceback). A driver that dies (signal) or stops answering (hang) is seen by
the parent, which records the job as a crash or a hang and starts a new driver.
"""

from __future__ import annotations

import json
import os
import random
import resource
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DRIVER_MEMORY_LIMIT = 6 << 30  # the driver's own address space; oracle workers have theirs


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[tuple[int, int]]]:
    """Overwrite 1-4 bytes (random positions; values random or boundary-ish)."""
    buf = bytearray(data)
    edits = []
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(buf))
        val = rng.choice([rng.randrange(256), 0x00, 0xFF, 0x7F, 0x80, buf[pos] ^ 0x01,
                          buf[pos] ^ 0x80])
        buf[pos] = val
        edits.append((pos, val))
    return bytes(buf), edits


def make_mutants(base: bytes, count: int, seed: int, out_dir: Path, stem: str) -> list[Path]:
    """``count`` distinct mutants of ``base`` written as ``<stem>_<k>.tflite``."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    seen: set[bytes] = set()
    while len(paths) < count:
        blob, _ = mutate(base, rng)
        if blob == base or blob in seen:
            continue
        seen.add(blob)
        p = out_dir / f"{stem}_{len(paths):04d}.tflite"
        p.write_bytes(blob)
        paths.append(p)
    return paths


# --- the parent side ---------------------------------------------------------------------------


@dataclass
class FuzzResult:
    runs: int = 0
    ok: int = 0
    clean_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    bad_messages: list[str] = field(default_factory=list)
    peak_rss_bytes: int = 0
    seconds: float = 0.0
    errors_seen: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"runs": self.runs, "ok": self.ok, "clean_errors": self.clean_errors,
                "unexpected": len(self.unexpected), "crashes": len(self.crashes),
                "hangs": len(self.hangs), "bad_messages": len(self.bad_messages),
                "peak_rss_mib": round(self.peak_rss_bytes / (1 << 20), 1),
                "seconds": round(self.seconds, 1)}


class _Driver:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, text=True, bufsize=1, start_new_session=True)

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any] | str:
        """The driver's answer, or ``"crash: ..."`` / ``"hang"``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return f"crash: driver gone (code {self.proc.poll()})"
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return "hang"
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=10)
            return f"crash: driver exited with {code}"
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)  # the driver and its oracle worker
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)


def run_jobs(jobs: list[dict[str, Any]], *, timeout: float = 120.0,
             oracle_timeout: float = 60.0) -> FuzzResult:
    """Run every job through a driver; restart it after a crash or hang."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["EDGEQ_ORACLE_TIMEOUT"] = str(oracle_timeout)
    res = FuzzResult()
    start = time.monotonic()
    driver = _Driver(env)
    try:
        for job in jobs:
            res.runs += 1
            tag = f"{job['path']} {job['path_kind']}"
            answer = driver.run(job, timeout)
            if isinstance(answer, str):
                (res.hangs if answer == "hang" else res.crashes).append(f"{tag}: {answer}")
                driver.stop()
                driver = _Driver(env)
                continue
            res.peak_rss_bytes = max(res.peak_rss_bytes, int(answer.get("peak_rss", 0)))
            if answer["status"] == "ok":
                res.ok += 1
            elif answer["status"] == "error":
                res.clean_errors += 1
                msg = answer["message"]
                key = msg.replace(job["path"], "<model>").replace(Path(job["path"]).name, "<m>")
                key = " ".join(w if not any(c.isdigit() for c in w) else "N" for w in
                               key.split())[:90]
                res.errors_seen[key] = res.errors_seen.get(key, 0) + 1
                if "\n" in msg or not msg.strip() or "Traceback" in msg:
                    res.bad_messages.append(f"{tag}: {msg!r}")
            else:
                res.unexpected.append(f"{tag}: {answer['message']}")
    finally:
        driver.stop()
    res.seconds = time.monotonic() - start
    return res


# --- the driver (child) side -------------------------------------------------------------------


def _peak_rss() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * 1024


def _run_job(job: dict[str, Any], cache: dict[str, Any]) -> None:
    import tempfile

    path = job["path"]
    kind = job["path_kind"]
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "evaluate":
            from edgeq.analyze.evaluate import evaluate

            evaluate(path, data=job["data"], limit=job.get("limit", 16),
                     arena=job.get("arena", False))
        elif kind == "codegen-edgeq":
            from edgeq.codegen.edgeq_rt import write_edgeq_rt

            write_edgeq_rt(path, Path(tmp) / "rt")
        elif kind == "codegen-tflm":
            from edgeq.codegen.tflm_bundle import generate_tflm_bundle

            generate_tflm_bundle(path, arena_bytes=job.get("arena_bytes"), num_vectors=2)
        elif kind == "analyze":
            import numpy as np

            from edgeq.analyze.layers import analyze

            if "x" not in cache:
                cache["x"] = np.load(job["x"])
            float_bytes = Path(job["float_tflite"]).read_bytes()
            analyze(Path(path).read_bytes(), float_bytes, cache["x"], max_samples=16)
        elif kind == "export-android":
            from edgeq.export.android import export_android

            export_android(path, Path(tmp) / "android", data=job["data"], latency_runs=1)
        else:
            raise ValueError(f"unknown job kind {kind}")


def _serve() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (DRIVER_MEMORY_LIMIT, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import traceback

    from edgeq.errors import EdgeqError

    channel = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints must not corrupt the answers
    cache: dict[str, Any] = {}
    for line in sys.stdin:
        job = json.loads(line)
        try:
            _run_job(job, cache)
            answer = {"status": "ok"}
        except EdgeqError as exc:
            answer = {"status": "error", "message": str(exc)}
        except Exception:  # noqa: BLE001 - that is what the fuzz test looks for
            answer = {"status": "unexpected", "message": traceback.format_exc(limit=6)}
        answer["peak_rss"] = _peak_rss()
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


if __name__ == "__main__":
    _serve()

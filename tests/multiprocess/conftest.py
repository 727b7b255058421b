"""Real service processes (``python -m <service>``) sharing one store, for the
several-processes-per-service tests: ``processes.start(...)`` runs one instance on a free
loopback port and waits for its ``/health``; every process is stopped at the end of the test.
Every wait polls with a deadline; no test asserts a duration."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "multiprocess-test-key"
JWT_SECRET = "multiprocess-jwt-secret-0123456789abcdef"


def wait_until(check: Callable[[], bool], *, seconds: float = 60.0, what: str = "condition") -> None:
    """Poll ``check`` every 0.1 s until true; fail after ``seconds`` (a stuck test, not a timing)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes of ``parent`` (children started by multiprocessing's spawn)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class Instance:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Processes:
    """Service instances started by a test; ``stop_all`` ends them (SIGTERM, then SIGKILL)."""

    tmp: Path
    started: list[Instance] = field(default_factory=list)

    def start(self, name: str, env: dict[str, str]) -> Instance:
        port = free_port()
        full = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "SERVICE_KEY": KEY,
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "warning",
            **env,
        }
        log = self.tmp / f"{name}-{len(self.started)}.log"
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", name], cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT
            )
        instance = Instance(name, f"http://127.0.0.1:{port}", process, log)
        self.started.append(instance)

        def healthy() -> bool:
            assert process.poll() is None, f"{name} exited with {process.returncode}: {log.read_text()[-3000:]}"
            try:
                return httpx.get(f"{instance.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, what=f"{name} on port {port} to answer /health")
        return instance

    def stop(self, instance: Instance) -> None:
        """SIGTERM (uvicorn's supervisor passes it to its workers) and wait; SIGKILL what is left."""
        if instance.process.poll() is not None:
            return
        workers = worker_pids(instance.process.pid)
        instance.process.terminate()
        try:
            instance.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 0)
                os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for instance in self.started:
            self.stop(instance)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[str | None]:
    """A ``redis-server`` of its own on a free port (its URL), or None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, seconds=10, what="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)

"""Footprint: each service's idle memory and the time from start to all healthy.

Starts every process named in the Procfile (as ``scripts/start`` does, on free ports and a
temporary DATA_DIR), measures the time until every ``/health`` answers 200, lets them idle,
then prints each one's resident memory (VmRSS from /proc) and the total.

    .venv/bin/python bench/footprint.py [--idle SECONDS]

Goals: total idle RSS ≤ 600 MB for all eight, start to all healthy ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_services() -> list[str]:
    names = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.strip().startswith("#"):
            names.append(line.split(":", 1)[0].strip())
    return names


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return response.status == 200
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to idle before reading memory")
    args = parser.parse_args()
    services = procfile_services()
    ports = {name: free_port() for name in services}
    data_dir = Path(tempfile.mkdtemp(prefix="footprint-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "warning",
        **{f"{name.upper()}_SERVICE_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    started = time.perf_counter()
    try:
        for name, port in ports.items():
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", name],
                cwd=ROOT,
                env={**env, "PORT": str(port), "DATA_DIR": str(data_dir)},
                stdout=subprocess.DEVNULL,
            )
        waiting = set(services)
        ready_at: dict[str, float] = {}
        while waiting and time.perf_counter() - started < 60:
            for name in sorted(waiting):
                if healthy(ports[name]):
                    ready_at[name] = time.perf_counter() - started
                    waiting.discard(name)
            time.sleep(0.05)
        if waiting:
            print(f"not healthy after 60 s: {', '.join(sorted(waiting))}")
            return 1
        all_healthy = max(ready_at.values())
        time.sleep(args.idle)
        print(f"{'service':<15}{'healthy after':>15}{'idle RSS':>12}")
        total = 0.0
        for name in services:
            memory = rss_mb(processes[name].pid)
            total += memory
            print(f"{name:<15}{ready_at[name]:>13.2f} s{memory:>9.1f} MB")
        print(f"{'all':<15}{all_healthy:>13.2f} s{total:>9.1f} MB   ({len(services)} services)")
        return 0
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())

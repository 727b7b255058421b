"""Footprint: each service's idle memory and the time from start to all healthy.

Starts every process named in the Procfile (as ``scripts/start`` does, on free ports and a
temporary DATA_DIR), measures the time until every ``/health`` answers 200 and the CPU time
each process used until then (user + system from /proc: unlike the wall clock, it does not
grow when other work shares the cores), lets them idle, then prints each one's resident memory
(VmRSS from /proc) and the totals, with the load average before and after.

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
    load_before = loadavg()
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
        cpu_at: dict[str, float] = {}
        while waiting and time.perf_counter() - started < 60:
            for name in sorted(waiting):
                if healthy(ports[name]):
                    ready_at[name] = time.perf_counter() - started
                    cpu_at[name] = cpu_seconds(processes[name].pid)
                    waiting.discard(name)
            time.sleep(0.05)
        if waiting:
            print(f"not healthy after 60 s: {', '.join(sorted(waiting))}")
            return 1
        all_healthy = max(ready_at.values())
        time.sleep(args.idle)
        print(f"{'service':<15}{'healthy after':>15}{'CPU until then':>16}{'idle RSS':>12}")
        total = 0.0
        for name in services:
            memory = rss_mb(processes[name].pid)
            total += memory
            print(f"{name:<15}{ready_at[name]:>13.2f} s{cpu_at[name]:>14.2f} s{memory:>9.1f} MB")
        cpu_total = sum(cpu_at.values())
        print(f"{'all':<15}{all_healthy:>13.2f} s{cpu_total:>14.2f} s{total:>9.1f} MB   ({len(services)} services)")
        cores = os.cpu_count() or 1
        print(f"CPU total / {cores} cores = {cpu_total / cores:.2f} s")
        print(f"load average before {load_before}, after {loadavg()}")
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

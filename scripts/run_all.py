"""Start every service listed in the Procfile, wait for their /health, print where they listen.

Standard library only. Output of each service is prefixed with its name; Ctrl-C (or
SIGTERM) stops them all. Environment variables are passed through (so ``MONGODB_URI``,
``SMTP_*``, ``WEB_CONCURRENCY`` — worker processes per service — etc. work), but nothing
needs to be set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTS = {
    "gateway": 8000,
    "customer": 3001,
    "sellers": 3002,
    "media": 3003,
    "products": 3004,
    "orders": 3005,
    "admin": 3006,
    "notifications": 3007,
}


def read_procfile() -> list[tuple[str, str]]:
    entries = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def pump(name: str, stream, width: int) -> None:
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {raw.decode(errors='replace')}")
        sys.stdout.flush()


def healthy(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return json.loads(response.read()).get("status")
    except Exception:
        return None


def main() -> int:
    entries = read_procfile()
    width = max(len(name) for name, _ in entries)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in entries:
        proc = subprocess.Popen(
            command.replace("python ", f"{sys.executable} ", 1) if command.startswith("python ") else command,
            shell=True,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes[name] = proc
        threading.Thread(target=pump, args=(name, proc.stdout, width), daemon=True).start()

    def stop(*_: object) -> None:
        for proc in processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for proc in processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    deadline = time.time() + 60
    pending = {name for name, _ in entries if name in PORTS}
    while pending and time.time() < deadline:
        for name in sorted(pending):
            if processes[name].poll() is not None:
                print(f"!! {name} exited with code {processes[name].returncode}", flush=True)
                pending.discard(name)
            elif healthy(PORTS[name]) == "healthy":
                pending.discard(name)
        time.sleep(0.3)
    print("\n" + "=" * 60)
    for name, _ in entries:
        port = PORTS.get(name)
        state = "running" if processes[name].poll() is None else "EXITED"
        health = healthy(port) if port else None
        print(f"  {name:<{width}}  http://127.0.0.1:{port}  {health or state}")
    print("=" * 60 + "\nAll services started; Ctrl-C stops them.\n", flush=True)
    reported: set[str] = set()
    while True:
        time.sleep(1)
        for name, proc in processes.items():
            if proc.poll() is not None and name not in reported:
                reported.add(name)
                print(f"!! {name} exited with code {proc.returncode}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

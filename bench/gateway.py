"""Gateway throughput, latency and streaming memory, against nginx and the original Express
gateway, in one run.

Run with ``bash bench/gateway.sh`` (installs Debian's ``nginx`` and ``wrk`` when missing). All
traffic stays on 127.0.0.1. Each target is measured with wrk (1 thread, 50 connections, 8 s,
after a 2 s warm-up):

1. the upstream direct: an nginx (1 worker) returning a fixed small JSON;
2. an nginx ``proxy_pass`` (1 worker) in front of it, with upstream keep-alive;
3. the gateway in front of it, as production runs it: ``python -m gateway`` (one uvicorn worker
   unless ``--workers``/``WEB_CONCURRENCY`` asks for more; uvloop + httptools), rate limiting on
   with a high limit, all headers, access log at info (to a file);
4. the original Express gateway (``backend/api-gateway`` of haresh-vidja/microservices) in front
   of the same nginx, when ``node`` is installed and ``--express-dir``/``EXPRESS_GATEWAY_DIR``
   names that folder with its packages installed (``npm install`` there); none of its code is
   part of this repository. It runs with ``PORT``, ``CUSTOMER_SERVICE_URL``, a large
   ``RATE_LIMIT_MAX`` and ``NODE_ENV=production`` (no per-request console line).

With ``--rounds N`` every target is measured N times, the order reversed every other round, and
the table shows the medians: on a machine whose load drifts, neighbours then weigh on all
targets alike.

Besides req/s and p50/p99 it prints the CPU time each server process (with its worker
processes) spent per request (``/proc/<pid>/stat``): unlike req/s and latency, that figure
barely moves when other work shares the machine, so the CPU ratios are the steadier comparison.

Then the gateway's peak RSS growth while 8 (and 20) clients each upload 10 MB through it to an
upstream that reads every byte before answering (contract §7.1: streamed, never buffered).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SMALL_JSON = '{"success":true,"data":{"id":"6650f0c2a1b2c3d4e5f60718","name":"Bench product","price":19.99}}'
UPLOAD_BYTES = 10 * 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


NGINX_CONF = """
worker_processes 1;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  fastcgi_temp_path {dir}/{name}-fastcgi;
  uwsgi_temp_path {dir}/{name}-uwsgi;
  scgi_temp_path {dir}/{name}-scgi;
  keepalive_requests 1000000;
{body}
}}
"""

UPSTREAM = """
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{json}'; }}
  }}
"""

PROXY = """
  upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /api/customer/ {{
      proxy_pass http://backend/api/v1/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
"""

SINK = """
import asyncio, sys
from aiohttp import web

async def consume(request):
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.json_response({"received": total})

app = web.Application(client_max_size=1 << 30)
app.router.add_route("*", "/{tail:.*}", consume)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def start_nginx(workdir: Path, name: str, body: str) -> subprocess.Popen[bytes]:
    conf = workdir / f"{name}.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, name=name, body=body))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def descendants(pid: int) -> list[int]:
    """``pid``'s child processes, their children, and so on (uvicorn's workers)."""
    found: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children(child))
    return found


def wrk(url: str, seconds: int, connections: int, server_pids: list[int]) -> dict[str, float]:
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", url], check=True, stdout=subprocess.DEVNULL)  # warm-up
    cpu_before = cpu_seconds(server_pids)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu = cpu_seconds(server_pids) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)\b", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "cpu_us": cpu / requests * 1e6,
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(0) if socket_errors else "",  # type: ignore[dict-item]
    }


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def upload_rss(gateway_url: str, pid: int, clients: int) -> tuple[int, int, float]:
    """Peak RSS growth (KB) of ``pid`` while ``clients`` upload 10 MB each; how many arrived whole."""
    import aiohttp

    chunk = os.urandom(64 * 1024)

    async def body():  # type: ignore[no-untyped-def]
        sent = 0
        while sent < UPLOAD_BYTES:
            yield chunk
            sent += len(chunk)

    base = rss_kb(pid)
    peak = base
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kb(pid))
            await asyncio.sleep(0.005)

    headers = {"Content-Type": "multipart/form-data; boundary=bench", "Content-Length": str(UPLOAD_BYTES)}
    started = time.perf_counter()
    sampler = asyncio.create_task(sample())
    async with aiohttp.ClientSession() as session:

        async def one() -> bool:
            async with session.post(f"{gateway_url}/api/media/media/upload", data=body(), headers=headers) as resp:
                answer = await resp.json()
                return resp.status == 200 and answer.get("received") == UPLOAD_BYTES

        whole = await asyncio.gather(*(one() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    return peak - base, sum(whole), elapsed


class Target(NamedTuple):
    name: str
    url: str
    pids: list[int]  # the processes whose CPU time counts for this target


def start_gateway(workdir: Path, port: int, upstream_url: str, media_url: str, workers: int) -> subprocess.Popen[bytes]:
    """``python -m gateway`` as production runs it, in front of ``upstream_url`` (media: the sink)."""
    services = ("CUSTOMER", "SELLERS", "PRODUCTS", "ORDERS", "ADMIN", "NOTIFICATIONS")
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ENV": "production",
        "JWT_SECRET": "bench-secret-" + "x" * 40,
        "SERVICE_KEY": "bench-service-key-" + "y" * 32,  # ENV=production wants 32+ characters
        "RATE_LIMIT_MAX": "1000000000",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "text",
        "PYTHONPATH": str(ROOT),
        "WEB_CONCURRENCY": str(workers),
        "MEDIA_SERVICE_URL": media_url,
        **{f"{name}_SERVICE_URL": upstream_url for name in services},
    }
    env.pop("REDIS_URL", None)
    with (workdir / "gateway.log").open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )


def express_skip_reason(folder: str | None) -> str | None:
    """Why the original Express gateway cannot run here, or None when it can."""
    if not shutil.which("node"):
        return "node is not installed"
    if not folder:
        return "EXPRESS_GATEWAY_DIR (or --express-dir) is not set"
    path = Path(folder)
    if not (path / "index.js").is_file():
        return f"{path} has no index.js (the original's backend/api-gateway folder is expected)"
    if not (path / "node_modules" / "express").is_dir():
        return f"{path} has no node_modules/express: run npm install there"
    return None


def start_express(folder: str, workdir: Path, port: int, upstream_url: str) -> subprocess.Popen[bytes]:
    """The original gateway (``node index.js``) with every service URL on ``upstream_url``."""
    services = ("CUSTOMER", "SELLERS", "MEDIA", "PRODUCTS", "ORDERS", "ADMIN", "NOTIFICATIONS")
    env = {
        **os.environ,
        "PORT": str(port),
        "NODE_ENV": "production",
        "RATE_LIMIT_MAX": "1000000000",
        **{f"{name}_SERVICE_URL": upstream_url for name in services},
    }
    with (workdir / "express.log").open("wb") as log_file:
        return subprocess.Popen(["node", "index.js"], cwd=folder, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def wait_started(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30.0) -> bool:
    """Wait for ``proc`` to listen on ``port``; False (and its last log lines) when it exits first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    tail = log.read_text(errors="replace").splitlines()[-5:]
    print(f"the gateway did not start (exit status {proc.poll()}); its last log lines:", *tail, sep="\n  ")
    return False


def wait_workers(pid: int, workers: int, timeout: float = 30.0) -> list[int]:
    """The gateway's processes once its ``workers`` workers run (just ``pid`` for one)."""
    if workers <= 1:
        return [pid]
    deadline = time.monotonic() + timeout
    found = descendants(pid)
    while len(found) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
        found = descendants(pid)
    return [pid, *found]


def measure(targets: list[Target], rounds: int, seconds: int, connections: int) -> dict[str, dict[str, Any]]:
    """wrk on every target, ``rounds`` times (order reversed every other round); medians."""
    runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
    for index in range(rounds):
        for target in targets if index % 2 == 0 else targets[::-1]:
            runs[target.name].append(wrk(target.url, seconds, connections, target.pids))
    medians: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        row: dict[str, Any] = {
            key: statistics.median(r[key] for r in results) for key in ("rps", "p50", "p99", "cpu_us", "non2xx")
        }
        row["socket_errors"] = "; ".join(r["socket_errors"] for r in results if r["socket_errors"])
        medians[name] = row
    return medians


def print_table(rows: dict[str, dict[str, Any]], args: argparse.Namespace, load_before: str) -> None:
    load = os.getloadavg()
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.seconds}s{rounds}, small JSON ({len(SMALL_JSON)} B); "
        f"nginx: 1 worker each; gateway: {args.workers} uvicorn worker(s); {os.cpu_count()} CPUs, "
        f"load average {load_before} before, {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after"
    )
    print(f"{'target':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'non-2xx':>8}")
    for name, row in rows.items():
        extra = f"  {row['socket_errors']}" if row["socket_errors"] else ""
        print(
            f"{name:32} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['cpu_us']:>11.1f}"
            f" {row['non2xx']:>8.0f}{extra}"
        )


def print_ratios(rows: dict[str, dict[str, Any]]) -> None:
    ours = rows[OURS]
    proxy = rows.get(NGINX_PROXY)
    if proxy is not None:
        print(
            f"\nnginx proxy / gateway: {proxy['rps'] / ours['rps']:.1f}x the requests/s; gateway / nginx proxy: "
            f"{ours['cpu_us'] / proxy['cpu_us']:.1f}x the CPU per request"
        )
    express = rows.get(EXPRESS)
    if express is None:
        return
    speed = ours["rps"] / express["rps"]
    tail = ours["p99"] / express["p99"]
    goal = "met" if speed >= 3 and tail <= 0.5 else "NOT met"
    print(
        f"gateway / Express: {speed:.2f}x the requests/s, p99 {ours['p99']:.1f} ms vs {express['p99']:.1f} ms "
        f"({tail:.2f}x), CPU per request {ours['cpu_us']:.1f} vs {express['cpu_us']:.1f} us "
        f"({express['cpu_us'] / ours['cpu_us']:.2f}x less) (goal: >= 3x the requests/s and p99 <= half: {goal})"
    )


OURS = "gateway (python -m gateway)"
NGINX_PROXY = "nginx proxy_pass keep-alive"
EXPRESS = "original Express gateway (node)"


def stop(procs: list[subprocess.Popen[bytes]], nginxes: int) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT if proc in procs[:nginxes] else signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="measure every target this many times (medians)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or 1),
        help="uvicorn workers of our gateway (sets WEB_CONCURRENCY; default: that variable, else 1)",
    )
    parser.add_argument(
        "--express-dir",
        default=os.environ.get("EXPRESS_GATEWAY_DIR"),
        help="the original's backend/api-gateway folder, packages installed (default: EXPRESS_GATEWAY_DIR)",
    )
    parser.add_argument("--only-gateway", action="store_true", help="skip the nginx and Express figures")
    parser.add_argument("--no-uploads", action="store_true", help="skip the upload RSS figures")
    args = parser.parse_args()

    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} is missing: run bench/gateway.sh (it installs it from Debian)", file=sys.stderr)
            return 2
    skip_express = "--only-gateway" if args.only_gateway else express_skip_reason(args.express_dir)
    if skip_express:
        print(f"skipping the original Express gateway: {skip_express}")

    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port, proxy_port, gw_port, sink_port = free_port(), free_port(), free_port(), free_port()
        procs.append(start_nginx(workdir, "upstream", UPSTREAM.format(port=up_port, json=SMALL_JSON)))
        procs.append(start_nginx(workdir, "proxy", PROXY.format(port=proxy_port, upstream=up_port)))
        procs.append(subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)]))
        upstream_url = f"http://127.0.0.1:{up_port}"
        gateway = start_gateway(workdir, gw_port, upstream_url, f"http://127.0.0.1:{sink_port}", args.workers)
        procs.append(gateway)
        express_port = free_port()
        if not skip_express:
            procs.append(start_express(args.express_dir, workdir, express_port, upstream_url))
        for port in (up_port, proxy_port, sink_port, *(() if skip_express else (express_port,))):
            wait_port(port)
        if not wait_started(gateway, gw_port, workdir / "gateway.log"):
            return 1
        gateway_pids = wait_workers(gateway.pid, args.workers)
        if args.workers > 1 and len(gateway_pids) == 1:
            print(f"WEB_CONCURRENCY={args.workers} had no effect: this tree's gateway runs one process")

        path = "/api/customer/products?page=1"
        targets = [Target(OURS, f"http://127.0.0.1:{gw_port}{path}", gateway_pids)]
        if not args.only_gateway:
            targets[:0] = [
                Target("upstream direct (nginx)", f"{upstream_url}/api/v1/products?page=1", children(procs[0].pid)),
                Target(NGINX_PROXY, f"http://127.0.0.1:{proxy_port}{path}", children(procs[1].pid)),
            ]
        if not skip_express:
            targets.append(Target(EXPRESS, f"http://127.0.0.1:{express_port}{path}", [procs[-1].pid]))
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        rows = measure(targets, args.rounds, args.seconds, args.connections)
        print_table(rows, args, load_before)
        print_ratios(rows)
        with (workdir / "gateway.log").open("rb") as log_lines:
            lines = sum(1 for _ in log_lines)
        print(f"gateway access log: {lines} lines at info level")

        if not args.no_uploads:
            upload_figures(f"http://127.0.0.1:{gw_port}", gateway.pid)
    finally:
        stop(procs, nginxes=2)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def upload_figures(gateway_url: str, pid: int) -> None:
    for clients in (8, 20):
        grown, whole, elapsed = asyncio.run(upload_rss(gateway_url, pid, clients))
        goal = 20 if clients == 8 else 50
        print(
            f"gateway RSS growth, {clients} x 10 MB uploads at once: {grown / 1024:.1f} MB (goal < {goal} MB); "
            f"{whole}/{clients} arrived whole at the upstream in {elapsed:.1f} s"
        )


if __name__ == "__main__":
    sys.exit(main())

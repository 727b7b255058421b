"""Gateway throughput, latency and streaming memory, against nginx, in one run.

Run with ``bash bench/gateway.sh`` (installs Debian's ``nginx`` and ``wrk`` when missing). All
traffic stays on 127.0.0.1. Each target is measured with wrk (1 thread, 50 connections, 8 s,
after a 2 s warm-up):

1. the upstream direct: an nginx (1 worker) returning a fixed small JSON;
2. an nginx ``proxy_pass`` (1 worker) in front of it, with upstream keep-alive;
3. the gateway in front of it, as production runs it: ``python -m gateway`` (one uvicorn worker,
   uvloop + httptools), rate limiting on with a high limit, all headers, access log at info
   (to a file).

Besides req/s and p50/p99 it prints the CPU time each server process spent per request
(``/proc/<pid>/stat``): unlike req/s and latency, that figure barely moves when other work
shares the machine, so the CPU ratio nginx-proxy : gateway is the steadier comparison.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only-gateway", action="store_true", help="skip the nginx figures")
    args = parser.parse_args()

    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} is missing: run bench/gateway.sh (it installs it from Debian)", file=sys.stderr)
            return 2

    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port, proxy_port, gw_port, sink_port = free_port(), free_port(), free_port(), free_port()
        procs.append(start_nginx(workdir, "upstream", UPSTREAM.format(port=up_port, json=SMALL_JSON)))
        procs.append(start_nginx(workdir, "proxy", PROXY.format(port=proxy_port, upstream=up_port)))
        procs.append(subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)]))
        upstream_url = f"http://127.0.0.1:{up_port}"
        services = ("CUSTOMER", "SELLERS", "PRODUCTS", "ORDERS", "ADMIN", "NOTIFICATIONS")
        env = {
            **os.environ,
            "PORT": str(gw_port),
            "HOST": "127.0.0.1",
            "ENV": "production",
            "JWT_SECRET": "bench-secret-" + "x" * 40,
            "SERVICE_KEY": "bench-service-key-" + "y" * 32,  # ENV=production wants 32+ characters
            "RATE_LIMIT_MAX": "1000000000",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "text",
            "PYTHONPATH": str(ROOT),
            "MEDIA_SERVICE_URL": f"http://127.0.0.1:{sink_port}",
            **{f"{name}_SERVICE_URL": upstream_url for name in services},
        }
        env.pop("REDIS_URL", None)
        log_path = workdir / "gateway.log"
        with log_path.open("wb") as log_file:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        procs.append(gateway)
        for port in (up_port, proxy_port, gw_port, sink_port):
            wait_port(port)

        path = "/api/customer/products?page=1"
        targets = [("gateway (python -m gateway)", f"http://127.0.0.1:{gw_port}{path}", [gateway.pid])]
        if not args.only_gateway:
            targets[:0] = [
                ("upstream direct (nginx)", f"{upstream_url}/api/v1/products?page=1", children(procs[0].pid)),
                ("nginx proxy_pass keep-alive", f"http://127.0.0.1:{proxy_port}{path}", children(procs[1].pid)),
            ]
        rows = [(name, wrk(url, args.seconds, args.connections, pids)) for name, url, pids in targets]

        load = os.getloadavg()
        print(
            f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, small JSON ({len(SMALL_JSON)} B); "
            f"nginx: 1 worker each; gateway: 1 uvicorn worker; {os.cpu_count()} CPUs, "
            f"load average {load[0]:.2f} {load[1]:.2f}"
        )
        print(f"{'target':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'non-2xx':>8}")
        for name, row in rows:
            extra = f"  {row['socket_errors']}" if row["socket_errors"] else ""
            print(
                f"{name:30} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['cpu_us']:>11.1f}"
                f" {row['non2xx']:>8.0f}{extra}"
            )
        ours = rows[-1][1]
        if not args.only_gateway:
            nginx_proxy = rows[1][1]
            ratio = nginx_proxy["rps"] / ours["rps"]
            cpu_ratio = ours["cpu_us"] / nginx_proxy["cpu_us"]
            goal = "met" if ratio <= 16 and ours["p99"] < 20 else "NOT met"
            print(
                f"\nnginx proxy / gateway: {ratio:.1f}x the requests/s; gateway / nginx proxy: "
                f"{cpu_ratio:.1f}x the CPU per request (goal: <= 16x with p99 < 20 ms: {goal}; "
                "the original Express gateway: 49x)"
            )
        with log_path.open("rb") as log_lines:
            lines = sum(1 for _ in log_lines)
        print(f"gateway access log: {lines} lines at info level")

        for clients in (8, 20):
            grown, whole, elapsed = asyncio.run(upload_rss(f"http://127.0.0.1:{gw_port}", gateway.pid, clients))
            goal = 20 if clients == 8 else 50
            print(
                f"gateway RSS growth, {clients} x 10 MB uploads at once: {grown / 1024:.1f} MB (goal < {goal} MB); "
                f"{whole}/{clients} arrived whole at the upstream in {elapsed:.1f} s"
            )
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT if proc in procs[:2] else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

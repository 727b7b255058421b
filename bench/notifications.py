"""Notifications throughput: messages/s with N concurrent senders, and /health latency meanwhile.

Starts, all on 127.0.0.1 and on free ports:
  * an aiosmtpd server in its own process that accepts and counts every message;
  * the service as a real process (``python -m notifications``), SMTP settings from the
    environment (encryption none, no auth), a fresh database in a temporary folder;
then 20 senders (by default) post ``/api/v1/send`` back to back until the message count or the
time limit is reached, while one more task polls ``/health`` every 20 ms. A second probe polls
``/health`` every 20 ms from a process of its own (plain keep-alive ``http.client``), so its
figure does not include the wait of the senders' own event loop and GIL in this process.

    python bench/notifications.py                       # SMTP, 20 senders, 2000 messages / 60 s max
    python bench/notifications.py --transport file      # no SMTP row: .eml files in the outbox
    python bench/notifications.py --senders 50 --messages 5000
    python bench/notifications.py --hostile             # refusal time of hostile templates, /health meanwhile
    python bench/notifications.py --hostile --code /tmp/old --width 80000000 --range 3000   # older code

``--hostile`` (issue 11): times ``POST /templates`` with ``{{ 'x'|center(WIDTH) }}`` and with two
nested ``range(RANGE)`` loops, then sends templates that take those sizes from ``data``
(``--rounds`` times each, one after the other) while ``/health`` is polled every 20 ms.

Not a test: prints figures, asserts nothing about speed. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
SERVICE_KEY = "bench-service-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_smtp_sink(port: int, counter, ready, stop) -> None:  # type: ignore[no-untyped-def]
    """Child process: an aiosmtpd server that counts accepted messages."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def run_health_probe(port: int, interval: float, out, go, stop) -> None:  # type: ignore[no-untyped-def]
    """Child process: from ``go`` until ``stop``, GET /health every ``interval`` s on one
    keep-alive connection; put the latencies (seconds) on ``out``."""
    latencies: list[float] = []
    go.wait(120)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    deadline = time.monotonic() + 600
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            conn.request("GET", "/health")
            conn.getresponse().read()
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            stop.wait(interval)
            continue
        latencies.append(time.perf_counter() - started)
        stop.wait(interval)
    out.put(latencies)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


async def wait_healthy(session: aiohttp.ClientSession, url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"service exited with code {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("service did not become healthy")


async def drive(base: str, *, senders: int, messages: int, seconds: float) -> dict[str, object]:
    headers = {"X-Service-Key": SERVICE_KEY}
    connector = aiohttp.TCPConnector(limit=senders + 2)
    statuses: dict[int, int] = {}
    send_latencies: list[float] = []
    health_latencies: list[float] = []
    issued = 0
    done = asyncio.Event()

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async def sender(worker: int) -> None:
            nonlocal issued
            while not done.is_set() and issued < messages:
                issued += 1
                n = issued
                body = {"template": "order_confirmation", "recipient_email": f"buyer{n}@example.com",
                        "recipient_name": f"Buyer {n}",
                        "data": {"customerName": f"Buyer {n}", "orderNumber": f"ORD-{n:06d}", "totalAmount": 59.9,
                                 "items": [{"productName": "Lamp", "quantity": 2},
                                           {"productName": "Shade", "quantity": 1}]}}
                started = time.perf_counter()
                async with session.post(f"{base}/api/v1/send", json=body) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                send_latencies.append(time.perf_counter() - started)

        async def health() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with session.get(f"{base}/health") as response:
                    await response.read()
                health_latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(health())
        started = time.perf_counter()
        tasks = [asyncio.create_task(sender(i)) for i in range(senders)]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds)
        except TimeoutError:
            pass
        elapsed = time.perf_counter() - started
        done.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, poller, return_exceptions=True)

    return {"elapsed": elapsed, "statuses": statuses, "send": send_latencies, "health": health_latencies}


async def drive_hostile(base: str, *, width: int, size: int, rounds: int) -> None:
    """Refusal times of hostile templates and /health latency while they are sent."""
    ms = 1000.0
    async with aiohttp.ClientSession(headers={"X-Service-Key": SERVICE_KEY}) as session:

        async def timed(method: str, path: str, body: dict) -> tuple[int, float]:
            started = time.perf_counter()
            async with session.request(method, f"{base}{path}", json=body,
                                       timeout=aiohttp.ClientTimeout(total=120)) as response:
                await response.read()
                return response.status, time.perf_counter() - started

        center = f"{{{{ 'x'|center({width}) }}}}"
        nested = f"{{% for a in range({size}) %}}{{% for b in range({size}) %}}{{% endfor %}}{{% endfor %}}"
        for label, source in (("center", center), ("nested ranges", nested)):
            status, seconds = await timed("POST", "/api/v1/templates",
                                          {"name": "H", "code": "h_const", "subject": "s", "body_text": source})
            print(f"POST /templates {label}: status {status} in {seconds * ms:.0f} ms")
            if status == 201:
                async with session.get(f"{base}/api/v1/templates") as response:
                    for row in (await response.json())["data"]:
                        if row["code"] == "h_const":
                            await session.delete(f"{base}/api/v1/templates/{row['id']}")
        for code, source in (("h_center", "{{ 'x'|center(n) }}"),
                             ("h_nested", "{% for a in range(n) %}{% for b in range(n) %}{% endfor %}{% endfor %}")):
            await timed("POST", "/api/v1/templates", {"name": "H", "code": code, "subject": "s", "body_text": source})

        health: list[float] = []
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with session.get(f"{base}/health") as response:
                    await response.read()
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(poll())
        await asyncio.sleep(0.2)
        for code, n in (("h_center", width), ("h_nested", size)):
            times, statuses = [], set()
            for _ in range(rounds):
                status, seconds = await timed("POST", "/api/v1/send",
                                              {"template": code, "recipient_email": "a@example.com", "data": {"n": n}})
                times.append(seconds)
                statuses.add(status)
            print(f"POST /send {code} (n={n}) x{rounds}: statuses {sorted(statuses)}, ms p50 "
                  f"{percentile(times, 50) * ms:.0f} max {max(times) * ms:.0f}")
        done.set()
        await poller
    print(f"/health during the hostile sends: {len(health)} probes, ms p50 {percentile(health, 50) * ms:.1f}  "
          f"p99 {percentile(health, 99) * ms:.1f}  max {max(health) * ms:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit of the send phase")
    parser.add_argument("--transport", choices=("smtp", "file"), default="smtp")
    parser.add_argument("--log-level", default="info", help="the service's LOG_LEVEL (info logs every request)")
    parser.add_argument("--hostile", action="store_true", help="measure hostile-template refusals instead")
    parser.add_argument("--width", type=int, default=800_000_000, help="--hostile: the center() width")
    parser.add_argument("--range", type=int, default=10_000, dest="size", help="--hostile: each range() size")
    parser.add_argument("--rounds", type=int, default=5, help="--hostile: sends of each hostile template")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose service is started")
    args = parser.parse_args()
    if args.hostile:
        args.transport = "file"

    smtp_port, port = free_port(), free_port()
    ctx = multiprocessing.get_context("spawn")
    counter, ready, stop = ctx.Value("i", 0), ctx.Event(), ctx.Event()
    sink = ctx.Process(target=run_smtp_sink, args=(smtp_port, counter, ready, stop), daemon=True)
    sink.start()
    if not ready.wait(15):
        raise SystemExit("SMTP sink did not start")

    with tempfile.TemporaryDirectory(prefix="bench-notifications-") as tmp:
        env = {**os.environ, "PYTHONPATH": f"{args.code}{os.pathsep}{REPO}", "PORT": str(port), "HOST": "127.0.0.1",
               "DATA_DIR": tmp,
               "SERVICE_KEY": SERVICE_KEY, "LOG_LEVEL": args.log_level, "SMTP_LOCAL_HOSTNAME": "bench.local"}
        if args.transport == "smtp":
            env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_ENCRYPTION="none",
                       SMTP_FROM_EMAIL="shop@example.com")
        log_path = Path(tmp) / "service.log"
        with open(log_path, "wb") as log:
            service = subprocess.Popen([sys.executable, "-m", "notifications"], cwd=args.code, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            async def run() -> dict[str, object]:
                async with aiohttp.ClientSession() as session:
                    await wait_healthy(session, f"{base}/health", service)
                if args.hostile:
                    await drive_hostile(base, width=args.width, size=args.size, rounds=args.rounds)
                    return {}
                probe_go.set()  # the send phase starts
                return await drive(base, senders=args.senders, messages=args.messages, seconds=args.seconds)

            probe_out, probe_go, probe_stop = ctx.Queue(), ctx.Event(), ctx.Event()
            probe = ctx.Process(
                target=run_health_probe, args=(port, 0.02, probe_out, probe_go, probe_stop), daemon=True
            )
            if not args.hostile:
                probe.start()
            result = asyncio.run(run())
            if not args.hostile:
                probe_stop.set()
                result["probe"] = probe_out.get(timeout=30)
                probe.join(timeout=10)
        finally:
            service.terminate()
            try:
                service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.kill()
            stop.set()
            sink.join(timeout=10)

    if args.hostile:
        return
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    statuses: dict[int, int] = result["statuses"]  # type: ignore[assignment]
    send: list[float] = result["send"]  # type: ignore[assignment]
    health: list[float] = result["health"]  # type: ignore[assignment]
    accepted = statuses.get(200, 0)
    ms = 1000.0
    print(f"transport={args.transport} senders={args.senders} machine cores={os.cpu_count()} log={args.log_level}")
    print(f"sent: {sum(statuses.values())} requests in {elapsed:.2f} s, statuses {dict(sorted(statuses.items()))}")
    print(f"throughput: {accepted / elapsed:.1f} messages/s delivered synchronously (200)")
    if args.transport == "smtp":
        print(f"SMTP server received: {counter.value} messages")
    print(f"/send latency ms: p50 {percentile(send, 50) * ms:.1f}  p99 {percentile(send, 99) * ms:.1f}  "
          f"max {max(send, default=float('nan')) * ms:.1f}")
    print(f"/health during the run: {len(health)} probes, ms p50 {percentile(health, 50) * ms:.1f}  "
          f"p95 {percentile(health, 95) * ms:.1f}  p99 {percentile(health, 99) * ms:.1f}  "
          f"max {max(health, default=float('nan')) * ms:.1f}  (mean {statistics.fmean(health) * ms:.1f})"
          if health else "/health: no probes")
    probed: list[float] = result["probe"]  # type: ignore[assignment]
    print(f"/health from its own process: {len(probed)} probes, ms p50 {percentile(probed, 50) * ms:.1f}  "
          f"p95 {percentile(probed, 95) * ms:.1f}  p99 {percentile(probed, 99) * ms:.1f}  "
          f"max {max(probed, default=float('nan')) * ms:.1f}"
          if probed else "/health from its own process: no probes")
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()

"""Media service benchmark: upload throughput, /health latency under load, peak RSS.

Starts ``python -m media`` as a subprocess on a free loopback port with a temporary
DATA_DIR, then measures:

1. Upload throughput for ~2 MB JPEGs with 8 concurrent clients, and the p50/p99/max latency
   of ``GET /health`` probed every 10 ms meanwhile (goal: p99 <= 50 ms, i.e. decoding and
   thumbnailing never stall the event loop).
2. The service's peak RSS (``VmRSS`` from ``/proc/<pid>/status``, sampled every 5 ms) while 8
   clients upload 10 MB files at once, above its idle RSS (goal: < 100 MB above idle).
3. That an 11 MB body is answered 413 by the real server.

Uploads run in a separate process (aiohttp) and the health probe in a thread using a plain
keep-alive ``http.client`` connection, so the measuring side does not skew the figures.
Only 127.0.0.1 is contacted; every loop is bounded. Run: ``python bench/media.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def noise_jpeg(target: int, seed: int, limit: int | None = None) -> bytes:
    """A JPEG of about ``target`` bytes (at least 90 %), never above ``limit`` (noise compresses poorly)."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    side = 800
    for _ in range(60):
        width, height = side * 4 // 3, side
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        image = image.filter(ImageFilter.GaussianBlur(0.6))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=92)
        size = out.tell()
        if size >= target * 0.9 and (limit is None or size <= limit):
            return out.getvalue()
        side = int(side * (1.1 if size < target * 0.9 else 0.97))
    raise RuntimeError("could not make a JPEG of the wanted size")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# -- the upload worker (its own process) ----------------------------------------------------


def upload_worker(
    port: int, payloads: list[tuple[str, bytes]], total: int, clients: int, nice: int, out: mp.Queue
) -> None:
    if nice:
        os.nice(nice)
    asyncio.run(_upload_worker(port, payloads, total, clients, out))


async def _upload_worker(port: int, payloads: list[tuple[str, bytes]], total: int, clients: int, out: mp.Queue) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{port}/api/v1/media/upload"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(total))

    async def client(session: aiohttp.ClientSession) -> None:
        for n in counter:
            name, data = payloads[n % len(payloads)]
            form = aiohttp.FormData()
            form.add_field("file", data, filename=name, content_type="application/octet-stream")
            form.add_field("type", "temp")
            started = time.perf_counter()
            async with session.post(url, data=form) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    out.put({"elapsed": elapsed, "latencies": latencies, "statuses": statuses})


def run_uploads(
    port: int, payloads: list[tuple[str, bytes]], total: int, clients: int = CLIENTS, nice: int = 0
) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    process = ctx.Process(target=upload_worker, args=(port, payloads, total, clients, nice, queue))
    process.start()
    result = queue.get(timeout=600)
    process.join(timeout=30)
    return result


# -- probes in the measuring process ----------------------------------------------------------


class HealthProbe(threading.Thread):
    """GET /health every ``interval`` seconds on one keep-alive connection."""

    def __init__(self, port: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        deadline = time.monotonic() + 900
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
            except OSError:
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.latencies.append(time.perf_counter() - started)
            self.stop.wait(self.interval)
        conn.close()


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 900
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, rss_bytes(self.pid))
            self.stop.wait(self.interval)


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def multipart_body(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "benchboundary0123456789"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def chunked_oversize(port: int, total: int) -> tuple[int, str]:
    """Send a chunked multipart upload of ``total`` bytes; return (bytes sent, status line)."""
    boundary = "benchchunked0123456789"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.pdf"\r\n\r\n%PDF-1.4\n'
    ).encode()
    chunk = b"0" * (256 * 1024)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall(
            b"POST /api/v1/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        )
        for piece in [head] + [chunk] * (total // len(chunk)):
            try:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            except OSError:
                break
            sent += len(piece)
        try:
            reply = sock.recv(200).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            reply = f"no reply ({exc.__class__.__name__})"
    finally:
        sock.close()
    return sent, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=160, help="2 MB uploads in the throughput phase")
    parser.add_argument("--big-rounds", type=int, default=3, help="rounds of 8 concurrent 10 MB uploads")
    parser.add_argument(
        "--client-nice",
        type=int,
        default=10,
        help="nice value of the upload load generator; on a small machine it shares the service's cores, "
        "and a positive value stands in for clients on other machines (0 = compete as equals)",
    )
    args = parser.parse_args()

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="media-bench-")
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATA_DIR": data_dir,
        "MEDIA_CLEANUP_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    service = subprocess.Popen([sys.executable, "-m", "media"], cwd=ROOT, env=env)
    try:
        for _ in range(200):
            try:
                if request(port, "GET", "/health") == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("media service did not start")

        print(f"media service pid {service.pid} on 127.0.0.1:{port}, DATA_DIR {data_dir}")
        print("making test files ...", flush=True)
        jpegs = [(f"photo{i}.jpg", noise_jpeg(2 * 1024 * 1024, seed=i)) for i in range(4)]
        avg_jpeg = statistics.mean(len(d) for _, d in jpegs)
        from PIL import Image

        dims = Image.open(io.BytesIO(jpegs[0][1])).size
        big_pdf = b"%PDF-1.4\n" + os.urandom(10 * 1024 * 1024 - 9)
        big_jpeg = noise_jpeg(10 * 1024 * 1024, seed=99, limit=10 * 1024 * 1024)

        # warm-up: imports, Pillow, the database, thread pool
        run_uploads(port, jpegs, total=8, clients=2)
        time.sleep(0.5)
        idle = rss_bytes(service.pid)

        # -- 1. throughput and /health latency ---------------------------------------------
        probe = HealthProbe(port)
        probe.start()
        time.sleep(0.3)
        baseline = len(probe.latencies)
        result = run_uploads(port, jpegs, total=args.uploads, nice=args.client_nice)
        probe.stop.set()
        probe.join()
        during = probe.latencies[baseline:]
        lat = result["latencies"]
        mb = args.uploads * avg_jpeg / 1e6
        print()
        print(
            f"[1] {args.uploads} uploads of ~{avg_jpeg / 1e6:.2f} MB JPEGs ({dims[0]}x{dims[1]}), {CLIENTS} clients "
            f"(load generator at nice {args.client_nice}, {os.cpu_count()} CPUs)"
        )
        print(f"    statuses {result['statuses']}")
        print(
            f"    throughput {args.uploads / result['elapsed']:.1f} uploads/s, {mb / result['elapsed']:.1f} MB/s "
            f"(elapsed {result['elapsed']:.1f} s)"
        )
        print(f"    upload latency p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms")
        print(
            f"    /health during uploads: {len(during)} probes, p50 {percentile(during, 50) * 1000:.1f} ms, "
            f"p99 {percentile(during, 99) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms, "
            f"failures {probe.failures} (goal p99 <= 50 ms)"
        )

        # -- 2. peak RSS during 8 concurrent 10 MB uploads ----------------------------------
        for label, payload in (("PDF", big_pdf), ("JPEG", big_jpeg)):
            time.sleep(0.5)
            idle_now = rss_bytes(service.pid)
            sampler = RssSampler(service.pid)
            sampler.start()
            result = run_uploads(port, [(f"big.{label.lower()}", payload)], total=CLIENTS * args.big_rounds)
            sampler.stop.set()
            sampler.join()
            print()
            print(
                f"[2] {CLIENTS * args.big_rounds} uploads of {len(payload) / 1048576:.2f} MiB ({label}), "
                f"{CLIENTS} at once; statuses {result['statuses']}"
            )
            print(
                f"    RSS idle {idle / 1e6:.1f} MB (before this phase {idle_now / 1e6:.1f} MB), "
                f"peak {sampler.peak / 1e6:.1f} MB, peak above idle {(sampler.peak - idle) / 1e6:.1f} MB "
                f"(goal < 100 MB)"
            )

        # -- 3. an over-limit body on the real server --------------------------------------
        body, ctype = multipart_body("big.pdf", b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024))
        started = time.perf_counter()
        status = request(port, "POST", "/api/v1/media/upload", body, {"Content-Type": ctype})
        print()
        print(f"[3] 11 MB body with Content-Length: HTTP {status} in {(time.perf_counter() - started) * 1000:.0f} ms")
        sent, status_line = chunked_oversize(port, total=50 * 1024 * 1024)
        print(
            f"[4] 50 MB chunked body (no Content-Length): {status_line!r}; the client got {sent / 1e6:.1f} MB out "
            "before the server closed the connection"
        )
        tmp_left = list((Path(data_dir) / "media" / ".tmp").iterdir())
        print(f"    files left in MEDIA_ROOT/.tmp: {len(tmp_left)}")
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

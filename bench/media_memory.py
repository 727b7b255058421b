"""Media decode memory: peak RSS growth of a real ``python -m media`` for small files that
decode large (issue 11 item 3).

Each scenario starts a fresh ``python -m media`` on a free loopback port with a temporary
DATA_DIR, warms it up with one small image upload, reads ``VmHWM`` (the kernel's peak
resident set) from ``/proc/<pid>/status``, runs the scenario's uploads (all at once, one
thread each) and reads ``VmHWM`` again; the difference is the peak growth the scenario
caused. Files are made with Pillow here; only 127.0.0.1 is contacted.

Scenarios (goals from the issue):

* ``palette``: one 5,000 × 5,000 palette PNG with a transparent colour (~25 KB) — goal
  < 120 MB of growth;
* ``rgba``: one 39.7-megapixel RGBA PNG (~154 KB);
* ``rgba4``: four of those at once — goal < 500 MB of growth;
* ``palette4``: four palette PNGs at once;
* ``jpeg4``: four 39.7-megapixel progressive JPEGs at once;
* ``webp4``: four 16,383 × 2,440 WEBPs at once.

Run: ``python bench/media_memory.py`` (``--source DIR`` runs another checkout's media, e.g.
the code before a change; ``--scenarios palette,rgba``).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


# -- files --------------------------------------------------------------------------------------


def palette_png(side: int = 5000) -> bytes:
    from PIL import Image

    image = Image.new("P", (side, side), 3)
    image.putpalette([i % 256 for i in range(768)])
    image.paste(7, (0, 0, side // 2, side // 3))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True, transparency=3)  # a colour key: thumbnails get alpha
    return out.getvalue()


def rgba_png(side: int = 6300) -> bytes:
    from PIL import Image

    image = Image.new("RGBA", (side, side), (10, 200, 30, 128))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=9)
    return out.getvalue()


def progressive_jpeg(side: int = 6300) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (side, side), (120, 40, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=50, progressive=True)
    return out.getvalue()


def wide_webp() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (16383, 2440), (90, 90, 200))
    out = io.BytesIO()
    image.save(out, "WEBP", quality=10)
    return out.getvalue()


SCENARIOS: dict[str, tuple[Callable[[], bytes], str, int]] = {
    "palette": (palette_png, "p.png", 1),
    "rgba": (rgba_png, "r.png", 1),
    "palette4": (palette_png, "p.png", 4),
    "rgba4": (rgba_png, "r.png", 4),
    "jpeg4": (progressive_jpeg, "j.jpg", 4),
    "webp4": (wide_webp, "w.webp", 4),
}


# -- the service ----------------------------------------------------------------------------------


def multipart(content: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_upload(port: int, content: bytes, filename: str) -> int:
    import http.client

    body, ctype = multipart(content, filename)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/api/v1/media/upload", body=body, headers={"Content-Type": ctype})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class Service:
    def __init__(self, source: Path) -> None:
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="media-mem-"))
        env = {
            **os.environ,
            "PORT": str(self.port),
            "DATA_DIR": str(self.data),
            "MEDIA_CLEANUP_INTERVAL_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(source),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "media"], cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import http.client

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("media did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.data, ignore_errors=True)


def run(source: Path, name: str) -> dict[str, object]:
    make, filename, copies = SCENARIOS[name]
    content = make()
    service = Service(source)
    try:
        from PIL import Image

        warm = io.BytesIO()
        Image.new("RGB", (800, 600), (1, 2, 3)).save(warm, "PNG")
        post_upload(service.port, warm.getvalue(), "warm.png")
        before = status_kb(service.proc.pid, "VmHWM")
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(post_upload(service.port, content, filename)))
            for _ in range(copies)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        after = status_kb(service.proc.pid, "VmHWM")
    finally:
        service.stop()
    return {
        "scenario": name,
        "file_kb": round(len(content) / 1024, 1),
        "uploads": copies,
        "statuses": sorted(statuses),
        "peak_growth_mb": round((after - before) / MB, 1),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose media package runs")
    parser.add_argument("--scenarios", default="palette,rgba,palette4,rgba4,jpeg4,webp4")
    args = parser.parse_args()
    for name in args.scenarios.split(","):
        result = run(args.source.resolve(), name.strip())
        print(
            f"{result['scenario']:9} {result['uploads']} × {result['file_kb']:>7} KB  "
            f"statuses {result['statuses']}  peak RSS growth {result['peak_growth_mb']:>6} MB  "
            f"({result['seconds']} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()

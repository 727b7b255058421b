"""Image checks and thumbnails with Pillow (contract R4), within a memory budget.

Three steps, the first and last synchronous in a worker thread:

1. :func:`probe` opens the file and reads its header only: the format must be the detected
   kind and width × height at most ``MEDIA_MAX_PIXELS``, so a small file declaring a huge
   canvas (a decompression bomb) costs nothing. JPEGs are set to decode at the smallest DCT
   scale that still covers the thumbnail box. The probe estimates what decoding will hold
   (:func:`decode_bytes`).
2. :class:`DecodeBudget` admits the decode when the estimates of every decode running at
   once stay within ``MEDIA_DECODE_BUDGET_BYTES``; otherwise it waits its turn (first come,
   first served). A pixel limit alone would let four workers each hold the largest image.
3. :func:`decode_and_thumbnail` decodes once (the whole stream is read, so truncation is
   caught) and makes the thumbnail without any full-size copy: the decoded image is reduced
   tile by tile (``Image.reduce``, each tile converted — palette to RGB(A), alpha
   premultiplied — on its own), then the small result is turned upright and resampled to the
   box. ``ImageOps.exif_transpose``, ``convert`` and ``thumbnail`` on the full image each
   copied it (a 25-megapixel palette PNG of 25 KB grew to 100 MB as RGBA).
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import math
import os
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image

from media.sniff import Kind
from shared.lean import M_MMAP_THRESHOLD, set_malloc_option
from shared.responses import BadRequest

THUMB_BOX = (300, 300)
REDUCING_GAP = 2.0
"""Reduce by whole factors while the result stays at least this many times the box, then
resample with Lanczos (Pillow's ``thumbnail(reducing_gap=2.0)`` rule: fast, no visible loss)."""
TILE_BYTES = 4 * 1024 * 1024
"""About how much of the decoded image one tile converts at a time."""
_QUALITY = 85
# The only info keys copied to a thumbnail: colour, not metadata (no EXIF, XMP, text chunks).
_KEPT_INFO = ("icc_profile",)
_RESIZABLE_MODES = {"L", "LA", "RGB", "RGBA", "CMYK"}
_PREMULTIPLIED = {"LA": "La", "RGBA": "RGBa"}
_PLAIN = {v: k for k, v in _PREMULTIPLIED.items()}
_SAVE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

log = logging.getLogger("media.images")

# The explicit MEDIA_MAX_PIXELS check below refuses these images first; Pillow's warning
# would only add noise (its DecompressionBombError above twice its limit stays in force).
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


T = TypeVar("T")

# Image threads run at a lower CPU priority (Linux "nice" is per thread): with few cores,
# decoding competes with the event loop thread, which must win to keep requests answered.
IMAGE_THREAD_NICE = 10


class DecodeBudget:
    """A weighted semaphore over bytes of decoded pixels, shared by every image worker.

    ``acquire(n)`` waits until ``n`` more bytes fit beside what running decodes hold; a
    request larger than the whole budget is admitted alone (it is weighed as the capacity).
    Waiters are served in arrival order, so a large image is not starved by small ones.
    ``in_use`` and ``peak`` are the accounting tests and benchmarks read.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the decode budget must be at least one byte")
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def weight(self, estimate: int) -> int:
        """What a decode estimated at ``estimate`` bytes is charged (1 … capacity)."""
        return min(max(estimate, 1), self.capacity)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, estimate: int) -> int:
        """Wait for room for ``estimate`` bytes; return the weight to :meth:`release`."""
        weight = self.weight(estimate)
        if not self._waiters and self.in_use + weight <= self.capacity:
            self._take(weight)
            return weight
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (weight, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(weight)  # granted while being cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._wake()
            raise
        return weight

    def release(self, weight: int) -> None:
        self.in_use -= weight
        self._wake()

    def _take(self, weight: int) -> None:
        self.in_use += weight
        self.peak = max(self.peak, self.in_use)

    def _wake(self) -> None:
        while self._waiters:
            weight, future = self._waiters[0]
            if future.done():  # cancelled meanwhile; its task removes it
                self._waiters.popleft()
                continue
            if self.in_use + weight > self.capacity:
                return
            self._waiters.popleft()
            self._take(weight)
            future.set_result(None)

    @asynccontextmanager
    async def hold(self, estimate: int) -> AsyncIterator[int]:
        weight = await self.acquire(estimate)
        try:
            yield weight
        finally:
            self.release(weight)


MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_buffers_to_the_os() -> bool:
    """Make glibc serve every allocation of at least 1 MiB with its own ``mmap``, so a freed
    decode buffer goes back to the OS at once.

    By default glibc raises that threshold to the size of the last freed block (up to
    32 MiB), after which Pillow's 16 MiB image blocks come from per-thread heaps that keep
    the memory: each of four image threads then holds on to the largest image it ever
    decoded, and the process's peak grows by that per thread whatever the budget admits.
    Setting the threshold explicitly turns that adjustment off. False when not glibc.
    """
    if set_malloc_option(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        return True
    log.info("mallopt unavailable; freed image buffers may stay in thread heaps")
    return False


class ImageWorkers:
    """A pool of ``workers`` threads for Pillow work, and the decode budget they share."""

    def __init__(self, workers: int, *, budget_bytes: int) -> None:
        return_large_buffers_to_the_os()
        self.budget = DecodeBudget(budget_bytes)
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="media-image", initializer=_lower_priority
        )

    async def run(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.wrap_future(self._pool.submit(func, *args))

    async def run_within_budget(
        self, estimate: int, func: Callable[..., T], *args: object, not_started: Callable[[], None] | None = None
    ) -> T:
        """Run ``func`` once ``estimate`` bytes fit in the budget; they are given back when the
        thread finishes (not when the caller stops waiting: a cancelled request's decode
        still holds its memory until it ends). ``not_started`` is called when ``func`` never
        runs (the caller was cancelled while waiting, or the pool shut down)."""
        loop = asyncio.get_running_loop()
        try:
            weight = await self.budget.acquire(estimate)
        except BaseException:
            if not_started is not None:
                not_started()
            raise
        try:
            future = self._pool.submit(func, *args)
        except BaseException:
            self.budget.release(weight)
            if not_started is not None:
                not_started()
            raise

        def finished(done: Future[T]) -> None:
            if done.cancelled() and not_started is not None:
                not_started()
            loop.call_soon_threadsafe(self.budget.release, weight)

        future.add_done_callback(finished)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _lower_priority() -> None:
    if sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGE_THREAD_NICE)
        except OSError:
            log.warning("could not lower the priority of an image thread", exc_info=True)


class ImageRejected(BadRequest):
    """400: the upload claims to be an image but is not one we accept."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    ext: str


def corrupted() -> ImageRejected:
    return ImageRejected("Invalid or corrupted image file")


def too_many_pixels(limit: int) -> ImageRejected:
    return ImageRejected(f"Image dimensions exceed the limit of {limit} pixels")


@dataclass(slots=True)
class Probe:
    """An image whose header passed the checks, and what decoding it will hold. ``image`` is
    None for a WEBP: Pillow's WEBP reader allocates the whole canvas when it opens the file,
    so that is left to the budgeted decode."""

    path: Path
    kind: Kind
    image: Image.Image | None
    decode_bytes: int

    def close(self) -> None:
        if self.image is not None:
            self.image.close()


def bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel of ``mode`` (RGB is kept in four bytes, like RGBA)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decode_bytes(image: Image.Image, full_size: tuple[int, int] | None = None) -> int:
    """Estimated memory decoding ``image`` holds at its peak: its pixels at the (draft) size,
    plus a progressive JPEG's coefficients at the full size ``full_size``."""
    width, height = image.size
    pixels = width * height * bytes_per_pixel(image.mode)
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        full_w, full_h = full_size or image.size
        return pixels + full_w * full_h * 2 * len(image.getbands())
    return pixels


WEBP_COPIES = 3
"""A WEBP decode holds three canvases of 4 bytes a pixel at once: libwebp's, the frame bytes
Pillow copies out of it, and the image they are read into."""


def webp_size(head: bytes) -> tuple[int, int] | None:
    """The canvas size in a WEBP's first 30 bytes (VP8, VP8L or VP8X), or None."""
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _open(path: Path, kind: Kind, max_pixels: int) -> Image.Image:
    """``path`` opened by Pillow: 400 unless it is an image of ``kind`` within ``max_pixels``."""
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:
        raise too_many_pixels(max_pixels) from None
    except Exception:
        raise corrupted() from None
    if image.format not in kind.pillow_formats:
        image.close()
        raise corrupted()
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise too_many_pixels(max_pixels)
    return image


def probe(path: Path, kind: Kind, max_pixels: int) -> Probe:
    """Check the header of ``path`` (no pixel decoded) and estimate its decode.

    Raises :class:`ImageRejected` when the file is not an image of ``kind`` or has more than
    ``max_pixels`` pixels.
    """
    if "WEBP" in kind.pillow_formats:
        with path.open("rb") as handle:
            size = webp_size(handle.read(30))
        if size is None:
            raise corrupted()
        if size[0] * size[1] > max_pixels:
            raise too_many_pixels(max_pixels)
        return Probe(path, kind, None, size[0] * size[1] * 4 * WEBP_COPIES)
    image = _open(path, kind, max_pixels)
    full_size = image.size
    if image.format in ("JPEG", "MPO"):
        # Decode at a reduced DCT scale that still covers the thumbnail box: the whole
        # stream is still read (truncation is caught), at a fraction of the memory.
        image.draft(image.mode, THUMB_BOX)
    return Probe(path, kind, image, decode_bytes(image, full_size))


def decode_and_thumbnail(found: Probe, max_pixels: int) -> Thumbnail | None:
    """Decode the probed image and return its thumbnail (None if only the thumbnail failed).

    Raises :class:`ImageRejected` when the pixels cannot be decoded. Closes the image.
    """
    image = found.image if found.image is not None else _open(found.path, found.kind, max_pixels)
    with image:
        try:
            image.load()
        except Image.DecompressionBombError:
            raise too_many_pixels(max_pixels) from None
        except Exception:
            raise corrupted() from None
        try:
            return _thumbnail(image)
        except Exception:
            log.warning("thumbnail failed; storing without one", exc_info=True)
            return None


def check_and_thumbnail(path: Path, kind: Kind, *, max_pixels: int) -> Thumbnail | None:
    """:func:`probe` then :func:`decode_and_thumbnail` in one call (no budget: for scripts)."""
    return decode_and_thumbnail(probe(path, kind, max_pixels), max_pixels)


def fit(size: tuple[int, int], box: tuple[int, int] = THUMB_BOX) -> tuple[int, int]:
    """``size`` fitted inside ``box`` keeping its aspect ratio, never enlarged (Pillow's
    ``thumbnail`` arithmetic, so the sizes are the ones it would give)."""
    width, height = size
    x, y = min(box[0], width), min(box[1], height)
    if (x, y) == (width, height):
        return size
    aspect = width / height

    def round_aspect(number: float, key: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


def _working_mode(image: Image.Image) -> str:
    """The mode thumbnails are made in: palette, bilevel and 16-bit images go through RGB(A)
    (smooth resizing), and a colour key ("transparency") becomes a real alpha channel; alpha
    is premultiplied so transparent pixels do not bleed their colour into the edges."""
    mode = image.mode
    if mode not in _RESIZABLE_MODES or "transparency" in image.info:
        has_alpha = mode in ("PA", "RGBa", "La") or "transparency" in image.info
        mode = "RGBA" if has_alpha else "RGB"
    return _PREMULTIPLIED.get(mode, mode)


def reduce_tiled(image: Image.Image, factor: tuple[int, int], mode: str) -> Image.Image:
    """``image`` converted to ``mode`` and reduced ``factor`` times, one tile at a time, so no
    full-size converted copy ever exists (only tiles of about :data:`TILE_BYTES`)."""
    fx, fy = factor
    width, height = image.size
    out = Image.new(mode, (math.ceil(width / fx), math.ceil(height / fy)))
    tile_w = fx * max(1, 2048 // fx)
    tile_h = fy * max(1, TILE_BYTES // (min(tile_w, width) * 4 * fy))
    for top in range(0, height, tile_h):
        bottom = min(height, top + tile_h)
        for left in range(0, width, tile_w):
            right = min(width, left + tile_w)
            tile = _convert(image.crop((left, top, right, bottom)), mode)
            if (fx, fy) != (1, 1):
                tile = tile.reduce((fx, fy))  # premultiplied modes go straight to the core
            out.paste(tile, (left // fx, top // fy))
    return out


def _convert(tile: Image.Image, mode: str) -> Image.Image:
    """``tile`` in ``mode``; premultiplied modes are reached through their plain form
    (Pillow converts only ``RGBA``/``LA`` to ``RGBa``/``La``)."""
    if tile.mode == mode:
        return tile
    plain = _PLAIN.get(mode, mode)
    if tile.mode != plain:
        tile = tile.convert(plain)
    return tile if plain == mode else tile.convert(mode)


def _thumbnail(image: Image.Image) -> Thumbnail:
    source_format = image.format or "PNG"
    target = fit(image.size)
    mode = _working_mode(image)
    factor = (
        max(1, int(image.size[0] / target[0] / REDUCING_GAP)),
        max(1, int(image.size[1] / target[1] / REDUCING_GAP)),
    )
    frame = reduce_tiled(image, factor, mode)
    orientation = image.getexif().get(_ORIENTATION)
    if orientation in _TRANSPOSE:
        frame = frame.transpose(_TRANSPOSE[orientation])
        target = (target[1], target[0]) if orientation >= 5 else target
    if frame.size != target:
        frame = frame.resize(target, Image.Resampling.LANCZOS)
    if frame.mode in _PLAIN:
        frame = frame.convert(_PLAIN[frame.mode])
    frame.info = {k: v for k, v in image.info.items() if k in _KEPT_INFO}
    fmt = "JPEG" if source_format == "MPO" else source_format
    try:
        return Thumbnail(_encode(frame, fmt), _SAVE_FORMATS[fmt])
    except (OSError, KeyError, ValueError):
        has_alpha = frame.mode in ("RGBA", "LA")
        fallback = "PNG" if has_alpha else "JPEG"
        return Thumbnail(_encode(frame, fallback), _SAVE_FORMATS[fallback])


def _encode(frame: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if frame.mode not in ("RGB", "L", "CMYK"):
            frame = frame.convert("RGB")
        frame.save(out, "JPEG", quality=_QUALITY, optimize=True)
    elif fmt == "WEBP":
        frame.save(out, "WEBP", quality=_QUALITY)
    elif fmt == "GIF":
        frame.save(out, "GIF")
    else:
        frame.save(out, fmt, optimize=fmt == "PNG")
    return out.getvalue()

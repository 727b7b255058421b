"""Image checks and thumbnails with Pillow (contract R4). Synchronous: run in a worker thread.

The pixel count is checked from the header, before any pixel is decoded, so a small file
declaring a huge canvas (a decompression bomb) costs nothing. Pillow's own bomb guard stays
in force as a second line.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image, ImageOps

from media.sniff import Kind
from shared.responses import BadRequest

THUMB_BOX = (300, 300)
_QUALITY = 85
# The only info keys copied to a thumbnail: colour, not metadata (no EXIF, XMP, text chunks).
_KEPT_INFO = ("icc_profile",)
_RESIZABLE_MODES = {"L", "LA", "RGB", "RGBA", "CMYK"}
_SAVE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}

log = logging.getLogger("media.images")

# The explicit MEDIA_MAX_PIXELS check below refuses these images first; Pillow's warning
# would only add noise (its DecompressionBombError above twice its limit stays in force).
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


T = TypeVar("T")

# Image threads run at a lower CPU priority (Linux "nice" is per thread): with few cores,
# decoding competes with the event loop thread, which must win to keep requests answered.
IMAGE_THREAD_NICE = 10


class ImageWorkers:
    """A pool of ``workers`` threads for Pillow work (at most that many images at once)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="media-image", initializer=_lower_priority
        )

    async def run(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

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


def check_and_thumbnail(path: Path, kind: Kind, *, max_pixels: int) -> Thumbnail | None:
    """Decode the image at ``path`` and return its thumbnail (None if only that failed).

    Raises :class:`ImageRejected` when the file is not a decodable image of ``kind`` or has
    more than ``max_pixels`` pixels.
    """
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:
        raise too_many_pixels(max_pixels) from None
    except Exception:
        raise corrupted() from None
    with image:
        if image.format not in kind.pillow_formats:
            raise corrupted()
        width, height = image.size
        if width * height > max_pixels:
            raise too_many_pixels(max_pixels)
        if image.format in ("JPEG", "MPO"):
            # Decode at a reduced DCT scale that still covers the thumbnail box: the whole
            # stream is still read (truncation is caught), at a fraction of the cost.
            image.draft(image.mode, THUMB_BOX)
        try:
            image.load()
        except Image.DecompressionBombError:
            raise too_many_pixels(max_pixels) from None
        except Exception:
            raise corrupted() from None
        try:
            return _thumbnail(image)
        except Exception:
            log.warning("thumbnail failed for %s; storing without one", path.name, exc_info=True)
            return None


def _thumbnail(image: Image.Image) -> Thumbnail:
    source_format = image.format or "PNG"
    frame = ImageOps.exif_transpose(image)  # a copy, upright, first frame of animations
    if frame.mode not in _RESIZABLE_MODES or "transparency" in frame.info:
        # Palette, bilevel and 16-bit images go through RGB(A): smooth resizing, and a colour
        # key ("transparency") becomes a real alpha channel.
        has_alpha = frame.mode in ("PA", "RGBa", "La") or "transparency" in frame.info
        frame = frame.convert("RGBA" if has_alpha else "RGB")
    frame.thumbnail(THUMB_BOX, Image.Resampling.LANCZOS)
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

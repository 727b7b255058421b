"""Small files that decode large (issue 11 item 3): the decode memory of all image workers is
bounded by one budget, and thumbnails are made without full-size copies.

These assert on the accounting (what the budget admitted, what was converted), never on
wall-clock time or RSS; ``bench/media_memory.py`` measures the real process.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time

import httpx
import pytest
from PIL import Image

from media import images
from media.images import DecodeBudget, ImageWorkers
from tests.media.media_kit import API, upload

MB = 1024 * 1024


def palette_png(side: int, *, transparent: bool = True) -> bytes:
    image = Image.new("P", (side, side), 3)
    image.putpalette([(i * 7) % 256 for i in range(768)])
    image.paste(9, (0, 0, side // 2, side))
    out = io.BytesIO()
    image.save(out, "PNG", **({"transparency": 3} if transparent else {}))
    return out.getvalue()


# -- the budget's accounting ----------------------------------------------------------------------


async def test_budget_admits_at_most_its_capacity_at_once() -> None:
    budget = DecodeBudget(100)
    first = await budget.acquire(60)
    second = asyncio.create_task(budget.acquire(60))
    small = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    assert (budget.in_use, budget.waiting) == (60, 2)
    assert not second.done() and not small.done()  # first come, first served: small waits too
    budget.release(first)
    assert await second == 60
    assert await small == 10
    assert budget.in_use == 70 and budget.peak == 70 <= budget.capacity


async def test_a_decode_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    small = await budget.acquire(5)
    huge = asyncio.create_task(budget.acquire(10_000))
    await asyncio.sleep(0)
    assert not huge.done()
    budget.release(small)
    assert await huge == 100  # weighed as the whole budget
    assert budget.peak == 100


async def test_cancelled_waiter_gives_its_turn_away() -> None:
    budget = DecodeBudget(100)
    held = await budget.acquire(90)
    waiting = asyncio.create_task(budget.acquire(50))
    behind = asyncio.create_task(budget.acquire(5))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await behind == 5
    budget.release(held)
    budget.release(5)
    assert budget.in_use == 0 and budget.waiting == 0


async def test_workers_never_decode_more_than_the_budget_at_once() -> None:
    """Eight decodes of 40 MB each with a 100 MB budget and four threads: never more than two
    run together, and the budget is given back only when each thread has finished."""
    workers = ImageWorkers(4, budget_bytes=100 * MB)
    lock = threading.Lock()
    running = {"now": 0, "most": 0}

    def decode() -> None:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(0.02)
        with lock:
            running["now"] -= 1

    try:
        await asyncio.gather(*(workers.run_within_budget(40 * MB, decode) for _ in range(8)))
    finally:
        workers.shutdown()
    assert running["most"] == 2
    assert workers.budget.peak == 80 * MB <= workers.budget.capacity
    assert workers.budget.in_use == 0


async def test_cancelled_upload_keeps_its_share_until_the_thread_ends() -> None:
    workers = ImageWorkers(2, budget_bytes=100)
    release = threading.Event()
    try:
        task = asyncio.create_task(workers.run_within_budget(80, release.wait, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert workers.budget.in_use == 80  # the decode is still running in its thread
        release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if workers.budget.in_use == 0:
                break
        assert workers.budget.in_use == 0
    finally:
        release.set()
        workers.shutdown()


# -- estimates and the service --------------------------------------------------------------------


def test_estimate_follows_the_stored_pixel_size(tmp_path) -> None:
    from media import sniff

    path = tmp_path / "p.png"
    path.write_bytes(palette_png(2000))
    found = images.probe(path, sniff.PNG, 40_000_000)
    try:
        assert found.decode_bytes == 2000 * 2000  # palette: one byte a pixel, not four
    finally:
        found.close()
    rgba = tmp_path / "r.png"
    Image.new("RGBA", (1000, 500)).save(rgba)
    found = images.probe(rgba, sniff.PNG, 40_000_000)
    assert found.decode_bytes == 1000 * 500 * 4
    found.close()


async def test_concurrent_uploads_wait_for_the_budget(media_client, monkeypatch) -> None:
    """Four 1,000 × 1,000 palette uploads (1 MB each decoded) with a 2.5 MB budget: the
    service decodes at most two at once, and every upload still succeeds."""
    lock = threading.Lock()
    running = {"now": 0, "most": 0}
    real = images.decode_and_thumbnail

    def counted(found: images.Probe, max_pixels: int) -> images.Thumbnail | None:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        try:
            time.sleep(0.05)
            return real(found, max_pixels)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(images, "decode_and_thumbnail", counted)
    async with media_client(MEDIA_DECODE_BUDGET_BYTES=int(2.5 * MB)) as client:
        content = palette_png(1000)
        answers = await asyncio.gather(*(upload(client, content, f"{i}.png") for i in range(4)))
        budget = client.app.state.media.image_workers.budget
        assert [a.status_code for a in answers] == [201] * 4
        assert running["most"] == 2
        assert budget.peak == 2 * 1000 * 1000 and budget.in_use == 0


# -- thumbnails without full-size copies ----------------------------------------------------------


def test_palette_thumbnail_converts_tiles_not_the_image(monkeypatch) -> None:
    """The old path converted the whole 3,000 × 3,000 palette image to RGBA (36 MB) and then
    copied it again premultiplied; now no conversion touches more than one tile."""
    converted: list[int] = []
    real_convert = Image.Image.convert

    def convert(self: Image.Image, *args, **kwargs) -> Image.Image:
        converted.append(self.size[0] * self.size[1])
        return real_convert(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    image = Image.open(io.BytesIO(palette_png(3000)))
    image.load()
    thumb = Image.open(io.BytesIO(images._thumbnail(image).data))
    assert thumb.size == (300, 300) and thumb.mode == "RGBA"
    assert thumb.getpixel((10, 150))[3] == 255 and thumb.getpixel((290, 150))[3] == 0  # colour key → alpha
    assert max(converted) * 4 <= images.TILE_BYTES * 2
    assert max(converted) < 3000 * 3000 / 8


def test_rgba_thumbnail_never_premultiplies_the_whole_image(monkeypatch) -> None:
    converted: list[int] = []
    real_convert = Image.Image.convert

    def convert(self: Image.Image, *args, **kwargs) -> Image.Image:
        converted.append(self.size[0] * self.size[1])
        return real_convert(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    source = Image.new("RGBA", (4000, 2000), (0, 0, 255, 0))
    source.paste((255, 0, 0, 255), (0, 0, 2000, 2000))
    thumb = Image.open(io.BytesIO(images._thumbnail(source).data))
    assert thumb.size == (300, 150)
    assert thumb.getpixel((20, 75)) == (255, 0, 0, 255)
    assert thumb.getpixel((280, 75))[3] == 0
    assert max(converted) * 4 <= images.TILE_BYTES  # one tile at a time
    assert max(converted) <= 4000 * 2000 / 4


@pytest.mark.parametrize(
    ("mode", "size"), [("1", (900, 700)), ("L", (1200, 300)), ("I;16", (800, 800)), ("CMYK", (640, 640))]
)
def test_other_modes_still_get_thumbnails(mode: str, size: tuple[int, int]) -> None:
    image = Image.new(mode, size)
    thumb = images._thumbnail(image)
    assert max(Image.open(io.BytesIO(thumb.data)).size) == 300


async def test_large_palette_png_upload_gets_an_alpha_thumbnail(client: httpx.AsyncClient) -> None:
    data = (await upload(client, palette_png(2500), "big.png")).json()["data"]
    assert data["has_thumbnail"] is True
    thumb = Image.open(io.BytesIO((await client.get(f"{API}/serve-thumb/{data['id']}")).content))
    assert thumb.size == (300, 300) and thumb.mode == "RGBA"


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_is_sized_from_its_header_and_opened_only_within_the_budget(tmp_path, lossless: bool) -> None:
    """Pillow's WEBP reader allocates the whole canvas when it opens a file, so the probe
    reads the size from the header and leaves opening to the budgeted decode."""
    from media import sniff

    path = tmp_path / "w.webp"
    Image.new("RGBA" if lossless else "RGB", (1234, 567), (1, 2, 3)).save(path, "WEBP", lossless=lossless)
    found = images.probe(path, sniff.WEBP, 40_000_000)
    assert found.image is None
    assert found.decode_bytes == 1234 * 567 * 4 * images.WEBP_COPIES
    thumb = images.decode_and_thumbnail(found, 40_000_000)
    assert thumb is not None and Image.open(io.BytesIO(thumb.data)).size == (300, 138)
    with pytest.raises(images.ImageRejected, match="exceed"):
        images.probe(path, sniff.WEBP, 1000)

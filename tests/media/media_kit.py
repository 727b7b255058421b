"""Helpers of the media tests: files made in the test (Pillow images, a PDF, a DOCX, text,
hostile inputs), a hand-built multipart body, and upload shortcuts."""

from __future__ import annotations

import io
import sqlite3
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

SERVICE_KEY = "media-test-key"
UPLOAD = "/api/v1/media/upload"
API = "/api/v1/media"
KEY = {"X-Service-Key": SERVICE_KEY}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# -- files made in the test ------------------------------------------------------------------


def jpeg_bytes(size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (200, 40, 40), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", **save)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, (0, 128, 255, 0) if mode == "RGBA" else (0, 128, 255))
    if mode == "RGBA":
        for x in range(size[0] // 2):
            for y in range(size[1]):
                image.putpixel((x, y), (255, 0, 0, 255))
    image.save(out, "PNG")
    return out.getvalue()


def gif_bytes(frames: int = 3, size: tuple[int, int] = (120, 90)) -> bytes:
    out = io.BytesIO()
    images = [Image.new("P", size, i * 40) for i in range(frames)]
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def webp_bytes(size: tuple[int, int] = (500, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 160, 90)).save(out, "WEBP", quality=80)
    return out.getvalue()


def exif_jpeg_bytes() -> bytes:
    """400×200 as stored, left half red and right half blue, EXIF orientation 6 (shown rotated
    90° clockwise: 200×400, red on top) and GPS tags."""
    image = Image.new("RGB", (400, 200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def pdf_bytes() -> bytes:
    """A small but well-formed one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx_bytes(*, with_document: bool = True, with_macros: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        if with_document:
            archive.writestr(
                "word/document.xml",
                '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
                'main"><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>',
            )
        if with_macros:
            archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\0" * 60)
    return out.getvalue()


def pe_bytes() -> bytes:
    """The start of a Windows executable: MZ header, DOS stub, PE signature."""
    header = bytearray(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00")
    header += b"\0" * (0x3C - len(header)) + struct.pack("<I", 0x80)
    header += b"\0" * (0x80 - len(header)) + b"PE\0\0" + b"\x4c\x01" + b"\0" * 2000
    return bytes(header)


def elf_bytes() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + b"\x02\x00\x3e\x00" + b"\0" * 3000


def bomb_png_bytes(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny PNG whose header declares a huge canvas (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "testboundary7MA4YWxk") -> tuple[bytes, str]:
    """A multipart body with ``(name, filename or None, content)`` parts in the given order.

    The filename goes on the wire as given (only ``"`` and ``\\`` escaped as in a quoted-string),
    so tests control the exact bytes a hostile client sends."""
    out = bytearray()
    for name, filename, content in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            disposition += f'; filename="{quoted}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    filename: str = "file.bin",
    *,
    upload_type: str | None = None,
    headers: dict[str, str] | None = None,
    part_type: str = "application/octet-stream",
) -> httpx.Response:
    data = {"type": upload_type} if upload_type is not None else None
    return await client.post(UPLOAD, files={"file": (filename, content, part_type)}, data=data, headers=headers)


async def uploaded_id(client: httpx.AsyncClient, content: bytes, filename: str = "f.bin", **kw: Any) -> str:
    response = await upload(client, content, filename, **kw)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (``.tmp`` included)."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def stored_path(root: Path, media_id: str, ext: str, *, thumb: bool = False) -> Path:
    """Where the contract puts a stored file: ``root/ab/cd/<id with _>[_thumb].<ext>``."""
    base = media_id.replace("-", "_") + ("_thumb" if thumb else "")
    return root / media_id[0:2] / media_id[2:4] / f"{base}.{ext}"


def unlink(path: Path) -> None:
    path.unlink()


def set_columns(db_path: Path, media_id: str, **values: Any) -> None:
    """Change a stored row directly (to age it for the cleanup, for instance)."""
    assignments = ", ".join(f"{name} = ?" for name in values)
    with sqlite3.connect(db_path) as db:
        db.execute(f"UPDATE media_files SET {assignments} WHERE id = ?", [*values.values(), media_id])


def column_by_id(db_path: Path, column: str) -> dict[str, Any]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute(f"SELECT id, {column} FROM media_files").fetchall())


def doc_bytes(stream: str = "WordDocument") -> bytes:
    """A minimal OLE2 compound file (version 3, 512-byte sectors) holding one 4 KiB stream.

    Sector 0 is the FAT, sector 1 the directory, sectors 2-9 the stream (4096 bytes reach
    the mini-stream cutoff, so no mini FAT is needed)."""
    free, end, fat_sect, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    header = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16)
    header += struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6) + b"\0" * 6
    header += struct.pack("<IIIIIIIII", 0, 1, 1, 0, 0x1000, end, 0, end, 0)
    header += struct.pack("<109I", 0, *([free] * 108))
    assert len(header) == 512

    fat = [fat_sect, end, *range(3, 10), end]
    fat_sector = struct.pack("<128I", *(fat + [free] * (128 - len(fat))))

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", no_stream, no_stream, child)
            + b"\0" * 16
            + struct.pack("<I", 0)
            + b"\0" * 16
            + struct.pack("<IQ", start, size)
        )

    directory = (
        entry("Root Entry", 5, 1, end, 0) + entry(stream, 2, no_stream, 2, 4096) + entry("", 0, no_stream, 0, 0) * 2
    )
    assert len(directory) == 512
    data = (b"Hello from a Word 97 stream. " * 200)[:4096]
    return bytes(header) + fat_sector + directory + data

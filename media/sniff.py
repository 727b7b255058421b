"""File types decided from content (contract R2); the client's name and part type are ignored.

:func:`prefix_may_be_allowed` looks at the first bytes only, so an upload that can never be
accepted (an executable, HTML, SVG) is refused before the rest is read; :func:`detect`
gives the final verdict on the complete file. Both are synchronous: call ``detect`` from a
worker thread (it reads the file).
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import olefile


@dataclass(frozen=True, slots=True)
class Kind:
    """One accepted kind: canonical extension, MIME type and, for images, Pillow's format names."""

    ext: str
    content_type: str
    pillow_formats: frozenset[str] = frozenset()

    @property
    def is_image(self) -> bool:
        return bool(self.pillow_formats)


JPEG = Kind("jpg", "image/jpeg", frozenset({"JPEG", "MPO"}))  # MPO: camera JPEGs with extra frames
PNG = Kind("png", "image/png", frozenset({"PNG"}))
GIF = Kind("gif", "image/gif", frozenset({"GIF"}))
WEBP = Kind("webp", "image/webp", frozenset({"WEBP"}))
PDF = Kind("pdf", "application/pdf")
DOC = Kind("doc", "application/msword")
DOCX = Kind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
TXT = Kind("txt", "text/plain")

ALLOWED_LABEL = "jpg, jpeg, png, gif, webp, pdf, doc, docx, txt"

# Enough for every magic number below and for a first look at text.
PREFIX_BYTES = 512

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_BOM = codecs.BOM_UTF8
# Control characters other than TAB LF FF CR; DEL counts as one too.
_FORBIDDEN_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TEXT_CHUNK = 1 << 20


def _magic_kind(head: bytes) -> Kind | None:
    """The kind the magic number names; ``None`` for no binary magic (text candidate or junk)."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def _text_start_ok(text: str) -> bool:
    """Markup (``<``: HTML, SVG, XML) and scripts (``#!``) are not plain text for us."""
    body = text.removeprefix("\ufeff").lstrip()
    return not (body.startswith("<") or body.startswith("#!"))


def prefix_may_be_allowed(head: bytes, *, complete: bool) -> bool:
    """False when ``head`` (the first bytes, or the whole file when ``complete``) can never be
    an accepted kind. True does not mean accepted: :func:`detect` decides on the whole file."""
    if _magic_kind(head) is not None or head.startswith((_OLE_MAGIC, _ZIP_MAGIC)):
        return True
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    if _FORBIDDEN_CONTROL.search(text):
        return False
    # Without the whole file, leading whitespace may hide what follows: decide only on
    # what is visible.
    return _text_start_ok(text) or (not complete and not text.removeprefix("\ufeff").strip())


def detect(path: Path, head: bytes) -> Kind | None:
    """The kind of the complete file at ``path`` (``head`` = its first bytes), or None (415)."""
    kind = _magic_kind(head)
    if kind is not None:
        return kind
    if head.startswith(_OLE_MAGIC):
        return DOC if _is_word_ole(path) else None
    if head.startswith(_ZIP_MAGIC):
        return DOCX if _is_docx(path) else None
    return TXT if _is_plain_text(path) else None


def _is_word_ole(path: Path) -> bool:
    """An OLE2 container with a ``WordDocument`` stream and no VBA macro storage."""
    try:
        with olefile.OleFileIO(str(path)) as ole:
            return ole.exists("WordDocument") and not (ole.exists("Macros") or ole.exists("_VBA_PROJECT_CUR"))
    except Exception:
        # olefile raises assorted errors on hostile containers; any of them means "not a DOC".
        return False


def _is_docx(path: Path) -> bool:
    """A ZIP whose central directory lists the Word parts and no VBA project (``.docm``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return "[Content_Types].xml" in names and "word/document.xml" in names and "word/vbaProject.bin" not in names


def _is_plain_text(path: Path) -> bool:
    """Whole file valid UTF-8 (BOM allowed), no NUL or control bytes but TAB LF CR FF, and it
    does not start with ``<`` or ``#!`` after the BOM and whitespace."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    start_decided = False
    pending = ""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_TEXT_CHUNK)
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError:
                return False
            if _FORBIDDEN_CONTROL.search(text):
                return False
            if first and text:
                text = text.removeprefix("\ufeff")
                first = False
            if not start_decided:
                # "#!" may straddle two chunks: decide once two visible characters are known.
                pending = (pending + text).lstrip()[:2]
                if len(pending) == 2 or final:
                    if not _text_start_ok(pending):
                        return False
                    start_decided = True
            if final:
                return True

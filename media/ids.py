"""Media ids: UUID4 strings, matched case-insensitively and looked up in lower case."""

from __future__ import annotations

import re
import uuid

_MEDIA_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def is_media_id(value: object) -> bool:
    """True for a string of the hyphenated UUID shape (any case)."""
    return isinstance(value, str) and _MEDIA_ID.fullmatch(value) is not None


def new_media_id() -> str:
    """A fresh lower-case UUID4."""
    return str(uuid.uuid4())

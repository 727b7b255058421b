"""Media ids: UUID4 strings, matched case-insensitively (``shared.fields.is_media_id``) and
looked up in lower case."""

from __future__ import annotations

import uuid

from shared.fields import is_media_id

__all__ = ["is_media_id", "new_media_id"]


def new_media_id() -> str:
    """A fresh lower-case UUID4."""
    return str(uuid.uuid4())

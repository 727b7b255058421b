"""Response shapes of the media service (contract section 2 and 4.1)."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel

from media.repository import MediaRow


class UploadAnswer(BaseModel):
    """The ``data`` of a 201 upload answer."""

    id: str
    original_filename: str
    file_size: int
    content_type: str
    has_thumbnail: bool
    upload_type: str
    file_extension: str
    access_url: str
    thumbnail_url: str | None

    @classmethod
    def from_row(cls, row: MediaRow) -> Self:
        return cls.model_validate(_with_thumb_flag(row))


class MediaFile(BaseModel):
    """*MediaFile*: the public shape of a row (``sha256``, ``thumb_filename`` and
    ``unused_since`` are never answered)."""

    id: str
    original_filename: str
    stored_filename: str
    file_size: int
    file_extension: str
    content_type: str
    upload_type: str
    access_url: str
    thumbnail_url: str | None
    has_thumbnail: bool
    is_used: int
    uploaded_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: MediaRow) -> Self:
        return cls.model_validate(_with_thumb_flag(row))


class ListedMediaFile(MediaFile):
    """A *MediaFile* in the list answer, with who uploaded it (null when anonymous)."""

    uploader_role: str | None
    uploader_id: str | None


def _with_thumb_flag(row: MediaRow) -> dict[str, Any]:
    return {**row, "has_thumbnail": row["thumb_filename"] is not None}

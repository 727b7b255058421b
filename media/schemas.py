"""Request bodies and ``*Public`` answer shapes of the media service (contract sections 2, 4).

Routes answer through ``ok()`` (no second validation); these models are what the OpenAPI
document publishes and what Schemathesis checks every answer against.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from media.domain import MAX_IDS
from media.repository import MediaRow
from shared.responses import Pagination

UploadType = Literal["profile", "service", "temp"]


# -- requests -------------------------------------------------------------------------------------


def _list_or_none(value: Any) -> Any:
    return value if isinstance(value, list) else None


MediaIdList = Annotated[
    list[Any] | None,
    BeforeValidator(_list_or_none),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "maxItems": MAX_IDS,
            "description": "media ids; an item that is not one is answered as invalid",
        }
    ),
]
"""A list of media ids as sent. The contracts answer each item (a non-string item is an
"Invalid UUID format" entry) and word a missing or non-list value themselves, so nothing is
refused while parsing: anything but a list reads as absent."""


class IdsBody(BaseModel):
    """``{"fileIds": [...]}`` or ``{"ids": [...]}`` (the bulk endpoints, 4.7–4.11).

    Which key wins differs per endpoint (:meth:`pick`); a body that is not a JSON object reads
    as one with neither key, so each endpoint answers its own message.
    """

    model_config = ConfigDict(extra="ignore")

    fileIds: MediaIdList = None
    ids: MediaIdList = None

    @model_validator(mode="before")
    @classmethod
    def _object(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {}

    def pick(self, canonical: Literal["fileIds", "ids"]) -> tuple[list[Any] | None, str]:
        """(the list under ``canonical`` when that key was sent, else under the other key; the
        key it came from). A sent key whose value is not a list gives None."""
        alias = "ids" if canonical == "fileIds" else "fileIds"
        key = canonical if canonical in self.model_fields_set or alias not in self.model_fields_set else alias
        return getattr(self, key), key


# -- answers -------------------------------------------------------------------------------------


def _with_thumb_flag(row: MediaRow) -> dict[str, Any]:
    return {**row, "has_thumbnail": row["thumb_filename"] is not None}


class UploadPublic(BaseModel):
    """The ``data`` of a 201 upload answer (4.1)."""

    id: str
    original_filename: str
    file_size: int
    content_type: str
    has_thumbnail: bool
    upload_type: UploadType
    file_extension: str
    access_url: str
    thumbnail_url: str | None

    @classmethod
    def from_row(cls, row: MediaRow) -> Self:
        return cls.model_validate(_with_thumb_flag(row))


class MediaFilePublic(BaseModel):
    """*MediaFile*: the public shape of a row (``sha256``, ``thumb_filename`` and
    ``unused_since`` are never answered; ``is_used`` is the integer 0/1)."""

    id: str
    original_filename: str
    stored_filename: str
    file_size: int
    file_extension: str
    content_type: str
    upload_type: UploadType
    access_url: str
    thumbnail_url: str | None
    has_thumbnail: bool
    is_used: Literal[0, 1]
    uploaded_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: MediaRow) -> Self:
        return cls.model_validate(_with_thumb_flag(row))


class ListedMediaFilePublic(MediaFilePublic):
    """A *MediaFile* in the list answer, with who uploaded it (null when anonymous)."""

    uploader_role: Literal["customer", "seller", "admin", "service"] | None
    uploader_id: str | None


PaginationPublic = Pagination


class MediaListPublic(BaseModel):
    """4.6: one page of files, newest upload first."""

    files: list[ListedMediaFilePublic]
    pagination: PaginationPublic


class ValidatedFilePublic(BaseModel):
    """One id of a validate answer (4.7), in request order; ``id`` is echoed as sent."""

    id: Any = Field(description="the id exactly as sent (any JSON value)")
    valid: bool
    exists: bool
    reason: Literal["File not found", "Invalid UUID format", "File not found on disk"] | None = None
    filename: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    is_used: Literal[0, 1] | None = None
    uploaded_at: str | None = None


class ValidationSummaryPublic(BaseModel):
    total: int
    valid: int
    invalid: int


class ValidatePublic(BaseModel):
    files: list[ValidatedFilePublic]
    summary: ValidationSummaryPublic


class MarkResultPublic(BaseModel):
    id: Any = Field(description="the id exactly as sent (any JSON value)")
    success: bool
    message: Literal["Marked as used", "Media not found", "Invalid UUID format", "Failed to mark as used"]


class MarkSummaryPublic(BaseModel):
    total: int
    successful: int
    failed: int


class BulkMarkPublic(BaseModel):
    """4.8: a result per sent id, in order."""

    results: list[MarkResultPublic]
    summary: MarkSummaryPublic


class MarkedOnePublic(BaseModel):
    media_id: str


class MarkedManyPublic(BaseModel):
    """4.10/4.11: distinct existing ids changed, and the ids as sent."""

    updated_count: int
    ids: list[str]


class CleanupPublic(BaseModel):
    deleted_count: int
    total_found: int
    freed_bytes: int


class CountBytes(BaseModel):
    count: int
    bytes: int


class ByUploadTypePublic(BaseModel):
    profile: CountBytes
    service: CountBytes
    temp: CountBytes


class StatsPublic(BaseModel):
    """4.13: originals only; every upload type always present."""

    total_files: int
    total_bytes: int
    thumbnail_count: int
    used: CountBytes
    unused: CountBytes
    cleanup_eligible: CountBytes
    by_upload_type: ByUploadTypePublic
    by_content_type: dict[str, CountBytes]

"""Routes of the media service (contract section 3): parse, call the domain, wrap the result.

Routes with a fixed second segment are declared before ``/media/{media_id}``, and the id
routes refuse those names with 405, so ``GET /media/stats`` or ``GET /media/upload`` never
answer "Invalid media ID format".

The upload body is parsed from the request stream by hand (``media.upload``, contract R3:
never buffered whole), so its ``multipart/form-data`` shape is declared in the document with
``openapi_extra``; every JSON body is a typed model (``media.schemas``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from media import schemas, sniff
from media.deps import MediaDomain, OptionalUploader, Paging, ServiceAdminOrUser, ServiceOnly, ServiceOrAdmin
from media.serving import file_response
from media.upload import MULTIPART_OVERHEAD, too_large
from shared.responses import (
    AUTH_ERRORS,
    AppError,
    BadRequest,
    Envelope,
    MessageEnvelope,
    MethodNotAllowed,
    error_responses,
    ok,
)
from shared.validation import pagination

router = APIRouter(prefix="/api/v1/media", tags=["media"])

UPLOAD_PATH = "/api/v1/media/upload"
FIXED_SEGMENTS = frozenset(
    {
        "upload",
        "serve",
        "serve-thumb",
        "info",
        "delete",
        "list",
        "stats",
        "validate",
        "bulk-mark-used",
        "mark-used",
        "mark-not-used",
        "cleanup",
    }
)

MediaId = Annotated[
    str,
    Path(description="a media UUID (any case); anything else answers 400", json_schema_extra={"format": "uuid"}),
]
Ids = Annotated[schemas.IdsBody | None, Body()]


def _id_route(media_id: str) -> str:
    """A fixed segment reached through an id route is the wrong method for that path."""
    if media_id in FIXED_SEGMENTS:
        raise MethodNotAllowed()
    return media_id


# -- 4.1 upload ------------------------------------------------------------------------------

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"one file, 1 byte to MEDIA_MAX_BYTES; its type is read from "
                            f"its content ({sniff.ALLOWED_LABEL})",
                        },
                        "type": {
                            "type": "string",
                            "description": "profile | service | temp (trimmed, any case); anything else is temp",
                            "examples": ["profile", "service", "temp"],
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/upload",
    status_code=201,
    response_model=Envelope[schemas.UploadPublic],
    responses=error_responses(400, *AUTH_ERRORS, 413, 415, 500),
    openapi_extra=_UPLOAD_BODY,
)
async def upload(request: Request, uploader: OptionalUploader, media: MediaDomain) -> Response:
    chunked = "content-length" not in request.headers
    try:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("Invalid Content-Length")
            if int(length) > media.settings.MEDIA_MAX_BYTES + MULTIPART_OVERHEAD:
                raise too_large(media.settings.max_size_label)  # refused before reading
        receiver = media.receiver(content_type=request.headers.get("content-type"))
        try:
            row = await media.upload(receiver=receiver, body=request.stream(), uploader=uploader)
        except AppError as exc:
            if chunked and not receiver.body_complete:
                # Without a Content-Length the rest could be endless: close instead of draining it.
                exc.headers = {**(exc.headers or {}), "Connection": "close"}
            raise
    except ClientDisconnect:
        media.metrics.upload_result(400)
        return Response(status_code=400)
    except AppError as exc:
        media.metrics.upload_result(exc.status_code)
        raise
    media.metrics.upload_result(201)
    return ok(schemas.UploadPublic.from_row(row).model_dump(), "File uploaded successfully", status_code=201)


# -- fixed second segments -----------------------------------------------------------------

_SERVED_TYPES = sorted(
    {kind.content_type for kind in (sniff.JPEG, sniff.PNG, sniff.GIF, sniff.WEBP, sniff.PDF, sniff.DOC, sniff.DOCX)}
    | {"text/plain; charset=utf-8"}
)
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _serve_responses(*, ranges: bool) -> dict[int | str, dict[str, Any]]:
    served = {t: _BINARY for t in _SERVED_TYPES}
    documented: dict[int | str, dict[str, Any]] = {
        200: {"description": "The file, streamed (its stored type)", "content": served},
        304: {"description": "Not modified: If-None-Match / If-Modified-Since matched"},
        **error_responses(400, 404),
    }
    if ranges:
        documented[206] = {"description": "One byte range (Content-Range)", "content": served}
        documented.update(error_responses(416))
    return documented


async def _serve(request: Request, media: MediaDomain, media_id: str, *, thumb: bool) -> Response:
    served = await media.open_for_serving(media_id=media_id, thumb=thumb)
    return file_response(served, request.headers, head=request.method == "HEAD")


@router.get("/serve/{media_id}", response_class=Response, responses=_serve_responses(ranges=True))
@router.head("/serve/{media_id}", response_class=Response, responses=_serve_responses(ranges=True))
async def serve_original(request: Request, media_id: MediaId, media: MediaDomain) -> Response:
    return await _serve(request, media, media_id, thumb=False)


@router.get("/serve-thumb/{media_id}", response_class=Response, responses=_serve_responses(ranges=False))
@router.head("/serve-thumb/{media_id}", response_class=Response, responses=_serve_responses(ranges=False))
async def serve_thumbnail(request: Request, media_id: MediaId, media: MediaDomain) -> Response:
    return await _serve(request, media, media_id, thumb=True)


@router.get("/info/{media_id}", response_model=Envelope[schemas.MediaFilePublic], responses=error_responses(400, 404))
async def info(media_id: MediaId, media: MediaDomain) -> JSONResponse:
    row = await media.get(media_id=media_id)
    return ok(schemas.MediaFilePublic.from_row(row).model_dump(), "File retrieved successfully")


_DELETE_ERRORS = error_responses(400, *AUTH_ERRORS, 404)


@router.delete("/delete/{media_id}", response_model=MessageEnvelope, responses=_DELETE_ERRORS)
async def delete_alias(media_id: MediaId, caller: ServiceAdminOrUser, media: MediaDomain) -> JSONResponse:
    await media.delete(media_id=media_id, caller=caller)
    return JSONResponse({"success": True, "message": "File deleted successfully"})


@router.get("", response_model=Envelope[schemas.MediaListPublic], responses=error_responses(400, *AUTH_ERRORS))
@router.get("/list", response_model=Envelope[schemas.MediaListPublic], responses=error_responses(400, *AUTH_ERRORS))
async def list_files(
    caller: ServiceOrAdmin,
    media: MediaDomain,
    paging: Paging,
    type: Annotated[schemas.UploadType | None, Query(description="only this upload type")] = None,
    is_used: Annotated[Literal["0", "1"] | None, Query(description="only used (1) or unused (0) files")] = None,
) -> JSONResponse:
    rows, total = await media.page(
        paging=paging, upload_type=type, is_used=None if is_used is None else int(is_used)
    )
    files = [schemas.ListedMediaFilePublic.from_row(r).model_dump() for r in rows]
    return ok(
        {"files": files, "pagination": pagination(paging.page, paging.limit, total)}, "Files retrieved successfully"
    )


@router.get("/stats", response_model=Envelope[schemas.StatsPublic], responses=error_responses(*AUTH_ERRORS))
async def stats(caller: ServiceOnly, media: MediaDomain) -> JSONResponse:
    return ok(await media.stats(), "Media statistics retrieved")


_BULK_ERRORS = error_responses(400, *AUTH_ERRORS)


@router.post("/validate", response_model=Envelope[schemas.ValidatePublic], responses=_BULK_ERRORS)
async def validate(caller: ServiceOrAdmin, media: MediaDomain, body: Ids = None) -> JSONResponse:
    ids, field = (body or schemas.IdsBody()).pick("fileIds")
    return ok(await media.validate(ids=ids, field=field), "File validation completed")


@router.post("/bulk-mark-used", response_model=Envelope[schemas.BulkMarkPublic], responses=_BULK_ERRORS)
async def bulk_mark_used(caller: ServiceOrAdmin, media: MediaDomain, body: Ids = None) -> JSONResponse:
    ids, field = (body or schemas.IdsBody()).pick("fileIds")
    return ok(await media.bulk_mark_used(ids=ids, field=field), "Bulk mark as used completed")


@router.post(
    "/mark-used/{media_id}",
    response_model=Envelope[schemas.MarkedOnePublic],
    responses=error_responses(400, *AUTH_ERRORS, 404),
)
async def mark_one_used(media_id: MediaId, caller: ServiceOrAdmin, media: MediaDomain) -> JSONResponse:
    await media.mark_one_used(media_id=media_id)
    return ok({"media_id": media_id}, "Media marked as used")


@router.post("/mark-used", response_model=Envelope[schemas.MarkedManyPublic], responses=_BULK_ERRORS)
async def mark_used(caller: ServiceOrAdmin, media: MediaDomain, body: Ids = None) -> JSONResponse:
    ids, field = (body or schemas.IdsBody()).pick("ids")
    count, sent = await media.mark_many(ids=ids, field=field, used=True)
    return ok({"updated_count": count, "ids": sent}, f"Successfully marked {count} files as used")


@router.post("/mark-not-used", response_model=Envelope[schemas.MarkedManyPublic], responses=_BULK_ERRORS)
async def mark_not_used(caller: ServiceOrAdmin, media: MediaDomain, body: Ids = None) -> JSONResponse:
    ids, field = (body or schemas.IdsBody()).pick("ids")
    count, sent = await media.mark_many(ids=ids, field=field, used=False)
    return ok({"updated_count": count, "ids": sent}, f"Successfully marked {count} files as not used")


@router.post("/cleanup", response_model=Envelope[schemas.CleanupPublic], responses=error_responses(*AUTH_ERRORS))
async def cleanup(caller: ServiceOrAdmin, media: MediaDomain) -> JSONResponse:
    data = await media.cleanup()
    return ok(data, f"Cleaned up {data['deleted_count']} temporary files")


# -- /media/{id} last ---------------------------------------------------------------------------


@router.get(
    "/{media_id}", response_model=Envelope[schemas.MediaFilePublic], responses=error_responses(400, 404, 405)
)
async def get_file(media_id: MediaId, media: MediaDomain) -> JSONResponse:
    return await info(_id_route(media_id), media)


@router.delete("/{media_id}", response_model=MessageEnvelope, responses={**_DELETE_ERRORS, **error_responses(405)})
async def delete_file(media_id: MediaId, caller: ServiceAdminOrUser, media: MediaDomain) -> JSONResponse:
    return await delete_alias(_id_route(media_id), caller, media)

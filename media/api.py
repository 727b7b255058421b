"""Routes of the media service (contract section 3): parse, call the domain, wrap the result.

Routes with a fixed second segment are declared before ``/media/{media_id}``, and the id
routes refuse those names with 405, so ``GET /media/stats`` or ``GET /media/upload`` never
answer "Invalid media ID format".
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from media import schemas
from media.auth import OptionalUploader, ServiceAdminOrUploader, ServiceOnly, ServiceOrAdmin
from media.domain import MediaService, parse_stamp
from media.serving import Served, file_response
from media.upload import MULTIPART_OVERHEAD, too_large
from shared.responses import AppError, BadRequest, MethodNotAllowed, NotFound, ok

router = APIRouter(prefix="/api/v1/media")

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


def _service(request: Request) -> MediaService:
    return request.app.state.media


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest("Invalid JSON in request body") from None


def _id_route(media_id: str) -> str:
    """A fixed segment reached through an id route is the wrong method for that path."""
    if media_id in FIXED_SEGMENTS:
        raise MethodNotAllowed()
    return media_id


# -- 4.1 upload ------------------------------------------------------------------------------


@router.post("/upload", status_code=201)
async def upload(request: Request, uploader: OptionalUploader) -> Response:
    service = _service(request)
    chunked = "content-length" not in request.headers
    try:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("Invalid Content-Length")
            if int(length) > service.settings.MEDIA_MAX_BYTES + MULTIPART_OVERHEAD:
                raise too_large(service.settings.max_size_label)  # refused before reading
        receiver = service.receiver(request.headers.get("content-type"))
        try:
            row = await service.upload(receiver=receiver, body=request.stream(), uploader=uploader)
        except AppError as exc:
            if chunked and not receiver.body_complete:
                # Without a Content-Length the rest could be endless: close instead of draining it.
                exc.headers = {**(exc.headers or {}), "Connection": "close"}
            raise
    except ClientDisconnect:
        service.metrics.upload_result(400)
        return Response(status_code=400)
    except AppError as exc:
        service.metrics.upload_result(exc.status_code)
        raise
    service.metrics.upload_result(201)
    return ok(schemas.UploadAnswer.from_row(row).model_dump(), "File uploaded successfully", status_code=201)


# -- fixed second segments -----------------------------------------------------------------


async def _serve(request: Request, media_id: str, *, thumb: bool) -> Response:
    service = _service(request)
    row = await service.get(media_id)
    uploaded = parse_stamp(row["uploaded_at"])
    content_type = "text/plain; charset=utf-8" if row["file_extension"] == "txt" else row["content_type"]
    head = request.method == "HEAD"
    if thumb:
        thumb_path = service.thumbnail_path(row)
        opened = await service.storage.open_file(thumb_path) if thumb_path else None
        if opened is not None:
            handle, stat = opened
            served = Served(
                handle,
                stat.st_size,
                _thumb_type(row["thumb_filename"]),
                f'"{row["sha256"]}-thumb"',
                uploaded,
                f"thumb_{row['original_filename']}",
                ranges=False,
            )
            return file_response(served, request.headers, head=head)
    opened = await service.storage.open_file(service.original_path(row))
    if opened is None:
        raise NotFound("Thumbnail not found" if thumb else "File not found on disk")
    handle, stat = opened
    name = f"thumb_{row['original_filename']}" if thumb else row["original_filename"]
    served = Served(handle, stat.st_size, content_type, f'"{row["sha256"]}"', uploaded, name, ranges=not thumb)
    return file_response(served, request.headers, head=head)


_THUMB_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


def _thumb_type(thumb_filename: str) -> str:
    return _THUMB_TYPES[thumb_filename.rsplit(".", 1)[-1]]


@router.api_route("/serve/{media_id}", methods=["GET", "HEAD"])
async def serve_original(request: Request, media_id: str) -> Response:
    return await _serve(request, media_id, thumb=False)


@router.api_route("/serve-thumb/{media_id}", methods=["GET", "HEAD"])
async def serve_thumbnail(request: Request, media_id: str) -> Response:
    return await _serve(request, media_id, thumb=True)


@router.get("/info/{media_id}")
async def info(request: Request, media_id: str) -> JSONResponse:
    row = await _service(request).get(media_id)
    return ok(schemas.MediaFile.from_row(row).model_dump(), "File retrieved successfully")


@router.delete("/delete/{media_id}")
async def delete_alias(request: Request, media_id: str, caller: ServiceAdminOrUploader) -> JSONResponse:
    await _service(request).delete(media_id=media_id, caller=caller)
    return JSONResponse({"success": True, "message": "File deleted successfully"})


@router.get("")
@router.get("/list")
async def list_files(
    request: Request,
    caller: ServiceOrAdmin,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    type: Annotated[Literal["profile", "service", "temp"] | None, Query()] = None,
    is_used: Annotated[Literal["0", "1"] | None, Query()] = None,
) -> JSONResponse:
    rows, total = await _service(request).page(
        page=page, limit=limit, upload_type=type, is_used=None if is_used is None else int(is_used)
    )
    pages = (total + limit - 1) // limit
    return ok(
        {
            "files": [schemas.ListedMediaFile.from_row(r).model_dump() for r in rows],
            "pagination": {"page": page, "limit": limit, "total": total, "pages": pages, "totalPages": pages},
        },
        "Files retrieved successfully",
    )


@router.get("/stats")
async def stats(request: Request, caller: ServiceOnly) -> JSONResponse:
    return ok(await _service(request).stats(), "Media statistics retrieved")


@router.post("/validate")
async def validate(request: Request, caller: ServiceOrAdmin) -> JSONResponse:
    data = await _service(request).validate(await _json_body(request))
    return ok(data, "File validation completed")


@router.post("/bulk-mark-used")
async def bulk_mark_used(request: Request, caller: ServiceOrAdmin) -> JSONResponse:
    data = await _service(request).bulk_mark_used(await _json_body(request))
    return ok(data, "Bulk mark as used completed")


@router.post("/mark-used/{media_id}")
async def mark_one_used(request: Request, media_id: str, caller: ServiceOrAdmin) -> JSONResponse:
    await _service(request).mark_one_used(media_id)
    return ok({"media_id": media_id}, "Media marked as used")


@router.post("/mark-used")
async def mark_used(request: Request, caller: ServiceOrAdmin) -> JSONResponse:
    count, ids = await _service(request).mark_many(await _json_body(request), used=True)
    return ok({"updated_count": count, "ids": ids}, f"Successfully marked {count} files as used")


@router.post("/mark-not-used")
async def mark_not_used(request: Request, caller: ServiceOrAdmin) -> JSONResponse:
    count, ids = await _service(request).mark_many(await _json_body(request), used=False)
    return ok({"updated_count": count, "ids": ids}, f"Successfully marked {count} files as not used")


@router.post("/cleanup")
async def cleanup(request: Request, caller: ServiceOrAdmin) -> JSONResponse:
    data = await _service(request).cleanup()
    return ok(data, f"Cleaned up {data['deleted_count']} temporary files")


# -- /media/{id} last ---------------------------------------------------------------------------


@router.get("/{media_id}")
async def get_file(request: Request, media_id: str) -> JSONResponse:
    return await info(request, _id_route(media_id))


@router.delete("/{media_id}")
async def delete_file(request: Request, media_id: str, caller: ServiceAdminOrUploader) -> JSONResponse:
    return await delete_alias(request, _id_route(media_id), caller)

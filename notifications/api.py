"""Routes only: parse (typed bodies and queries), call the :class:`~notifications.domain.Notifier`,
pick the message, wrap the result."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from notifications.deps import HistoryQuery, IdPath, NotifierDep, Paging, existing_id, require_service_key
from notifications.domain import send_answer
from notifications.schemas import (
    HistoryDetailPublic,
    HistoryPagePublic,
    SendBody,
    SendResultPublic,
    SmtpBody,
    SmtpConfigPublic,
    TemplateCreateBody,
    TemplatePublic,
    TemplateUpdateBody,
    parse_idempotency_key,
)
from shared.responses import AUTH_ERRORS, Envelope, MessageEnvelope, error_responses, ok

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_service_key)])

_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"model": Envelope[SendResultPublic], "description": "Email queued for retry"}
}


@router.post(
    "/send",
    response_model=Envelope[SendResultPublic],
    responses={**_QUEUED, **error_responses(*AUTH_ERRORS, 404, 502)},
)
async def send(
    body: SendBody,
    notifier: NotifierDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = parse_idempotency_key(idempotency_key)
    row = await notifier.send(request=body.to_request(), idempotency_key=key)
    if row["status"] == "sent":
        return ok(send_answer(row), "Email sent successfully")
    return ok(send_answer(row), "Email queued for retry", status_code=202)


@router.get("/templates", response_model=Envelope[list[TemplatePublic]], responses=error_responses(*AUTH_ERRORS))
async def list_templates(notifier: NotifierDep) -> JSONResponse:
    return ok(await notifier.list_templates(), "Templates retrieved successfully")


@router.post(
    "/templates",
    status_code=201,
    response_model=Envelope[TemplatePublic],
    responses=error_responses(*AUTH_ERRORS, 409),
)
async def create_template(body: TemplateCreateBody, notifier: NotifierDep) -> JSONResponse:
    created = await notifier.create_template(data=body.to_input())
    return ok(created, "Template created successfully", status_code=201)


@router.get(
    "/templates/{template_id}",
    response_model=Envelope[TemplatePublic],
    responses=error_responses(*AUTH_ERRORS, 404),
)
async def get_template(template_id: IdPath, notifier: NotifierDep) -> JSONResponse:
    found = await notifier.get_template(template_id=existing_id(template_id, "Template not found"))
    return ok(found, "Template retrieved successfully")


@router.put(
    "/templates/{template_id}",
    response_model=Envelope[TemplatePublic],
    responses=error_responses(*AUTH_ERRORS, 404),
)
async def update_template(template_id: IdPath, body: TemplateUpdateBody, notifier: NotifierDep) -> JSONResponse:
    number = existing_id(template_id, "Template not found")
    updated = await notifier.update_template(template_id=number, changes=body.changes())
    return ok(updated, "Template updated successfully")


@router.delete(
    "/templates/{template_id}",
    response_model=MessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404),
)
async def delete_template(template_id: IdPath, notifier: NotifierDep) -> JSONResponse:
    await notifier.delete_template(template_id=existing_id(template_id, "Template not found"))
    return JSONResponse({"success": True, "message": "Template deleted successfully"})


@router.get("/smtp", response_model=Envelope[SmtpConfigPublic], responses=error_responses(*AUTH_ERRORS, 404))
async def get_smtp(notifier: NotifierDep) -> JSONResponse:
    return ok(await notifier.get_smtp(), "SMTP config retrieved")


@router.post("/smtp", response_model=Envelope[SmtpConfigPublic], responses=error_responses(*AUTH_ERRORS))
async def save_smtp(body: SmtpBody, notifier: NotifierDep) -> JSONResponse:
    return ok(await notifier.save_smtp(data=body.to_input()), "SMTP configuration updated successfully")


@router.get("/history", response_model=Envelope[HistoryPagePublic], responses=error_responses(*AUTH_ERRORS))
async def list_history(where: HistoryQuery, paging: Paging, notifier: NotifierDep) -> JSONResponse:
    found = await notifier.list_history(where=where, page=paging.page, limit=paging.limit)
    return ok(found, "Email history retrieved")


@router.get(
    "/history/{history_id}",
    response_model=Envelope[HistoryDetailPublic],
    responses=error_responses(*AUTH_ERRORS, 404),
)
async def get_history(history_id: IdPath, notifier: NotifierDep) -> JSONResponse:
    found = await notifier.get_history(history_id=existing_id(history_id, "History record not found"))
    return ok(found, "Email history record retrieved")

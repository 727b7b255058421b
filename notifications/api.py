"""Routes only: authenticate, parse, call the :class:`~notifications.domain.Notifier`, wrap the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from notifications.domain import Notifier, send_answer
from notifications.repository import HistoryFilter
from notifications.schemas import (
    parse_history_query,
    parse_id,
    parse_idempotency_key,
    parse_json_object,
    parse_send,
    parse_smtp,
    parse_template_create,
    parse_template_update,
)
from shared.auth import SERVICE_KEY_HEADER, check_service_key
from shared.responses import NotFound, ok

SERVICE_KEY_MESSAGE = "Invalid or missing service key"


async def _require_service_key(request: Request) -> None:
    check_service_key(
        request.app.state.settings,
        request.headers.get(SERVICE_KEY_HEADER),
        missing_message=SERVICE_KEY_MESSAGE,
        invalid_message=SERVICE_KEY_MESSAGE,
    )


async def _notifier(request: Request) -> Notifier:
    return request.app.state.notifier


NotifierDep = Annotated[Notifier, Depends(_notifier)]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(_require_service_key)])


def _id_or_404(raw: str, not_found: str) -> int:
    number = parse_id(raw)
    if number is None:
        raise NotFound(not_found)
    return number


@router.post("/send")
async def send(request: Request, notifier: NotifierDep) -> JSONResponse:
    body = parse_json_object(await request.body())
    send_request = parse_send(body)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    row = await notifier.send(send_request, idempotency_key=key)
    if row["status"] == "sent":
        return ok(send_answer(row), "Email sent successfully")
    return ok(send_answer(row), "Email queued for retry", status_code=202)


@router.get("/templates")
async def list_templates(notifier: NotifierDep) -> JSONResponse:
    return ok(await notifier.list_templates(), "Templates retrieved successfully")


@router.post("/templates")
async def create_template(request: Request, notifier: NotifierDep) -> JSONResponse:
    data = parse_template_create(parse_json_object(await request.body()), notifier.renderer.check_syntax)
    return ok(await notifier.create_template(data), "Template created successfully", status_code=201)


@router.get("/templates/{template_id}")
async def get_template(template_id: str, notifier: NotifierDep) -> JSONResponse:
    found = await notifier.get_template(_id_or_404(template_id, "Template not found"))
    return ok(found, "Template retrieved successfully")


@router.put("/templates/{template_id}")
async def update_template(template_id: str, request: Request, notifier: NotifierDep) -> JSONResponse:
    number = _id_or_404(template_id, "Template not found")
    changes = parse_template_update(parse_json_object(await request.body()), notifier.renderer.check_syntax)
    return ok(await notifier.update_template(number, changes), "Template updated successfully")


@router.delete("/templates/{template_id}")
async def delete_template(template_id: str, notifier: NotifierDep) -> JSONResponse:
    await notifier.delete_template(_id_or_404(template_id, "Template not found"))
    return JSONResponse({"success": True, "message": "Template deleted successfully"})


@router.get("/smtp")
async def get_smtp(notifier: NotifierDep) -> JSONResponse:
    return ok(await notifier.get_smtp(), "SMTP config retrieved")


@router.post("/smtp")
async def save_smtp(request: Request, notifier: NotifierDep) -> JSONResponse:
    data = parse_smtp(parse_json_object(await request.body()))
    return ok(await notifier.save_smtp(data), "SMTP configuration updated successfully")


@router.get("/history")
async def list_history(request: Request, notifier: NotifierDep) -> JSONResponse:
    query = parse_history_query(request.query_params)
    where = HistoryFilter(status=query.status, template_code=query.template_code, recipient_email=query.recipient_email)
    return ok(await notifier.list_history(where, page=query.page, limit=query.limit), "Email history retrieved")


@router.get("/history/{history_id}")
async def get_history(history_id: str, notifier: NotifierDep) -> JSONResponse:
    found = await notifier.get_history(_id_or_404(history_id, "History record not found"))
    return ok(found, "Email history record retrieved")

"""Annotated dependency aliases of the notifications routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader

from notifications.domain import Notifier
from notifications.repository import HistoryFilter
from notifications.schemas import parse_id
from shared.app import app_state
from shared.auth import SERVICE_KEY_HEADER, check_service_key
from shared.fields import EmptyAsNone, PageRequest, page_query
from shared.responses import NotFound

SERVICE_KEY_MESSAGE = "Invalid or missing service key"

_service_key_header = APIKeyHeader(name=SERVICE_KEY_HEADER, auto_error=False, description="Any key of SERVICE_KEY")


async def require_service_key(request: Request, key: str | None = Security(_service_key_header)) -> None:
    """Every route but ``/health`` and ``/metrics``: 401 without the key, 403 with a wrong one."""
    check_service_key(
        request.app.state.settings, key, missing_message=SERVICE_KEY_MESSAGE, invalid_message=SERVICE_KEY_MESSAGE
    )


NotifierDep = Annotated[Notifier, Depends(app_state("notifier"))]

ID_PATTERN = "^[1-9][0-9]{0,18}$"
IdPath = Annotated[str, Path(json_schema_extra={"pattern": ID_PATTERN}, description="A positive integer id")]


def existing_id(raw: str, not_found: str) -> int:
    """400 ``Invalid ID format`` unless the id matches the pattern; 404 when too large to exist."""
    number = parse_id(raw)
    if number is None:
        raise NotFound(not_found)
    return number


async def _history_filter(
    status: Annotated[Literal["pending", "sent", "failed"] | None, Query(), EmptyAsNone] = None,
    template_code: Annotated[str | None, Query(max_length=64), EmptyAsNone] = None,
    recipient_email: Annotated[
        str | None, Query(max_length=254, description="Case-insensitive substring"), EmptyAsNone
    ] = None,
) -> HistoryFilter:
    return HistoryFilter(status=status, template_code=template_code, recipient_email=recipient_email)


HistoryQuery = Annotated[HistoryFilter, Depends(_history_filter)]
Paging = Annotated[PageRequest, Depends(page_query(default_limit=20, max_limit=100))]

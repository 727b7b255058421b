"""Per-request context: the request id, set by the app middleware and read by the client."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

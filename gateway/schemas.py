"""What the gateway's own endpoints answer, as the schemas of its OpenAPI document (§4.2–§4.7).

The routes build their answers directly (``JSONResponse``); these models only describe them,
so the document says what a client gets: every success with its schema, every error with
the envelope, and no 422 (the gateway never answers it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.responses import ERROR_DESCRIPTIONS, ErrorEnvelope


class RouteNotFound(ErrorEnvelope):
    availableServices: list[str]
    documentation: str
    timestamp: str


class InternalError(ErrorEnvelope):
    timestamp: str
    requestId: str | None = None


class MediaError(ErrorEnvelope):
    media_id: str


class HealthPublic(BaseModel):
    success: bool
    service: Literal["api-gateway"]
    status: Literal["healthy"]
    timestamp: str
    uptime: float = Field(description="Seconds since the gateway started")
    services: list[str]
    version: str


class CircuitPublic(BaseModel):
    state: Literal["closed", "half_open", "open"]
    consecutiveFailures: int
    retryAfterMs: int | None = Field(None, description="Only while open")


class ServiceHealth(BaseModel):
    status: Literal["healthy", "unhealthy"]
    url: str
    responseTime: str | None = Field(None, description='e.g. "12ms"; healthy only')
    response: Any = Field(None, description="The service's /health answer when it was JSON")
    error: str | None = Field(None, description='e.g. "Connection refused", "Timeout after 3000ms", "HTTP 503"')
    circuit: CircuitPublic


class StatusPublic(BaseModel):
    success: bool
    gateway: Literal["healthy"]
    timestamp: str
    services: dict[str, ServiceHealth] = Field(description="All seven services, in routing-table order")


class GatewayInfo(BaseModel):
    version: str
    port: int
    endpoints: dict[str, str]


class ServiceEntry(BaseModel):
    prefix: str
    target: str
    description: str


class DocsDirectory(BaseModel):
    success: bool
    message: str
    gateway: GatewayInfo
    services: dict[str, ServiceEntry]
    examples: dict[str, str]


def errors(*statuses: int, model: type[BaseModel] = ErrorEnvelope) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries: each status answered with ``model``."""
    return {status: {"model": model, "description": _DESCRIPTIONS.get(status, "Error")} for status in statuses}


_DESCRIPTIONS = {
    **ERROR_DESCRIPTIONS,
    400: "Malformed request (an invalid media id)",
    416: "Range not satisfiable",
    429: "Too many requests from this IP (`Retry-After`)",
    500: "Internal Gateway Error (carries the request id)",
    503: "The service is unavailable, or its circuit is open (`Retry-After`)",
}

# What any route of the gateway can answer besides its own statuses: the edge's rate limit and
# its last-resort 500.
COMMON = {**errors(429), **errors(500, model=InternalError)}


def _json_ref(status: int, model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": _DESCRIPTIONS[status], "content": {"application/json": {"schema": schema}}}


# The same, for routes whose success is not JSON (``/docs``, ``/metrics``): FastAPI would
# otherwise describe their errors in the success's media type.
COMMON_JSON = {429: _json_ref(429, ErrorEnvelope), 500: _json_ref(500, InternalError)}

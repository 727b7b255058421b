"""The typed-API foundation: documents at /openapi.json without 422, the envelope models,
named field types, and the request guard's answers to hostile bodies and tokens."""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from shared.app import create_service_app, has_lone_surrogate
from shared.auth import BearerClaims
from shared.fields import LaxBool, ObjectIdStr, PageRequest, page_query
from shared.responses import Envelope, PagedEnvelope, error_responses, ok
from shared.settings import ServiceSettings
from shared.testing import lifespan_client
from shared.validation import MAX_PAGE, page_params


class ThingIn(BaseModel):
    name: str
    active: LaxBool = True
    ownerId: ObjectIdStr | None = None


class ThingPublic(BaseModel):
    name: str
    active: bool


Paging = Annotated[PageRequest, Depends(page_query(default_limit=20, max_limit=50))]


def _app():
    settings = ServiceSettings(_env_file=None, MAX_JSON_BODY_BYTES=1000)
    router = APIRouter(prefix="/api/v1")
    @router.post("/things", status_code=201, response_model=Envelope[ThingPublic], responses=error_responses(409))
    async def create(body: ThingIn):
        return ok(body.model_dump(include={"name", "active"}), "Created", status_code=201)

    @router.get("/things", response_model=PagedEnvelope[ThingPublic])
    async def listing(paging: Paging):
        return ok([], "Listed", pagination={"page": paging.page, "limit": paging.limit})

    @router.get("/me")
    async def me(claims: BearerClaims):
        return ok(claims)

    return create_service_app(settings, service="things", routers=[router]), settings


async def test_document_served_at_openapi_json_without_422():
    app, _ = _app()
    async with lifespan_client(app) as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "422" not in str(document["paths"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    create = document["paths"]["/api/v1/things"]["post"]["responses"]
    assert set(create) >= {"201", "400", "409", "413", "415"}
    assert create["201"]["content"]["application/json"]["schema"] != {}
    assert create["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    listing = document["paths"]["/api/v1/things"]["get"]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert params["limit"]["anyOf"][0]["maximum"] == 50
    assert params["page"]["anyOf"][0]["maximum"] == MAX_PAGE


async def test_lax_bool_object_id_and_page_bounds():
    app, _ = _app()
    async with lifespan_client(app) as client:
        made = await client.post("/api/v1/things", json={"name": "a", "active": "false"})
        bad_bool = await client.post("/api/v1/things", json={"name": "a", "active": "maybe"})
        bad_id = await client.post("/api/v1/things", json={"name": "a", "ownerId": "a" * 24 + "\n"})
        huge = await client.get("/api/v1/things?page=99999999999999999999")
        wide = await client.get("/api/v1/things?limit=51")
        empty = await client.get("/api/v1/things?page=&limit=")
    assert made.status_code == 201 and made.json()["data"] == {"name": "a", "active": False}
    assert bad_bool.status_code == 400
    assert bad_bool.json()["errors"] == [{"field": "active", "message": "active must be a boolean"}]
    assert bad_id.status_code == 400 and bad_id.json()["errors"][0]["message"] == "Invalid ID format"
    assert huge.status_code == 400 and huge.json()["errors"][0]["field"] == "page"
    assert wide.status_code == 400 and wide.json()["errors"][0]["message"] == "limit cannot exceed 50"
    assert empty.json()["pagination"] == {"page": 1, "limit": 20}


def test_page_params_bounds_page_within_64_bits():
    with pytest.raises(Exception, match="Validation error"):
        page_params("99999999999999999999", None)
    with pytest.raises(Exception, match="Validation error"):
        page_params(str(MAX_PAGE + 1), None)
    assert page_params(str(MAX_PAGE), "5") == (MAX_PAGE, 5)


async def test_lone_surrogates_refused_before_any_route():
    app, _ = _app()
    async with lifespan_client(app) as client:
        response = await client.post(
            "/api/v1/things", content=b'{"name": "\\ud800"}', headers={"content-type": "application/json"}
        )
        pair = await client.post(
            "/api/v1/things", content=b'{"name": "\\ud83d\\ude00"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400 and response.json()["success"] is False
    assert pair.status_code == 201 and pair.json()["data"]["name"] == "\U0001f600"
    assert has_lone_surrogate(b'{"\\udc00": 1}') and not has_lone_surrogate(b'{"a": "\\\\ud800"}')


async def test_chunked_body_over_the_limit_is_413():
    app, _ = _app()

    async def chunks():
        for _ in range(20):
            yield b'{"name": "' + b"x" * 100

    async with lifespan_client(app) as client:
        response = await client.post("/api/v1/things", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"success": False, "message": "Request body too large"}


async def test_token_without_type_claim_is_refused():
    app, settings = _app()
    now = int(time.time())
    claims = {"sub": "a" * 24, "role": "customer", "iat": now, "exp": now + 60}
    untyped = jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")
    typed = jwt.encode({**claims, "type": "access"}, settings.JWT_SECRET, algorithm="HS256")
    async with lifespan_client(app) as client:
        refused = await client.get("/api/v1/me", headers={"authorization": f"Bearer {untyped}"})
        accepted = await client.get("/api/v1/me", headers={"authorization": f"Bearer {typed}"})
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid token"
    assert accepted.status_code == 200


def test_envelope_models_validate_real_answers():
    Envelope[ThingPublic].model_validate({"success": True, "message": "x", "data": {"name": "a", "active": True}})
    PagedEnvelope[ThingPublic].model_validate(
        {"success": True, "data": [], "pagination": {"page": 1, "limit": 1, "total": 0, "pages": 0, "totalPages": 0}}
    )
    assert httpx  # transports are exercised through lifespan_client


def test_log_file_rotates(tmp_path):
    import logging
    from logging.handlers import RotatingFileHandler

    from shared.app import configure_logging, log_file_path

    settings = ServiceSettings(_env_file=None, LOG_DIR=str(tmp_path), LOG_FILE_MAX_BYTES=2048, LOG_FILE_BACKUPS=2)
    assert log_file_path(settings, "orders") == tmp_path / "orders.log"
    root = logging.getLogger()
    saved = (root.handlers[:], getattr(root, "_shop_configured", False), root.level)
    root._shop_configured = False  # type: ignore[attr-defined]
    try:
        configure_logging(settings, "orders")
        files = [h for h in root.handlers if isinstance(h, RotatingFileHandler)]
        assert len(files) == 1
        for i in range(200):
            logging.getLogger("orders.test").warning("line %d %s", i, "x" * 40)
        files[0].close()
    finally:
        root.handlers[:], root._shop_configured, _ = saved[0], saved[1], root.setLevel(saved[2])  # type: ignore[attr-defined]
    logs = sorted(p.name for p in tmp_path.iterdir())
    assert logs == ["orders.log", "orders.log.1", "orders.log.2"]
    assert "line 199" in (tmp_path / "orders.log").read_text()

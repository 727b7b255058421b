"""The admin document: served at /openapi.json, every route typed and its statuses documented."""

from __future__ import annotations

from admin.app import create_app
from shared.testing import lifespan_client
from tests.admin.conftest import settings_for

EXPECTED = {
    ("/api/v1/login", "post"): {"200", "400", "401", "403", "423", "429"},
    ("/api/v1/auth/login", "post"): {"200", "400", "401", "403", "423", "429"},
    ("/api/v1/forgot-password", "post"): {"200", "400", "429"},
    ("/api/v1/reset-password", "post"): {"200", "400", "429"},
    ("/api/v1/me", "get"): {"200", "401", "403"},
    ("/api/v1/dashboard/stats", "get"): {"200", "401", "403"},
    ("/api/v1/services/health", "get"): {"200", "401", "403"},
    ("/api/v1/admins", "get"): {"200", "400", "401", "403"},
    ("/api/v1/admins", "post"): {"201", "400", "401", "403", "409", "413", "415", "503"},
    ("/api/v1/admins/{admin_id}", "get"): {"200", "400", "401", "403", "404"},
    ("/api/v1/admins/{admin_id}", "patch"): {"200", "400", "401", "403", "404", "409", "503"},
    ("/api/v1/audit", "get"): {"200", "400", "401", "403"},
}


async def test_document_types_every_route_and_documents_its_statuses(tmp_path):
    async with lifespan_client(create_app(settings_for(tmp_path))) as client:
        document = (await client.get("/openapi.json")).json()
        assert (await client.get("/docs")).status_code == 200
    assert "422" not in str(document["paths"])
    for (path, method), statuses in EXPECTED.items():
        responses = document["paths"][path][method]["responses"]
        assert set(responses) >= statuses, (path, method, set(responses))
        ok = next(code for code in responses if code.startswith("2"))
        assert responses[ok]["content"]["application/json"]["schema"] != {}, (path, method)
    proxy = document["paths"]["/api/v1/proxy/{service}/{path}"]
    assert set(proxy) >= {"get", "post", "put", "patch", "delete"}
    assert set(proxy["post"]["responses"]) >= {"400", "401", "403", "404", "413", "502", "503", "504", "default"}
    login_body = document["components"]["schemas"]["LoginIn"]
    assert login_body["required"] == ["email", "password"]
    assert document["components"]["schemas"]["AdminUpdateIn"]["additionalProperties"] is False

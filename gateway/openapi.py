"""The merged OpenAPI document behind ``/docs`` (contract §4.5).

Each service's ``/openapi.json`` is fetched (concurrently, with the gateway's own service key)
and re-rooted at its public prefix: ``/api/v1/x`` → ``/api/<service>/x``; other paths
(``/health``, ``/metrics``) are dropped; operations are tagged ``<service>`` with
``operationId`` prefixed ``<service>__``; components (and every ``$ref`` and security
requirement naming them) are renamed ``<service>__<Name>``. FastAPI's automatic 422 answers
are dropped everywhere: nothing behind the gateway answers 422.
"""

from __future__ import annotations

from typing import Any

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_V1 = "/api/v1"


def _rename_refs(node: Any, service: str) -> Any:
    """A copy of ``node`` with every ``#/components/<section>/<Name>`` ref renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                section, _, name = value[len("#/components/") :].partition("/")
                out[key] = f"#/components/{section}/{service}__{name}"
            else:
                out[key] = _rename_refs(value, service)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, service) for item in node]
    return node


def _rename_security(requirements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [{f"{service}__{name}": scopes for name, scopes in req.items()} for req in requirements]


def rebase(doc: dict[str, Any], service: str, prefix: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One service's paths (re-rooted, tagged, renamed) and components (renamed)."""
    default_security = doc.get("security")
    paths: dict[str, Any] = {}
    for path, item in (doc.get("paths") or {}).items():
        if path != _V1 and not path.startswith(_V1 + "/"):
            continue
        item = _rename_refs(item, service)
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            operation["tags"] = [service]
            if "operationId" in operation:
                operation["operationId"] = f"{service}__{operation['operationId']}"
            security = operation.get("security", default_security)
            if security is not None:
                operation["security"] = _rename_security(security, service)
        paths[prefix + path[len(_V1) :]] = item
    components: dict[str, dict[str, Any]] = {}
    for section, entries in (doc.get("components") or {}).items():
        if isinstance(entries, dict):
            components[section] = {
                f"{service}__{name}": _rename_refs(value, service) for name, value in entries.items()
            }
    return paths, components


_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def strip_validation_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without FastAPI's automatic 422 answers and their schemas: nothing behind the
    gateway answers 422 (validation failures are the contracts' 400 envelope)."""
    for item in (doc.get("paths") or {}).values():
        for method, operation in item.items():
            if method in _METHODS and isinstance(operation, dict):
                (operation.get("responses") or {}).pop("422", None)
    schemas = (doc.get("components") or {}).get("schemas")
    if isinstance(schemas, dict):
        for name in _VALIDATION_SCHEMAS:
            schemas.pop(name, None)
    return doc


def merge(
    own: dict[str, Any], services: list[tuple[str, str, str, dict[str, Any] | None, str | None]]
) -> dict[str, Any]:
    """The merged document: the gateway's own endpoints (tag ``gateway``) then each service's.

    ``services`` holds ``(name, public prefix, openapi URL, document or None, error or None)``.
    """
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for path, item in (own.get("paths") or {}).items():
        for method, operation in item.items():
            if method in _METHODS and isinstance(operation, dict):
                operation["tags"] = ["gateway"]
        paths[path] = item
    for section, entries in (own.get("components") or {}).items():
        components.setdefault(section, {}).update(entries)

    x_services: dict[str, Any] = {}
    for name, prefix, url, doc, error in services:
        if doc is None:
            x_services[name] = {"status": "unavailable", "error": error, "openapi": url}
            continue
        service_paths, service_components = rebase(strip_validation_errors(doc), name, prefix)
        paths.update(service_paths)
        for section, entries in service_components.items():
            components.setdefault(section, {}).update(entries)
        x_services[name] = {"status": "ok", "openapi": url}

    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "E-commerce API",
            "version": "1.0.0",
            "description": "Every service through the API gateway: `/api/<service>/…` is forwarded to that "
            "service's `/api/v1/…`.",
        },
        "paths": paths,
        "tags": [{"name": "gateway"}, *({"name": name} for name, *_ in services)],
        "x-services": x_services,
    }
    if components:
        merged["components"] = components
    return merged

"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools when installed; an
answer's head and body in one write, see :mod:`gateway.serving`)."""

from __future__ import annotations

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.app import serve

if __name__ == "__main__":
    from gateway.serving import http_protocol  # imports uvicorn, as serve() does: only when serving

    serve(create_app, GatewaySettings(), http=http_protocol())

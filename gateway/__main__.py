"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools when installed; an
answer's head and body in one write, see :mod:`gateway.serving`)."""

from __future__ import annotations

from gateway.app import create_app
from gateway.serving import http_protocol
from gateway.settings import GatewaySettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, GatewaySettings(), http=http_protocol())

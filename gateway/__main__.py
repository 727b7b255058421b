"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, GatewaySettings())

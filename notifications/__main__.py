"""``python -m notifications``: serve the app with uvicorn on ``HOST:PORT`` (default 3007)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from notifications.app import create_app
from notifications.settings import NotificationsSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, NotificationsSettings())

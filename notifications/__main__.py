"""``python -m notifications``: serve the app with uvicorn on ``HOST:PORT`` (default 3007)."""

from notifications.app import create_app
from notifications.settings import NotificationsSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, NotificationsSettings())

"""``python -m media`` starts the media service on ``PORT`` (3003)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from media.app import create_app
from media.settings import MediaSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, MediaSettings())

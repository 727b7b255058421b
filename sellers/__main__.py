"""``python -m sellers`` starts the sellers service on ``PORT`` (default 3002)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from sellers.app import create_app
from sellers.settings import SellersSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, SellersSettings())

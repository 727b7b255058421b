"""``python -m orders`` starts the orders service on ``PORT`` (default 3005)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from orders.app import create_app
from orders.settings import OrdersSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, OrdersSettings())

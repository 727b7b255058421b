"""``python -m customer`` starts the customer service on ``PORT`` (default 3001)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from customer.app import create_app
from customer.settings import CustomerSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, CustomerSettings())

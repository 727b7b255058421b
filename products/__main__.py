"""``python -m products`` starts the products service on ``PORT`` (default 3004)."""

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from products.app import create_app
from products.settings import ProductsSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, ProductsSettings())

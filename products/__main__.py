"""``python -m products`` starts the products service on ``PORT`` (default 3004)."""

import shared.lean  # first: keeps httpx's command-line client out, see its docstring
from products.app import create_app
from products.settings import ProductsSettings
from shared.app import serve

if __name__ == "__main__":
    # Large documents (a product holding its pending reservation lines) pass through this
    # process on every stock write and page read; see tune_malloc. Before any thread starts.
    shared.lean.tune_malloc()
    serve(create_app, ProductsSettings())

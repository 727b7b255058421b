"""``python -m products`` starts the products service on ``PORT`` (default 3004)."""

from products.app import create_app
from products.settings import ProductsSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_app, ProductsSettings())

"""Products and media wired together in-process: product images are validated and marked
used by the real media app (a Pillow-made JPEG uploaded first); an unknown image id is
refused and nothing is written; with media down the create answers 503."""

from __future__ import annotations

import uuid

import httpx

from media.app import create_app as create_media
from media.settings import MediaSettings
from products.app import create_app as create_products
from shared.testing import lifespan_client, running
from tests.media.media_kit import jpeg_bytes
from tests.products.conftest import KEY, Seller, dead_url
from tests.products.conftest import settings_for as products_settings


async def test_product_images_are_validated_and_marked_used_by_media(tmp_path):
    media_app = create_media(
        MediaSettings(
            _env_file=None,
            DATA_DIR=str(tmp_path / "media"),
            MEDIA_ROOT=str(tmp_path / "media" / "files"),
            SERVICE_KEY=KEY,
            MEDIA_CLEANUP_INTERVAL_SECONDS=0,
            LOG_LEVEL="warning",
        )
    )
    async with (
        running(media_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=media_app), base_url="http://media", headers={"X-Service-Key": KEY}
        ) as media,
    ):
        uploaded = await media.post(
            "/api/v1/media/upload", files={"file": ("lamp.jpg", jpeg_bytes(), "image/jpeg")}, data={"type": "product"}
        )
        assert uploaded.status_code == 201, uploaded.text
        image_id = uploaded.json()["data"]["id"]

        products_app = create_products(
            products_settings(tmp_path / "products"),
            transports={"media": httpx.ASGITransport(app=media_app)},
        )
        async with lifespan_client(products_app) as products:
            products.app = products_app  # type: ignore[attr-defined]
            seller = Seller(products)
            body = {"name": "Desk Lamp", "price": 25.5, "category": "home", "stock": 4}
            created = await products.post(
                "/api/v1/products", json={**body, "images": [{"media_id": image_id}]}, headers=seller.headers
            )
            assert created.status_code == 201, created.text
            assert created.json()["data"]["primaryImage"]["media_id"] == image_id
            info = await media.get(f"/api/v1/media/info/{image_id}")
            assert info.json()["data"]["is_used"] == 1  # the integer 0/1 of the contract, never a boolean
            assert info.json()["data"]["is_used"] is not True

            unknown = str(uuid.uuid4())
            refused = await products.post(
                "/api/v1/products", json={**body, "images": [{"media_id": unknown}]}, headers=seller.headers
            )
            assert refused.status_code == 400
            assert refused.json()["message"] == f"Invalid media files: {unknown}"
            listing = await products.get("/api/v1/products")
            assert [p["name"] for p in listing.json()["data"]] == ["Desk Lamp"]

    down = create_products(products_settings(tmp_path / "products-down", MEDIA_SERVICE_URL=dead_url()))
    async with lifespan_client(down) as products:
        products.app = down  # type: ignore[attr-defined]
        seller = Seller(products)
        response = await products.post(
            "/api/v1/products",
            json={"name": "Lamp", "price": 1, "category": "home", "stock": 1, "images": [{"media_id": image_id}]},
            headers=seller.headers,
        )
        assert response.status_code == 503 and response.json()["message"] == "Media service unavailable"
        assert (await products.get("/api/v1/products")).json()["data"] == []

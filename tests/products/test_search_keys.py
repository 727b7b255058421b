"""Search served by the search keys (word prefixes carrying visibility and sort fields), kept
in step with product changes, and built for a store written before they existed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from products.app import create_app
from products.domain import build_product
from products.repository import ProductRepository
from products.schemas import ProductCreateIn
from shared.store import new_id, open_store
from shared.store.mongo import MongoStore
from shared.testing import lifespan_client
from tests.products.conftest import API, SVC, Seller, create_product, settings_for
from tests.shared.mongomock_facade import MongomockAsyncClient

LIST = f"{API}/products"


async def ids(client, **params) -> tuple[list[str], int]:
    body = (await client.get(LIST, params=params)).json()
    return [p["id"] for p in body["data"]], body["pagination"]["total"]


async def keys_ready(client) -> None:
    repo: ProductRepository = client.app.state.repo
    for _ in range(100):
        if await repo.search_keys_ready():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("search keys never became ready")


@pytest.fixture(params=["sqlite", "mongomock"])
async def any_client(request, tmp_path, media, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the SQLite adapter, or on the MongoDB adapter's code over mongomock."""
    store = None
    if request.param == "mongomock":
        monkeypatch.setattr("shared.store.mongo.AsyncMongoClient", MongomockAsyncClient)
        monkeypatch.setattr(MongomockAsyncClient, "down", False)
        store = MongoStore("mongodb://mongomock", f"products_{new_id()}")
    app = create_app(settings_for(tmp_path, MEDIA_SERVICE_URL=media.url), store=store)
    async with lifespan_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_search_pages_come_from_the_keys(any_client):
    client = any_client
    seller, other_seller = Seller(client), Seller(client)
    await keys_ready(client)
    a = await create_product(client, seller, name="Kalomine lamp", price=30)
    b = await create_product(client, seller, name="Kalomi desk", description="a lamp", price=10)
    c = await create_product(client, other_seller, name="Desk", tags=["kalomines"], price=20)
    await create_product(client, seller, name="Chair", description="kal omine", price=5)
    assert await ids(client, search="kalomi") == ([c["id"], b["id"], a["id"]], 3)
    assert await ids(client, search="KALOMIN") == ([c["id"], a["id"]], 2)  # starts two indexed words
    assert await ids(client, search="kalomines") == ([c["id"]], 1)
    assert await ids(client, search="kalominesx") == ([], 0)
    assert await ids(client, search="kalomi", sort="price") == ([b["id"], c["id"], a["id"]], 3)
    assert await ids(client, search="kalomi", sort="-price", limit=2, page=2) == ([b["id"]], 3)
    assert await ids(client, search="lamp kalomi") == ([b["id"], a["id"]], 2)
    assert await ids(client, search="kalomine desk") == ([c["id"]], 1)
    assert await ids(client, search="desk kalo ka") == ([c["id"], b["id"]], 2)

    # Visibility and price follow the product.
    await client.put(f"{LIST}/{a['id']}", json={"status": "inactive"}, headers=seller.headers)
    assert await ids(client, search="kalomin") == ([c["id"]], 1)
    await client.put(f"{LIST}/{a['id']}", json={"status": "active", "price": 1}, headers=seller.headers)
    assert await ids(client, search="kalomi", sort="price") == ([a["id"], b["id"], c["id"]], 3)
    hide = {"sellerId": seller.id, "isActive": False}
    assert (await client.post(f"{API}/service/products/seller-status", json=hide, headers=SVC)).status_code == 200
    assert await ids(client, search="kalomi") == ([c["id"]], 1)
    show = {"sellerId": seller.id, "isActive": True}
    await client.post(f"{API}/service/products/seller-status", json=show, headers=SVC)
    assert await ids(client, search="kalomi") == ([c["id"], b["id"], a["id"]], 3)
    await client.put(f"{LIST}/{b['id']}", json={"name": "Desk"}, headers=seller.headers)
    assert await ids(client, search="kalomi") == ([c["id"], a["id"]], 2)
    await client.delete(f"{LIST}/{c['id']}", headers=other_seller.headers)
    assert await ids(client, search="kalomi") == ([a["id"]], 1)
    restored = await client.patch(f"{API}/products/admin/{c['id']}/status", json={"status": "active"}, headers=SVC)
    assert restored.status_code == 200
    assert await ids(client, search="kalomi") == ([c["id"], a["id"]], 2)
    # Owner views and filtered searches read the products; same semantics.
    mine = await client.get(LIST, params={"search": "kalomi", "status": "all"}, headers=seller.headers)
    assert [p["id"] for p in mine.json()["data"]] == [a["id"]]
    assert await ids(client, search="kalomi", category="electronics", sort="name") == ([c["id"], a["id"]], 2)


async def test_store_written_before_search_keys_gets_them(tmp_path, app_factory):
    settings = settings_for(tmp_path)
    store = open_store(mongodb_uri=None, data_dir=settings.DATA_DIR, database="products_db")
    await store.connect()
    docs = []
    for name in ("Kalomine lamp", "Desk", "Kalomi chair"):
        doc, words = build_product(
            ProductCreateIn.model_validate({"name": name, "price": 5}),
            seller_id=new_id(),
            images=[],
            seller_active=True,
        )
        docs.append(doc)
        # the word index of the previous version
        await store.collection("product_terms").insert_many(
            [{"_id": f"{w} {doc['_id']}", "productId": doc["_id"]} for w in words]
        )
    await store.collection("products").insert_many(docs)
    await store.close()

    async with app_factory() as client:
        await keys_ready(client)
        assert await ids(client, search="kalom") == ([docs[2]["_id"], docs[0]["_id"]], 2)
        repo: ProductRepository = client.app.state.repo
        assert await repo.old_terms.count({}) == 0
        assert await repo.build_search_keys() == 0  # done once
        keys = await repo.search.count({})
        await repo.migrations.delete_many({})
        assert await repo.build_search_keys() == 3  # run again (another process): nothing doubled
        assert await repo.search.count({}) == keys


async def test_a_word_starting_several_words_counts_each_product_once(any_client):
    client = any_client
    seller = Seller(client)
    await keys_ready(client)
    both = await create_product(client, seller, name="Lumo lumos", description="lumosity", price=3)
    one = await create_product(client, seller, name="Lumos", price=1)
    await create_product(client, seller, name="Alumo", price=2)
    assert await ids(client, search="lumo") == ([one["id"], both["id"]], 2)
    assert await ids(client, search="lumo", sort="price") == ([one["id"], both["id"]], 2)
    assert await ids(client, search="lumo", sort="-price", limit=1, page=2) == ([one["id"]], 2)
    assert await ids(client, search="lumos") == ([one["id"], both["id"]], 2)
    assert await ids(client, search="lumosi") == ([both["id"]], 1)

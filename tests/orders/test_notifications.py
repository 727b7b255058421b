"""Emails through the real notifications app and a real SMTP server (aiosmtpd): an outage
never affects placement, and what was queued is delivered once it is back (checklist 21)."""

from __future__ import annotations

from tests.integration.conftest import inbox  # noqa: F401  (the SMTP server fixture)
from tests.orders.conftest import API, SVC, open_shop


def smtp(inbox) -> dict:  # noqa: F811
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(inbox.port),
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "shop@example.com",
        "SMTP_LOCAL_HOSTNAME": "tests.local",
    }


async def test_21_notifications_down_then_delivered_once(tmp_path, inbox):  # noqa: F811
    async with open_shop(tmp_path, notifications_settings=smtp(inbox)) as shop:
        s1, s2, customer = await shop.new_seller(), await shop.new_seller(), await shop.new_customer()
        p1, p2 = await shop.new_product(s1, price=4.5), await shop.new_product(s2, price=2)
        shop.links["notifications"].down = True
        order = await shop.placed(customer, (p1, 2), (p2, 1))
        rows = await shop.outbox_rows(order["id"])
        pending = await shop.orders.get(
            f"{API}/service/outbox", params={"orderId": order["id"], "status": "pending"}, headers=SVC
        )
        entries = pending.json()["data"]["entries"]
        assert sorted(e["template"] for e in entries) == ["new_order_seller", "new_order_seller", "order_confirmation"]
        assert len(rows) == 3 and all(e["attempts"] >= 1 and e["lastError"] for e in entries)
        before = len(inbox.messages)

        shop.links["notifications"].down = False
        drained = await shop.orders.post(f"{API}/service/outbox/drain", headers=SVC)
        assert drained.json()["data"] == {"sent": 3, "retrying": 0, "failed": 0}
        assert {e["status"] for e in await shop.outbox_rows(order["id"])} == {"sent"}
        await shop.orders.post(f"{API}/service/outbox/drain", headers=SVC)  # nothing is sent twice

        mails = inbox.messages[before:]
        to = sorted(m["To"].addresses[0].addr_spec for m in mails)
        assert to == sorted([customer.email, s1.email, s2.email]), to
        confirmation = next(m for m in mails if m["To"].addresses[0].addr_spec == customer.email)
        assert order["orderNumber"] in confirmation["Subject"]
        text = confirmation.get_body(("plain",)).get_content()
        assert "11.00" in text  # 2 × 4.50 + 2.00


async def test_status_email_and_unknown_seller(tmp_path, inbox):  # noqa: F811
    async with open_shop(tmp_path, notifications_settings=smtp(inbox)) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        order = await shop.placed(customer, (await shop.new_product(seller), 1))
        await shop.set_status(order["id"], "confirmed", notes="On its way soon")
        await shop.settle()
        rows = {e["dedupeKey"]: e for e in await shop.outbox_rows(order["id"])}
        assert rows[f"{order['id']}:status:confirmed"]["status"] == "sent"
        ghost = shop.app.state.orders.effects
        await shop.app.state.outbox.enqueue(
            kind="seller_notification",
            dedupe_key=f"{order['id']}:new_order_seller:{'e' * 24}",
            payload={"orderId": order["id"], "sellerId": "e" * 24, "template": "new_order_seller"},
        )
        assert ghost is not None
        assert await shop.app.state.outbox.attempt(f"{order['id']}:new_order_seller:{'e' * 24}") == "failed"

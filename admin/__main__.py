"""``python -m admin`` starts the admin service on ``PORT`` (default 3006);
``python -m admin demo-data`` adds the demo admins of contract §5.5 (refused in production)."""

from __future__ import annotations

import asyncio
import sys

import shared.lean  # noqa: F401  (first: keeps httpx's command-line client out, see its docstring)
from admin.app import create_app
from admin.settings import AdminSettings
from shared.app import serve


async def demo_data(settings: AdminSettings) -> list[str]:
    """Add the three demo admins that are absent; the emails added."""

    app = create_app(settings)
    store = app.state.store
    await store.connect()
    try:
        await app.state.admins.repo.create_indexes()
        return await app.state.admins.add_demo_admins()
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    settings = AdminSettings()
    if argv[:1] == ["demo-data"]:
        if settings.ENV == "production":
            print("demo-data is refused when ENV=production", file=sys.stderr)
            return 1
        added = asyncio.run(demo_data(settings))
        print(f"demo admins added: {', '.join(added) if added else 'none (all present)'}")
        return 0
    if argv:
        print("usage: python -m admin [demo-data]", file=sys.stderr)
        return 2
    serve(create_app, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

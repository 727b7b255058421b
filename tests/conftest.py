"""Suite-wide pytest hooks."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator

import pytest

from shared.testing import running_redis

REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per skip reason (e.g. the MongoDB leg without MONGODB_URI), not one per test."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"skipped {count}: {reason}")


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A fresh ``redis-server`` (Debian package ``redis-server``) on a free loopback port."""
    if REDIS is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
    with running_redis(REDIS, tmp_path) as url:
        yield url

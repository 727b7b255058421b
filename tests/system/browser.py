"""Headless Chromium (Debian's ``chromium``) for tests of pages a person looks at."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags that keep Chromium off the (closed) network and quiet; as root it needs --no-sandbox.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package chromium; .ci/run installs it)",
)


def _run(*args: str, budget_ms: int) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_dom(url: str, *, budget_ms: int = 10_000) -> str:
    """The page's DOM after its scripts ran (``--dump-dom``)."""
    return _run("--dump-dom", url, budget_ms=budget_ms)


def screenshot(url: str, path: Path, *, size: str = "1280,1600", budget_ms: int = 10_000) -> Path:
    """A PNG of the page as a person would see it."""
    _run(f"--screenshot={path}", f"--window-size={size}", url, budget_ms=budget_ms)
    assert path.exists() and path.stat().st_size > 0
    return path

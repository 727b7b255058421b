"""What each service process imports at start (issue 15, Footprint): a library only where the
service uses it, and none of the optional parts its libraries would load for nothing (httpx's
command-line client, PyJWT's ``cryptography``). Each check runs in a fresh interpreter, as
``python -m <service>`` does, without ``MONGODB_URI`` or ``REDIS_URL``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["gateway", "customer", "sellers", "media", "products", "orders", "admin", "notifications"]
WATCHED = ["cryptography", "rich", "click", "pygments", "pymongo", "redis", "PIL", "jinja2", "aiosmtplib", "httpx"]
# the watched libraries each service is expected to load at start; any other is a regression
EXPECTED = {
    "gateway": set(),
    "media": {"PIL", "httpx"},
    "notifications": {"jinja2", "aiosmtplib", "httpx"},
}

PROBE = """
import importlib, json, sys
service = sys.argv[1]
importlib.import_module(service + ".__main__")
settings = importlib.import_module(service + ".settings")
app = importlib.import_module(service + ".app")
app.create_app(getattr(settings, service.capitalize() + "Settings")())
print(json.dumps(sorted(m for m in sys.argv[2:] if m in sys.modules)))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_starts_with_only_what_it_uses(service, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "REDIS_URL")}
    env.update({"DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "warning"})
    done = subprocess.run(
        [sys.executable, "-c", PROBE, service, *WATCHED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert loaded == EXPECTED.get(service, {"httpx"})

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


MALLOC_PROBE = """
import json, os
from shared.lean import tune_malloc
print(json.dumps([tune_malloc(), os.environ["MALLOC_ARENA_MAX"], os.environ["MALLOC_MMAP_THRESHOLD_"]]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
@pytest.mark.parametrize(("given", "expected"), [(None, "2"), ("4", "4")])
def test_tune_malloc_sets_glibc_and_passes_it_to_workers(given, expected):
    """The products service calls it first: two arenas and a 32 KiB mmap threshold unless the
    operator set glibc's variables, which are left for the worker processes uvicorn starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(ROOT)
    if given is not None:
        env["MALLOC_ARENA_MAX"] = given
    out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [True, expected, "32768"]

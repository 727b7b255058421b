"""What a service process leaves out of memory: optional parts its libraries import eagerly.

Each service's ``__main__`` imports this module first, before anything imports httpx: httpx
imports its command-line client (click, rich, pygments) whenever those are installed, and rich
is installed for ``scripts/demo``. That is about 5 MB of RSS per process (``bench/footprint.py``)
for a client no service runs. httpx's ``__init__`` treats an ``ImportError`` of the client as
"the ``httpx[cli]`` extra is not installed", so blocking the one module is enough.

(PyJWT's optional ``cryptography`` is left out where it is imported: ``shared.auth``.)
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

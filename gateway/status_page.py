"""``GET /status``: an HTML page showing every service's health, latency and breaker state.

No build step and no external assets: the page and its script are served by the gateway
itself (the script as ``/status.js``, so the gateway's CSP ``script-src 'self'`` holds). The
script reads ``/api/status`` every few seconds and redraws the table.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter()

REFRESH_SECONDS = 3

STATUS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop status</title>
<style>
  body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem;
         color: #1f2933; background: #f5f7fa; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  #summary { margin: 0 0 1.25rem; color: #52606d; }
  table { border-collapse: collapse; width: 100%; max-width: 960px; background: #fff;
          box-shadow: 0 1px 3px rgba(0,0,0,.1); }
  th, td { text-align: left; padding: .6rem .9rem; border-bottom: 1px solid #e4e7eb; }
  th { background: #e4e7eb; font-weight: 600; }
  .badge { display: inline-block; padding: .1rem .6rem; border-radius: 999px; font-weight: 600; }
  .healthy { background: #c6f7e2; color: #014d40; }
  .unhealthy { background: #ffe3e3; color: #8a041a; }
  .closed { color: #014d40; } .open { color: #8a041a; font-weight: 600; } .half-open { color: #b44d12; }
  .error { color: #8a041a; font-size: .9em; }
  footer { margin-top: 1rem; color: #7b8794; font-size: .85em; }
</style>
</head>
<body>
<h1>Shop status</h1>
<p id="summary">Loading&hellip;</p>
<table>
  <thead><tr><th>Service</th><th>Health</th><th>Latency</th><th>Breaker</th><th>Detail</th></tr></thead>
  <tbody id="services"></tbody>
</table>
<footer>Refreshes every <span id="refresh">__REFRESH__</span> s &middot;
  last update <span id="updated">never</span></footer>
<script src="/status.js"></script>
</body>
</html>
""".replace("__REFRESH__", str(REFRESH_SECONDS))

STATUS_JS = """"use strict";
(function () {
  var REFRESH_MS = __REFRESH__ * 1000;
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { var span = document.createElement("span"); span.className = cls; span.textContent = text;
               td.appendChild(span); } else { td.textContent = text; }
    return td;
  }
  function draw(status) {
    var body = document.getElementById("services");
    body.textContent = "";
    var names = Object.keys(status.services || {});
    var healthy = 0;
    names.forEach(function (name) {
      var s = status.services[name];
      var ok = s.status === "healthy";
      if (ok) { healthy += 1; }
      var circuit = (s.circuit && s.circuit.state) || "unknown";
      var row = document.createElement("tr");
      row.setAttribute("data-service", name);
      row.appendChild(cell(name));
      row.appendChild(cell(ok ? "healthy" : "unhealthy", "badge " + (ok ? "healthy" : "unhealthy")));
      row.appendChild(cell(s.responseTime || "\\u2014"));
      row.appendChild(cell(circuit, circuit.replace("_", "-")));
      row.appendChild(cell(s.error || "", "error"));
      body.appendChild(row);
    });
    document.getElementById("summary").textContent =
      healthy + " of " + names.length + " services healthy \\u00b7 gateway " + (status.gateway || "unknown");
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  }
  function refresh() {
    fetch("/api/status", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(draw)
      .catch(function () {
        document.getElementById("summary").textContent = "The gateway did not answer /api/status.";
      })
      .finally(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
""".replace("__REFRESH__", str(REFRESH_SECONDS))


@router.get("/status", include_in_schema=False)
async def status_page() -> HTMLResponse:
    """The status page (HTML)."""
    return HTMLResponse(STATUS_HTML, headers={"cache-control": "no-store"})


@router.get("/status.js", include_in_schema=False)
async def status_script() -> Response:
    """The status page's script."""
    return Response(STATUS_JS, media_type="text/javascript", headers={"cache-control": "no-store"})

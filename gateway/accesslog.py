"""The access log (contract §7.8): one line per request, after its last byte went out.

``GET /api/customer/x -> customer 200 12ms rid=<id> ip=<ip>`` on the ``gateway.access`` logger
(JSON fields with ``LOG_FORMAT=json``), with the same text and destination as any other line.
Every request writes one, so it is made cheaply: when the console handler of
``configure_logging`` alone would write it as text, the line goes straight to it
(``shared.app.write_info_line``: no record, no generic handler steps; a fifth of the price);
otherwise (JSON, a log file, a test's capture handler) it is a record, copied from a template
made once per process rather than built by ``LogRecord``'s constructor (which looks up the
caller's file name, the thread, the process and the multiprocessing name every time).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from shared.app import redact_path, write_info_line

if TYPE_CHECKING:
    from gateway.edge import Exchange

access_log = logging.getLogger("gateway.access")

LINE = "%s %s -> %s %s %dms rid=%s ip=%s"


class AccessLog:
    """Writes the access line of a request (``LOG_FORMAT=json``: with its ``fields``)."""

    __slots__ = ("_record_class", "_template", "json_fields")

    def __init__(self, *, json_fields: bool) -> None:
        self.json_fields = json_fields
        self._template: dict[str, Any] | None = None
        self._record_class: type[logging.LogRecord] = logging.LogRecord

    def write(self, method: str, path: str, ex: Exchange, elapsed: float) -> None:
        logger = access_log
        if not logger.isEnabledFor(logging.INFO):
            return
        path = redact_path(path)
        ms = elapsed * 1000
        if not self.json_fields and write_info_line(
            logger, f"{method} {path} -> {ex.target} {ex.status} {int(ms)}ms rid={ex.request_id} ip={ex.client_ip}"
        ):
            return
        record = self._record((method, path, ex.target, ex.status, ms, ex.request_id, ex.client_ip))
        if self.json_fields:
            record.fields = {
                "method": method,
                "path": path,
                "target": ex.target,
                "status": ex.status,
                "durationMs": round(ms, 1),
                "requestId": ex.request_id,
                "clientIp": ex.client_ip,
            }
        logger.handle(record)

    def _record(self, args: tuple[Any, ...]) -> logging.LogRecord:
        """A record like ``makeRecord``'s, stamped now: the template's attributes, new time and args."""
        template = self._template
        if template is None:
            made = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, LINE, (), None)
            template = self._template = dict(made.__dict__)
            self._record_class = type(made)  # a record factory's class, if one is installed
        record = self._record_class.__new__(self._record_class)
        record.__dict__.update(template)
        now = time.time()
        record.created = now
        record.msecs = int((now - int(now)) * 1000) + 0.0
        record.relativeCreated = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
        record.args = args
        return record

"""The log handler and formatter of ``configure_logging``: the same text as logging's own, the
console flushed once per event-loop iteration while a loop runs, at once otherwise."""

from __future__ import annotations

import asyncio
import logging

from shared.app import _ConsoleHandler, _Formatter, _JsonFormatter

TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def record_at(created: float) -> logging.LogRecord:
    record = logging.LogRecord("shop.test", logging.INFO, __file__, 1, "line %s", ("one",), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return record


def test_the_timestamp_written_once_a_second_reads_as_loggings_own():
    plain = logging.Formatter(TEXT)
    ours = _Formatter(TEXT)
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0005, 1_700_000_001.5, 1_700_003_601.25):
        record = record_at(created)
        assert ours.format(record) == plain.format(record)
    record = record_at(1_700_000_001.5)
    assert _Formatter(TEXT, datefmt="%H:%M").format(record) == logging.Formatter(TEXT, datefmt="%H:%M").format(record)
    assert _JsonFormatter().format(record).startswith('{"time": "' + plain.formatTime(record))


def test_the_console_flushes_at_once_outside_a_loop(tmp_path):
    path = tmp_path / "console.log"
    with path.open("w") as stream:
        handler = _ConsoleHandler(stream)
        handler.setFormatter(_Formatter(TEXT))
        handler.handle(record_at(1_700_000_000.0))
        assert path.read_text().endswith(" INFO shop.test line one\n")


async def test_the_console_flushes_once_per_loop_iteration(tmp_path):
    path = tmp_path / "console.log"
    with path.open("w") as stream:
        handler = _ConsoleHandler(stream)
        handler.setFormatter(_Formatter(TEXT))
        for _ in range(3):
            handler.handle(record_at(1_700_000_000.0))
        assert path.read_text() == ""  # written to the stream's buffer, not yet to the file
        await asyncio.sleep(0)
        assert path.read_text().count("line one\n") == 3
        handler.handle(record_at(1_700_000_000.0))
        await asyncio.sleep(0)
        assert path.read_text().count("line one\n") == 4


async def test_per_request_lines_wait_for_the_flush_and_keep_their_order(tmp_path):
    path = tmp_path / "console.log"
    with path.open("w") as stream:
        handler = _ConsoleHandler(stream)
        formatter = _Formatter(TEXT)
        handler.setFormatter(formatter)
        handler.plain_formatter = formatter
        handler.write_info("gateway.access", "first")
        handler.write_info("gateway.access", "second")
        handler.handle(record_at(1_700_000_000.0))  # a record goes after the lines before it
        handler.write_info("gateway.access", "third")
        await asyncio.sleep(0)
        lines = path.read_text().splitlines()
        assert [line.split(" ", 4)[-1] for line in lines] == ["first", "second", "line one", "third"]
        assert lines[0].split(" ")[2:4] == ["INFO", "gateway.access"]


def test_a_per_request_line_outside_a_loop_is_written_at_once(tmp_path):
    path = tmp_path / "console.log"
    with path.open("w") as stream:
        handler = _ConsoleHandler(stream)
        handler.plain_formatter = _Formatter(TEXT)
        handler.write_info("gateway.access", "now")
        assert path.read_text().endswith(" INFO gateway.access now\n")

"""shared.metrics.RequestTally: the families Prometheus reads are those of ``Counter`` and
``Histogram`` fed the same requests (their ``_created`` samples aside)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from shared.metrics import RequestTally

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REQUESTS = [
    ("GET", "/a", "200", 0.001),
    ("GET", "/a", "200", 0.005),  # on a bound: counted in that bucket (le)
    ("GET", "/a", "404", 0.3),
    ("POST", "/b", "201", 12.0),  # above every bound: +Inf only
    ("POST", "/b", "201", 0.0101),
]


def exposition(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


def test_the_tally_reads_as_prometheus_counter_and_histogram() -> None:
    theirs = CollectorRegistry()
    counter = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=theirs)
    histogram = Histogram(
        "http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=theirs, buckets=BUCKETS
    )
    ours = CollectorRegistry()
    tally = RequestTally(
        ours,
        counter=("http_requests_total", "HTTP requests", ("method", "route", "status")),
        histogram=("http_request_duration_seconds", "HTTP request latency", ("method", "route")),
        buckets=BUCKETS,
    )
    for method, route, status, seconds in REQUESTS:
        counter.labels(method, route, status).inc()
        histogram.labels(method, route).observe(seconds)
        tally.observe((method, route, status), (method, route), seconds)
    assert exposition(ours) == exposition(theirs)


def test_an_untimed_request_is_only_counted() -> None:
    registry = CollectorRegistry()
    tally = RequestTally(
        registry, counter=("c_total", "c", ("k",)), histogram=("h_seconds", "h", ("k",)), buckets=(1.0,)
    )
    tally.observe(("x",), None, 0.5)
    text = generate_latest(registry).decode()
    assert 'c_total{k="x"} 1.0' in text
    assert "h_seconds_count" not in text


def test_series_past_the_cap_are_counted_as_other(monkeypatch) -> None:
    monkeypatch.setattr("shared.metrics.MAX_SERIES", 2)
    registry = CollectorRegistry()
    tally = RequestTally(
        registry, counter=("c_total", "c", ("m",)), histogram=("h_seconds", "h", ("m",)), buckets=(1.0,)
    )
    for method in ("GET", "POST", "FOO", "BAR", "GET"):
        tally.observe((method,), (method,), 0.5)
    text = generate_latest(registry).decode()
    assert 'c_total{m="GET"} 2.0' in text and 'c_total{m="other"} 2.0' in text
    assert 'h_seconds_count{m="other"} 2.0' in text and "FOO" not in text

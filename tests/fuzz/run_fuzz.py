#!/usr/bin/env python
"""Schemathesis over each built service's own OpenAPI document (ARCHITECTURE.md "API documents").

    python tests/fuzz/run_fuzz.py                 # every service package found
    python tests/fuzz/run_fuzz.py products media  # some of them
    python tests/fuzz/run_fuzz.py --list          # what would run

For each service package (a top-level folder with ``__main__.py`` and ``app.py``; ``orders``
and ``admin`` are picked up once they exist) it:

1. starts ``python -m <service>`` on a free loopback port with a temporary ``DATA_DIR`` and
   ``MEDIA_ROOT``; every ``*_SERVICE_URL`` points at a closed port, so no request reaches
   another process (upstream calls answer 503), and ``RATE_LIMIT_MAX`` is raised so the
   limiter does not hide the rest of an operation after a few requests;
2. waits for ``/health`` and finds the document: ``/openapi.json``, else ``/api/openapi.json``;
3. runs ``schemathesis run`` with the checks ``not_a_server_error, status_code_conformance,
   response_schema_conformance, content_type_conformance``, a fixed seed and at most
   ``--max-examples`` test cases per operation and phase (examples, coverage, fuzzing;
   every case runs, also after a failure), twice:

   * ``anonymous``: no credentials;
   * ``credentials``: ``X-Service-Key`` from the settings (``SERVICE_KEY``, first key) and
     ``Authorization: Bearer`` of a user registered and logged in through the service
     itself (customer, sellers) or, where a service only verifies tokens locally (products,
     media, orders), an access token signed with ``JWT_SECRET`` for a fresh user of the
     role it serves ("minted" in the output). A route taking either gets the service key
     (it wins when present, ``shared.auth.any_of``); a user-only route gets the token.

It prints, per service and mode, the operations tested, test cases, requests, failures and
errors, then the distinct failure kinds with one example each, and exits 1 on any failure
or error (2 when a service cannot be started). Reports (JSON, JUnit, HAR) are kept with
``--reports DIR``. Two services run side by side (``--jobs``); the whole run is sized for
a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.auth import SERVICE_KEY_HEADER, issue_token  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

ORDER = ["customer", "sellers", "media", "products", "orders", "admin", "notifications", "gateway"]
NOT_SERVICES = {"shared", "tests", "bench", "scripts", "data"}
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"
PHASES = "examples,coverage,fuzzing"
DEFAULT_SEED = 20261206
REAL_PEERS: dict[str, tuple[str, ...]] = {"orders": ("products", "customer")}
"""Peers started for real beside a service under fuzz (see ``fuzz_service``)."""
CLOSED_UPSTREAM = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
# Services that verify user tokens locally, and the role a minted token gets there.
MINTED_ROLE = {"products": "seller", "media": "seller", "orders": "customer"}
# Where no user token applies (service keys only, or public).
NO_BEARER = {"notifications", "gateway"}
NO_SERVICE_KEY = {"gateway"}


def discover() -> list[str]:
    """Top-level packages that are runnable services, in the architecture's order."""
    found = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir()
        and path.name not in NOT_SERVICES
        and (path / "__main__.py").is_file()
        and (path / "app.py").is_file()
    }
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def schemathesis_command() -> list[str]:
    beside = Path(sys.executable).parent / "schemathesis"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("schemathesis") or shutil.which("st")
    if found:
        return [found]
    return [sys.executable, "-m", "schemathesis.cli"]


@dataclass
class ModeResult:
    mode: str
    operations: str = "-"
    test_cases: int = 0
    requests: int = 0
    failures: int = 0
    errors: int = 0
    exit_code: int = 0
    note: str = ""
    kinds: dict[str, str] = field(default_factory=dict)  # failure kind -> one example
    received: dict[str, Counter[str]] = field(default_factory=dict)  # failure kind -> "Received: ..." lines
    affected: dict[str, set[str]] = field(default_factory=dict)  # failure kind -> operations
    error_titles: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceResult:
    name: str
    document: str = ""
    seconds: float = 0.0
    problem: str = ""
    modes: list[ModeResult] = field(default_factory=list)


@contextlib.contextmanager
def running_service(
    name: str, workdir: Path, settings: ServiceSettings, upstreams: dict[str, str] | None = None
) -> Iterator[str]:
    """``python -m <name>`` on a free port; yields its base URL once ``/health`` answers.
    ``upstreams`` names the peers that really run (others point at a closed port)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    env = {
        **os.environ,
        "PORT": str(port),
        "DATA_DIR": str(data),
        "MEDIA_ROOT": str(data / "media"),
        "SERVICE_KEY": settings.SERVICE_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "RATE_LIMIT_MAX": "1000000",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "warning",
        "ENV": "development",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MONGODB_URI", None)  # the embedded store: nothing to clean up afterwards
    for service in ORDER:
        env[f"{service.upper()}_SERVICE_URL"] = (upstreams or {}).get(service, CLOSED_UPSTREAM)
    log = (workdir / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", name], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"exited with {process.returncode}: {tail(workdir / 'service.log')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no /health answer within 60 s: {tail(workdir / 'service.log')}")
            time.sleep(0.25)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def find_document(base: str) -> str:
    for path in ("/openapi.json", "/api/openapi.json"):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(base + path, timeout=10)
            if answer.status_code == 200 and "paths" in answer.json():
                return base + path
    raise RuntimeError("no OpenAPI document at /openapi.json or /api/openapi.json")


def _token_from(answer: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        data = answer.json().get("data") or {}
        for holder in (data, data.get("tokens") or {}):
            token = holder.get("token") or holder.get("accessToken")
            if isinstance(token, str):
                return token
    return None


def registered_user_token(name: str, base: str) -> str | None:
    """Register a user through the service's own API and log in; None when it cannot."""
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    password = "Fuzz-Passw0rd!"
    person = {"firstName": "Fuzz", "lastName": "Tester", "email": email, "password": password}
    if name == "customer":
        register, login, body = "/api/v1/customers/register", "/api/v1/customers/login", person
    elif name == "sellers":
        register, login = "/api/v1/sellers/signup", "/api/v1/sellers/login"
        body = {
            **person,
            "confirmPassword": password,
            "phone": "5551234567",
            "businessName": "Fuzz Shop",
            "businessType": "individual",
            "address": {
                "street": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "USA",
            },
        }
    else:
        return None
    with httpx.Client(base_url=base, timeout=20) as client:
        created = client.post(register, json=body)
        if created.status_code >= 300:
            raise RuntimeError(f"register answered {created.status_code}: {created.text[:200]}")
        token = _token_from(client.post(login, json={"email": email, "password": password})) or _token_from(created)
    if token is None:
        raise RuntimeError("login gave no token")
    return token


def bearer_for(name: str, base: str, settings: ServiceSettings) -> tuple[str, str] | None:
    """(token, how it was made) for the bearer mode, or None where no user applies."""
    if name in NO_BEARER:
        return None
    if name in ("customer", "sellers"):
        token = registered_user_token(name, base)
        return (token, "registered user") if token else None
    role = MINTED_ROLE.get(name, "admin" if name == "admin" else "customer")
    token, _ = issue_token(settings, subject=uuid.uuid4().hex[:24], role=role, email=f"fuzz-{role}@example.com")
    return token, f"minted {role} token"


def run_schemathesis(
    document: str, headers: dict[str, str], reports: Path, *, max_examples: int, seed: int
) -> tuple[int, str]:
    command = [
        *schemathesis_command(),
        "run",
        document,
        "--checks",
        CHECKS,
        "--phases",
        PHASES,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",  # hypothesis' lambda descriptions are not thread-safe (runtime errors with 2 workers)
        "--no-shrink",
        "--continue-on-failure",  # every case of an operation runs: one undocumented 401 hides no 500
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "15",
        "--report",
        "json,junit,har",
        "--report-dir",
        str(reports),
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, cwd=reports, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    return done.returncode, done.stdout[-4000:] + done.stderr[-2000:]


def read_reports(result: ModeResult, reports: Path) -> None:
    json_files = sorted(reports.glob("json-*.json"))
    if not json_files:
        result.errors += 1
        result.error_titles["no report"] = "schemathesis wrote no JSON report"
        return
    report = json.loads(json_files[-1].read_text())
    ops = report.get("operations", {})
    result.operations = f"{ops.get('tested', 0)}/{ops.get('total', 0)}"
    result.test_cases = report.get("test_cases", {}).get("generated", 0)
    for failure in report.get("failures", []):
        result.failures += failure.get("count", 0)
        result.kinds.setdefault(f"{failure.get('code', '')} {failure.get('title', '')}".strip(), "")
    for error in report.get("errors", []):
        result.errors += error.get("count", 0)
        result.error_titles.setdefault(error.get("title", "error"), "")
    for har in reports.glob("har-*.json"):
        with contextlib.suppress(ValueError, OSError):
            result.requests += len(json.loads(har.read_text()).get("log", {}).get("entries", []))
    for junit in reports.glob("junit-*.xml"):
        examples(result, junit)


def examples(result: ModeResult, junit: Path) -> None:
    """One example per failure kind (and error title) from the JUnit report."""
    try:
        root = ET.parse(junit).getroot()
    except ET.ParseError:
        return
    for case in root.iter("testcase"):
        operation = case.attrib.get("name", "?")
        for child in case:
            text = child.text or ""
            if child.tag == "error":
                for known in result.error_titles:
                    if not result.error_titles[known] and known in text:
                        result.error_titles[known] = f"{operation}: {' '.join(text.split())[:300]}"
                continue
            for kind in result.kinds:
                marker = f"- {kind}"
                if marker not in text:
                    continue
                for block in text.split(marker)[1:]:
                    lines = [line.strip() for line in block.splitlines() if line.strip()]
                    got = next((ln.removeprefix("Received: ") for ln in lines if ln.startswith("Received:")), "")
                    if got:
                        result.received.setdefault(kind, Counter())[got] += 1
                result.affected.setdefault(kind, set()).add(operation)
                if result.kinds[kind]:
                    continue
                block = text[text.index(marker) :]
                lines = [line.strip() for line in block.splitlines() if line.strip()]
                detail = [ln for ln in lines[1:] if not ln.startswith("- ")][:4]
                curl = next((ln for ln in lines if ln.startswith("curl ")), "")
                result.kinds[kind] = f"{operation}: {' / '.join(detail)[:400]}" + (
                    f"\n        {curl[:300]}" if curl else ""
                )


def fuzz_service(name: str, args: argparse.Namespace, settings: ServiceSettings, root: Path) -> ServiceResult:
    result = ServiceResult(name)
    started = time.monotonic()
    workdir = root / name
    workdir.mkdir(parents=True)
    try:
        with contextlib.ExitStack() as peers:
            # A service whose operations only delegate to a peer (orders' inventory pass-through)
            # is fuzzed with that peer running: a 503 for a peer that is down is a real answer,
            # but Schemathesis counts every 5xx as a server error.
            upstreams = {
                peer: peers.enter_context(running_service(peer, workdir / f"peer-{peer}", settings))
                for peer in REAL_PEERS.get(name, ())
            }
            base = peers.enter_context(running_service(name, workdir, settings, upstreams))
            result.document = find_document(base)
            modes: list[tuple[str, dict[str, str], str]] = [("anonymous", {}, "")]
            headers: dict[str, str] = {}
            notes = []
            if name not in NO_SERVICE_KEY:
                headers[SERVICE_KEY_HEADER] = settings.service_keys[0]
                notes.append("service key")
            try:
                bearer = bearer_for(name, base, settings)
            except (RuntimeError, httpx.HTTPError) as exc:
                bearer = None
                result.problem = f"no bearer token: {exc}"
            if bearer is not None:
                headers["Authorization"] = f"Bearer {bearer[0]}"
                notes.append(bearer[1])
            if headers:
                modes.append(("credentials", headers, " + ".join(notes)))
            for mode, headers, note in modes:
                reports = workdir / mode
                reports.mkdir()
                mode_result = ModeResult(mode, note=note)
                mode_result.exit_code, output = run_schemathesis(
                    result.document, headers, reports, max_examples=args.max_examples, seed=args.seed
                )
                read_reports(mode_result, reports)
                if mode_result.exit_code and not (mode_result.failures or mode_result.errors):
                    mode_result.errors += 1
                    mode_result.error_titles["schemathesis exit"] = " ".join(output.split())[-400:]
                result.modes.append(mode_result)
                m = mode_result
                counts = (
                    f"ops {m.operations:>7}  cases {m.test_cases:>5}  requests {m.requests:>5}  "
                    f"failures {m.failures:>4}  errors {m.errors}"
                )
                print(f"  {name:<13} {mode:<11} {counts}  {note}", flush=True)
    except RuntimeError as exc:
        result.problem = str(exc)
        print(f"  {name:<13} could not run: {exc}", flush=True)
    result.seconds = time.monotonic() - started
    return result


def summary(results: list[ServiceResult]) -> int:
    print("\n== Schemathesis summary (per service and credential mode)")
    print(f"{'service':<14}{'mode':<12}{'ops':>8}{'cases':>8}{'requests':>10}{'failures':>10}{'errors':>8}")
    status = 0
    for service in results:
        if not service.modes:
            print(f"{service.name:<14}{'-':<12}  NOT RUN: {service.problem}")
            status = max(status, 2)
            continue
        for mode in service.modes:
            print(
                f"{service.name:<14}{mode.mode:<12}{mode.operations:>8}{mode.test_cases:>8}{mode.requests:>10}"
                f"{mode.failures:>10}{mode.errors:>8}"
            )
            if mode.failures or mode.errors:
                status = max(status, 1)
    print("\n== Distinct failure kinds, one example each")
    for service in results:
        kinds: dict[str, str] = {}
        received: dict[str, Counter[str]] = {}
        affected: dict[str, set[str]] = {}
        for mode in service.modes:
            for kind, example in mode.kinds.items():
                kinds.setdefault(kind, f"[{mode.mode}] {example}")
                received.setdefault(kind, Counter()).update(mode.received.get(kind, Counter()))
                affected.setdefault(kind, set()).update(mode.affected.get(kind, set()))
            for title, example in mode.error_titles.items():
                kinds.setdefault(f"error: {title}", f"[{mode.mode}] {example}")
        total = sum(m.failures for m in service.modes)
        print(f"\n{service.name} ({service.document or 'no document'}, {service.seconds:.0f} s): {total} failures")
        if service.problem:
            print(f"    note: {service.problem}")
        for kind, example in kinds.items():
            spread = ""
            if affected.get(kind):
                spread = f": {len(affected[kind])} operations"
            if received.get(kind):
                spread += "; received " + ", ".join(f"{got} x{n}" for got, n in received[kind].most_common(6))
            print(f"  - {kind}{spread}\n      e.g. {example}")
    return status


def main() -> int:
    services = discover()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", help=f"services to fuzz (default: all found: {' '.join(services)})")
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "3")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", DEFAULT_SEED)))
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "2")))
    parser.add_argument("--reports", type=Path, help="keep the Schemathesis reports under this folder")
    parser.add_argument("--list", action="store_true", help="print the services found and exit")
    args = parser.parse_args()
    if args.list:
        print(" ".join(services))
        return 0
    unknown = [name for name in args.services if name not in services]
    if unknown:
        parser.error(f"unknown service(s) {' '.join(unknown)}; found: {' '.join(services)}")
    selected = args.services or services
    settings = ServiceSettings()
    started = time.monotonic()
    print(
        f"== Schemathesis {CHECKS.replace(',', ', ')}: {' '.join(selected)} "
        f"(seed {args.seed}, max {args.max_examples} examples, {args.jobs} at a time)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = args.reports.resolve() if args.reports else Path(tmp)
        if args.reports:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda name: fuzz_service(name, args, settings, root), selected))
    status = summary(results)
    print(f"\n{len(selected)} services in {time.monotonic() - started:.0f} s; exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())

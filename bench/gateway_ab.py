"""Two gateway trees side by side: same nginx upstream, same settings, alternating wrk rounds.

For a refactor's "no measurable loss" check on a shared machine, where one run of
``bench/gateway.sh`` before and one after differ more by the neighbours' load than by the
code. Both gateways run at once (one uvicorn worker each, as ``python -m gateway``) and are
measured in ABBA order, so drifting load hits both alike; the medians of req/s and of server
CPU time per request are compared.

    git worktree add /tmp/gw-base <commit>   # or: git archive <commit> | tar -x -C /tmp/gw-base
    python bench/gateway_ab.py --before /tmp/gw-base --after . --rounds 6

Needs nginx and wrk (``bash bench/gateway.sh`` installs them). Loopback only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# bench/gateway.py's helpers (loaded by path: its module name would shadow the gateway package)
_spec = importlib.util.spec_from_file_location("gateway_bench", Path(__file__).with_name("gateway.py"))
assert _spec is not None and _spec.loader is not None
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
SMALL_JSON, UPSTREAM = _bench.SMALL_JSON, _bench.UPSTREAM
free_port, start_nginx, wait_port, wrk = _bench.free_port, _bench.start_nginx, _bench.wait_port, _bench.wrk


def start_gateway(tree: Path, port: int, upstream_url: str, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    services = ("CUSTOMER", "SELLERS", "MEDIA", "PRODUCTS", "ORDERS", "ADMIN", "NOTIFICATIONS")
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ENV": "production",
        "JWT_SECRET": "bench-secret-" + "x" * 40,
        "SERVICE_KEY": "bench-service-key-" + "y" * 32,
        "RATE_LIMIT_MAX": "1000000000",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "text",
        "PYTHONPATH": str(tree.resolve()),
        **{f"{service}_SERVICE_URL": upstream_url for service in services},
    }
    env.pop("REDIS_URL", None)
    log = (workdir / f"{name}.log").open("wb")
    command = [sys.executable, "-m", "gateway"]
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="tree of the baseline (holds gateway/)")
    parser.add_argument("--after", type=Path, required=True, help="tree of the change")
    parser.add_argument("--rounds", type=int, default=6, help="wrk runs per gateway (ABBA order)")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="gateway-ab-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port = free_port()
        procs.append(start_nginx(workdir, "upstream", UPSTREAM.format(port=up_port, json=SMALL_JSON)))
        upstream_url = f"http://127.0.0.1:{up_port}"
        ports = {"before": free_port(), "after": free_port()}
        gateways = {
            name: start_gateway(getattr(args, name), port, upstream_url, workdir, name) for name, port in ports.items()
        }
        procs.extend(gateways.values())
        for port in (up_port, *ports.values()):
            wait_port(port)
        path = "/api/customer/products?page=1"
        results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        order = ["before", "after", "after", "before"]
        for index in range(args.rounds * 2):
            name = order[index % 4]
            url = f"http://127.0.0.1:{ports[name]}{path}"
            result = wrk(url, args.seconds, args.connections, [gateways[name].pid])
            results[name].append(result)
            rps, cpu = result["rps"], result["cpu_us"]
            print(f"round {index + 1:2d} {name:6s} {rps:8.0f} req/s  {cpu:6.1f} us CPU/req", flush=True)
        load = os.getloadavg()
        runs = f"wrk -t1 -c{args.connections} -d{args.seconds}s x {args.rounds} each, ABBA"
        print(f"\n{runs}; load average {load[0]:.2f}")
        medians = {}
        for name, runs in results.items():
            rps = statistics.median(r["rps"] for r in runs)
            cpu = statistics.median(r["cpu_us"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            medians[name] = (rps, cpu)
            print(f"{name:6s} median {rps:8.0f} req/s  p99 {p99:6.2f} ms  {cpu:6.1f} us CPU/req")
        (rps_b, cpu_b), (rps_a, cpu_a) = medians["before"], medians["after"]
        print(f"after / before: req/s {rps_a / rps_b - 1:+.1%}, CPU per request {cpu_a / cpu_b - 1:+.1%}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark for ``tastespace serve``: throughput and latency of the two hot endpoints.

What it does:

1. builds (or reuses, ``--bundle``) a neural (or ``--model als``) bundle of the synthetic catalog
   ``synthetic:users=20000,items=N`` (``--items``, default a 4k-item catalog), trained for a
   couple of epochs
   (serving cost does not depend on how well it was trained);
2. starts the server in its own process (``tastespace serve``, one uvicorn worker, 127.0.0.1,
   a free port) and waits for ``/healthz``;
3. sends a bounded load from one asyncio client — ``--requests`` requests (default 20,000) with
   ``--concurrency`` in flight (default 32), loopback only, stopping early at ``--max-seconds`` —
   half ``POST /api/recommend`` (a random history of 5–50 items, k=20), half
   ``GET /api/items/{id}/similar?k=20``, after a short warm-up;
4. prints, per endpoint and overall: requests, errors, throughput, p50 / p90 / p99 / max latency,
   and how the client's connections were split over the server's workers (each asks
   ``/healthz`` at the end, which names the worker that answered).

Latency is measured in the client, from sending the request to having parsed the response, so it
includes HTTP and JSON on both sides. CPU seconds used by the server and the client during the
run are printed per request too: unlike latency, they do not depend on what else the machine
is doing. Client and server share the machine's cores (2 here):
``--server-cpus`` / ``--client-cpus`` pin them (Linux) for steadier numbers. Target (issue 5):
0 errors and p99 < 50 ms on 2 cores.

Usage::

    python bench/serve_load.py                          # builds the bundle in a temp dir
    python bench/serve_load.py --bundle runs/synth4k    # reuse (or create) a bundle there
    python bench/serve_load.py --requests 5000 --concurrency 8
    python bench/serve_load.py --items 100000 --concurrency 16 --index hnsw   # a big catalog
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

import numpy as np


def build_bundle(path: Path, epochs: int, items: int, model: str, candidates: int) -> None:
    from tastespace.data import load_dataset
    from tastespace.models.mf import ALS
    from tastespace.models.neural import NeuralRecommender

    started = time.perf_counter()
    source = f"synthetic:users=20000,items={items}"
    dataset = load_dataset(source)
    if model == "als":
        ALS(seed=0).fit(dataset).save(path)
    else:
        neural = NeuralRecommender(
            epochs=epochs, seed=0, validation_users=0, fold_in_candidates=candidates
        )
        neural.fit(dataset).save(path)
    print(
        f"trained {model} on {source} ({dataset.n_users:,} users × {dataset.n_items:,} items, "
        f"{epochs} epochs) in {time.perf_counter() - started:.0f} s → {path}",
        flush=True,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    bundle: Path,
    port: int,
    cpus: str | None,
    threads: int = 1,
    workers: int = 1,
    index: str = "auto",
) -> tuple[subprocess.Popen, IO[bytes]]:
    command = [
        sys.executable,
        "-c",
        "from tastespace.cli import main; main()",
        "serve",
        str(bundle),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--workers",
        str(workers),
        "--index",
        index,
    ]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log), log


async def wait_ready(
    client,
    base: str,
    server: subprocess.Popen,
    log: IO[bytes],
    workers: int = 1,
    timeout: float = 120,
) -> None:
    """Until ``workers`` distinct workers have answered ``/healthz``: a worker still loading
    accepts nothing, so a load started on the first answer puts every connection on the
    workers that were up (with ``--workers 2`` at 100k items, all 16 on one)."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited: {log.read().decode()[-2000:]}")
        try:  # a fresh connection each time, which any worker up may accept
            answer = await client.get(f"{base}/healthz", headers={"Connection": "close"})
            if answer.status_code == 200:
                seen.add(answer.json()["worker"])
                if len(seen) >= workers:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"{len(seen)} of {workers} workers answered /healthz within {timeout:.0f} s")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live children (uvicorn workers), from
    Linux /proc; NaN elsewhere."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, cpu seconds)
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        stats[int(entry.parent.name)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    if pid not in stats:
        return float("nan")
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (pp, _) in stats.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[p][1] for p in tree)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_requests(ids: list, n: int, seed: int) -> list[tuple[str, str, dict | None]]:
    """(endpoint label, path, JSON body) for ``n`` requests: alternating recommend / similar."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        if k % 2 == 0:
            history = rng.sample(ids, rng.randint(5, 50))
            out.append(("recommend", "/api/recommend", {"history": history, "k": 20}))
        else:
            out.append(("similar", f"/api/items/{rng.choice(ids)}/similar?k=20", None))
    return out


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client connection (asyncio streams).

    Why not httpx for the load: on a 2-core machine the client competes with the server for
    CPU, and httpx spends ~3 ms of CPU per request; this spends a small fraction of that, so
    the numbers describe the server. ``--client httpx`` runs the same load through httpx.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                self.writer = None  # the server hangs up after this response
        payload = await self.reader.readexactly(length)
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(
    base: str, requests: list, concurrency: int, max_seconds: float, client_kind: str = "raw"
) -> tuple[dict[str, list[float]], dict[str, int], float, Counter]:
    """The load; also which worker served each raw connection (asked of ``/healthz`` on it at
    the end): with ``--workers N``, how the connections were split."""
    import httpx

    latencies: dict[str, list[float]] = {"recommend": [], "similar": []}
    errors: dict[str, int] = {"recommend": 0, "similar": 0}
    owners: Counter = Counter()
    queue = iter(requests)
    host, port = base.removeprefix("http://").split(":")
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def send(conn: RawConnection, path: str, body: dict | None) -> tuple[int, bytes]:
            if client_kind == "httpx":
                response = await (
                    client.get(path) if body is None else client.post(path, json=body)
                )
                return response.status_code, response.content
            if body is None:
                return await conn.request("GET", path)
            return await conn.request("POST", path, json.dumps(body).encode())

        async def worker() -> None:
            conn = RawConnection(host, int(port))
            try:
                for label, path, body in queue:
                    if time.perf_counter() > deadline:
                        break
                    started = time.perf_counter()
                    try:
                        status, payload = await asyncio.wait_for(send(conn, path, body), 30)
                        ok = status == 200 and bool(json.loads(payload)["items"])
                    except Exception:  # noqa: BLE001 - count every failure as an error
                        ok = False
                        await conn.close()
                        conn = RawConnection(host, int(port))
                    latencies[label].append(time.perf_counter() - started)
                    errors[label] += not ok
                if client_kind == "raw":
                    try:
                        status, payload = await asyncio.wait_for(
                            conn.request("GET", "/healthz"), 30
                        )
                        owner = json.loads(payload)["worker"] if status == 200 else None
                    except Exception:  # noqa: BLE001 - a broken connection says no owner
                        owner = None
                    owners[owner] += 1
            finally:
                await conn.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed, owners


def report(latencies: dict[str, list[float]], errors: dict[str, int], elapsed: float) -> None:
    rows = [*latencies, "all"]
    header = f"{'endpoint':<10} {'requests':>9} {'errors':>7} {'req/s':>8} " + " ".join(
        f"{name:>8}" for name in ("p50 ms", "p90 ms", "p99 ms", "max ms")
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        values = (
            np.concatenate([np.asarray(v) for v in latencies.values()])
            if row == "all"
            else np.asarray(latencies[row])
        )
        failed = sum(errors.values()) if row == "all" else errors[row]
        if not len(values):
            continue
        p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1000
        print(
            f"{row:<10} {len(values):>9,} {failed:>7,} {len(values) / elapsed:>8,.0f} "
            f"{p50:>8.1f} {p90:>8.1f} {p99:>8.1f} {values.max() * 1000:>8.1f}"
        )


async def main_async(args: argparse.Namespace, bundle: Path) -> None:
    import httpx

    ids = json.loads((bundle / "manifest.json").read_text())["item_ids"]["ids"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server, log = start_server(
        bundle, port, args.server_cpus, args.threads, args.workers, args.index
    )
    try:
        async with httpx.AsyncClient() as probe:
            started = time.perf_counter()
            await wait_ready(probe, base, server, log, args.workers, timeout=900)
            print(f"server up in {time.perf_counter() - started:.1f} s on {base}", flush=True)
        warmup = make_requests(ids, args.warmup, seed=1)
        await run_load(base, warmup, args.concurrency, 60, args.client)
        requests = make_requests(ids, args.requests, seed=0)
        server_cpu, client_cpu = process_cpu(server.pid), own_cpu()
        latencies, errors, elapsed, owners = await run_load(
            base, requests, args.concurrency, args.max_seconds, args.client
        )
        server_cpu, client_cpu = process_cpu(server.pid) - server_cpu, own_cpu() - client_cpu
    finally:
        server.terminate()
        server.wait(10)
    sent = sum(len(v) for v in latencies.values())
    print(
        f"\n{sent:,} requests ({args.concurrency} in flight) in {elapsed:.1f} s — "
        f"{len(ids):,}-item catalog, --index {args.index}, "
        f"--workers {args.workers} --threads {args.threads}, "
        f"{args.client} client, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average before: {args.load_before}\n"
    )
    report(latencies, errors, elapsed)
    if owners:
        split = " / ".join(str(n) for n in sorted(owners.values(), reverse=True))
        print(f"\nconnections per worker: {split}")
    print(
        f"\nCPU per request: server {server_cpu / sent * 1000:.2f} ms "
        f"(≈ {sent / server_cpu:,.0f} req/s per busy core), "
        f"client {client_cpu / sent * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="Bundle to serve (built if missing).")
    parser.add_argument("--model", choices=("neural", "als"), default="neural", help="Built model.")
    parser.add_argument(
        "--fold-in-candidates",
        type=int,
        default=512,
        help="Neural fold_in_candidates when built (0: the exact solve at every size).",
    )
    parser.add_argument("--epochs", type=int, default=2, help="Epochs when building the bundle.")
    parser.add_argument("--items", type=int, default=4000, help="Catalog size of a built bundle.")
    parser.add_argument("--index", default="auto", help="Server's --index (auto, exact, hnsw…).")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop sending after.")
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="HTTP client for the load."
    )
    parser.add_argument("--threads", type=int, default=1, help="Server's --threads.")
    parser.add_argument("--workers", type=int, default=1, help="Server's --workers.")
    parser.add_argument("--server-cpus", help="taskset CPU list for the server, e.g. 0")
    parser.add_argument("--client-cpus", help="taskset CPU list for this client, e.g. 1")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 256 or not 1 <= args.requests <= 1_000_000:
        parser.error("keep the load bounded: 1..256 concurrent, 1..1,000,000 requests")
    if args.client_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    args.load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="tastespace-serve-") as scratch:
        bundle = args.bundle or Path(scratch) / f"synth{args.items}"
        if not (bundle / "manifest.json").exists():
            build_bundle(bundle, args.epochs, args.items, args.model, args.fold_in_candidates)
        asyncio.run(main_async(args, bundle))


if __name__ == "__main__":
    main()

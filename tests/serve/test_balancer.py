"""``serve --workers N`` through its balancer: connections spread by open count, a dead worker
replaced, a clean stop; startup failures as one-line errors."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from tastespace.errors import ConfigError, TastespaceError
from tastespace.serve import balancer

pytestmark = pytest.mark.skipif(not balancer.can_balance(), reason="needs descriptor passing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_of(connection: http.client.HTTPConnection) -> int:
    """The worker (pid) that serves this keep-alive connection."""
    connection.request("GET", "/healthz")
    answer = connection.getresponse()
    assert answer.status == 200
    return json.loads(answer.read())["worker"]


def wait_for(condition, what: str, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = condition()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {seconds:.0f} s")


@pytest.fixture
def two_workers(movie_bundles):
    """``tastespace serve --workers 2`` on a free port; stopped (SIGTERM) afterwards."""
    port = free_port()
    command = [sys.executable, "-c", "from tastespace.cli import main; main()", "serve"]
    server = subprocess.Popen(
        [*command, str(movie_bundles["ease"]), "--workers", "2", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's Ctrl+C reaches it
    )

    def both_up():  # fresh short connections go round the workers while none is busy
        seen = set()
        for _ in range(4):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            seen.add(worker_of(connection))
            connection.close()
        return len(seen) == 2

    try:
        wait_for(both_up, "both workers answering")
        yield server, port
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


@pytest.mark.fault("serve", "a worker killed (SIGKILL)", "another started; the rest keep serving")
def test_connections_spread_by_open_count_and_a_dead_worker_is_replaced(two_workers):
    server, port = two_workers
    time.sleep(0.5)  # the probes' closes reach the balancer
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
    owners = [worker_of(c) for c in connections]
    assert sorted(Counter(owners).values()) == [2, 2]  # not all on whichever woke first
    for connection in connections:
        assert worker_of(connection) == owners[connections.index(connection)]  # kept

    quiet = owners[0]  # its two connections close; the next two both go to it
    for connection, owner in zip(connections, owners, strict=True):
        if owner == quiet:
            connection.close()
    time.sleep(1.0)  # the worker tells the balancer each close
    fresh = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(2)]
    assert [worker_of(c) for c in fresh] == [quiet, quiet]

    os.kill(quiet, signal.SIGKILL)
    kept = [c for c, owner in zip(connections, owners, strict=True) if owner != quiet]
    assert all(worker_of(c) != quiet for c in kept)  # the other worker's connections live on

    def replaced():
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            worker = worker_of(probe)
        finally:
            probe.close()
        return worker not in owners and worker

    newcomer = wait_for(replaced, "a new worker in place of the killed one")
    for connection in connections + fresh:
        connection.close()

    os.killpg(server.pid, signal.SIGINT)  # Ctrl+C: the balancer and its workers get it
    assert server.wait(60) == 0
    said = server.stderr.read().decode()
    assert "Traceback" not in said and "starting another" in said, said
    for worker in {*owners, newcomer} - {quiet}:  # stopped with it
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)


@pytest.mark.fault("serve", "--workers 2 on a busy port", "ConfigError naming host:port")
def test_a_busy_port_is_a_one_line_error_before_serving(movie_bundles):
    from typer.testing import CliRunner

    from tastespace.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--workers", "2", "--port", str(port)]
        result = CliRunner().invoke(app, ["serve", str(movie_bundles["ease"]), *options])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert "serving" not in result.output  # said before anything was announced


@pytest.mark.fault(
    "serve", "--workers 2 whose workers cannot load", "TastespaceError, names the exit code"
)
def test_workers_that_cannot_start_stop_the_server(tmp_path, monkeypatch):
    from tastespace.serve.app import SETTINGS_VARIABLE

    settings = {"bundles": {"gone": str(tmp_path / "missing")}, "max_body_bytes": 10_000}
    monkeypatch.setenv(SETTINGS_VARIABLE, json.dumps(settings))
    started = time.monotonic()
    with pytest.raises(TastespaceError, match=r"a server worker exited \(code \d+\) before"):
        balancer.Balancer(2, "127.0.0.1", free_port(), log_level="critical").run()
    assert time.monotonic() - started < 120


@pytest.mark.fault("serve", "a worker hung (SIGSTOP)", "replaced once its pings go unanswered")
def test_a_hung_worker_is_replaced(movie_bundles, monkeypatch):
    import threading

    from tastespace.serve.app import SETTINGS_VARIABLE

    settings = {"bundles": {"ease": str(movie_bundles["ease"])}, "max_body_bytes": 10_000}
    monkeypatch.setenv(SETTINGS_VARIABLE, json.dumps(settings))
    monkeypatch.setattr(balancer, "HEALTH_SECONDS", 3.0)
    port = free_port()
    seen: list[set[int]] = []

    def workers_answering() -> set[int]:
        found = set()
        for _ in range(4):
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                found.add(worker_of(probe))
            except OSError:  # the hung one holds a probe until it times out
                pass
            finally:
                probe.close()
        return found

    def drive() -> None:
        try:
            first = wait_for(lambda: len(workers_answering()) == 2 and workers_answering(), "up")
            hung = min(first)
            os.kill(hung, signal.SIGSTOP)
            seen.append(first)
            seen.append(wait_for(lambda: (workers_answering() - first) or None, "a new worker"))
        finally:
            server.stopping = True  # what SIGTERM sets: run() below returns within a ping

    server = balancer.Balancer(2, "127.0.0.1", port, log_level="critical")
    driver = threading.Thread(target=drive)
    driver.start()
    server.run()
    driver.join()
    assert len(seen) == 2 and seen[1].isdisjoint(seen[0]), seen
    with pytest.raises(ProcessLookupError):  # the hung one was killed, not left stopped
        os.kill(min(seen[0]), 0)

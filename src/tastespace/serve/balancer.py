"""``serve --workers N``: one process accepts every connection and hands it to a worker.

Why: with a listening socket shared by the workers, the worker whose loop wakes first takes the
connections, and a client's few long keep-alive connections stay where they landed. At 100k
items and 16 connections in flight the split decided the tail: 8 / 8 gave p99 37.8 ms, 15 / 1
49.5 ms and 16 / 0 53.4 ms (docs/benchmarks-index.md, session 23). Here each accepted
connection goes to the ready worker with the fewest open ones (``serve/worker.py`` says when
one closes), so N connections are spread N / workers apiece; the balancer only accepts and
passes descriptors, it never touches a request's bytes.

A worker that dies after it was ready is started again (its connections are lost, as with
uvicorn's own supervisor); one that dies before it was ready stops the server with an error.
"""

from __future__ import annotations

import dataclasses
import logging
import selectors
import signal
import socket
import subprocess
import sys
import time

from tastespace.errors import ConfigError, TastespaceError
from tastespace.serve.worker import CLOSED, CONNECTION, READY

logger = logging.getLogger(__name__)

BACKLOG = 2048
STOP_SECONDS = 30.0
"""How long workers get to finish their requests after SIGINT / SIGTERM before they are killed."""


def can_balance() -> bool:
    """Whether this platform passes descriptors between processes (Unix, not Windows)."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


@dataclasses.dataclass
class _Worker:
    process: subprocess.Popen
    channel: socket.socket  # the balancer's end of a SOCK_SEQPACKET pair
    open: int = 0  # connections handed and not yet closed
    ready: bool = False  # it can take connections now
    served: bool = False  # it was ready once


class Balancer:
    """Listens on ``host:port``, runs ``workers`` processes of ``serve/worker.py`` and hands
    each new connection to the ready one with the fewest open connections (ties in turn, so
    short connections one after another go round the workers too)."""

    def __init__(self, workers: int, host: str, port: int, log_level: str = "warning") -> None:
        """Binds ``host:port`` (a one-line :class:`ConfigError` when it cannot); the workers
        start with :meth:`run`."""
        self.size, self.host, self.port, self.log_level = workers, host, port, log_level
        self.listener = _listen(host, port)
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self._forced = False  # a second SIGINT / SIGTERM: kill the workers now
        self._accepting = False
        self._turn = 0  # where the tie-break starts

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.workers = [self._start() for _ in range(self.size)]
            while not self.stopping:
                for key, _ in self.selector.select(timeout=0.5):
                    if key.data is None:
                        self._hand_over()
                    else:
                        self._hear(key.data)
                self._replace_dead()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, *_: object) -> None:
        self._forced = self.stopping
        self.stopping = True

    def _start(self) -> _Worker:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "tastespace.serve.worker"]
        process = subprocess.Popen(
            [*command, str(theirs.fileno()), self.log_level], pass_fds=[theirs.fileno()]
        )
        theirs.close()
        mine.setblocking(False)  # a worker whose loop is stuck must not stall the others
        worker = _Worker(process, mine)
        self.selector.register(mine, selectors.EVENT_READ, worker)
        return worker

    def _hear(self, worker: _Worker) -> None:
        """A worker's messages: ready, connections closed, or (empty) its end closed."""
        try:
            message = worker.channel.recv(1)
        except BlockingIOError:  # nothing after all
            return
        except OSError:
            message = b""
        if message == READY:
            worker.ready = worker.served = True
            logger.info("worker %d ready", worker.process.pid)
        elif message == CLOSED:
            worker.open = max(0, worker.open - 1)
        elif not message:
            self.selector.unregister(worker.channel)
            worker.ready = False
        self._accept_when_ready()

    def _accept_when_ready(self) -> None:
        """Watch the listener only while some worker can take a connection."""
        ready = any(w.ready for w in self.workers)
        if ready and not self._accepting:
            self.selector.register(self.listener, selectors.EVENT_READ, None)
        elif self._accepting and not ready:
            self.selector.unregister(self.listener)
        self._accepting = ready

    def _hand_over(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except BlockingIOError:
            return
        with connection:
            if connection.family in (socket.AF_INET, socket.AF_INET6):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for worker in self._by_load():
                try:
                    socket.send_fds(worker.channel, [CONNECTION], [connection.fileno()])
                except BlockingIOError:  # its queue is full: the next one takes it
                    continue
                except OSError:  # it died: the next one takes the connection
                    worker.ready = False
                    continue
                worker.open += 1
                self._turn = self.workers.index(worker) + 1
                return
            self._accept_when_ready()  # none could take it: the client sees it closed

    def _by_load(self) -> list[_Worker]:
        """Ready workers, fewest open connections first; equal ones from the turn on."""
        n = len(self.workers)
        order = sorted(range(n), key=lambda i: (self.workers[i].open, (i - self._turn) % n))
        return [self.workers[i] for i in order if self.workers[i].ready]

    def _replace_dead(self) -> None:
        for number, worker in enumerate(self.workers):
            code = worker.process.poll()
            if code is None or self.stopping:
                continue
            if not worker.served:
                raise TastespaceError(f"a server worker exited (code {code}) before it was ready")
            logger.warning("worker %d exited (code %s); starting another", worker.process.pid, code)
            self._forget(worker)
            self.workers[number] = self._start()
            self._accept_when_ready()

    def _forget(self, worker: _Worker) -> None:
        try:
            self.selector.unregister(worker.channel)
        except KeyError:  # already, when its end closed
            pass
        worker.channel.close()

    def _shutdown(self) -> None:
        """Stop accepting, ask every worker to finish (SIGTERM), kill those that have not
        after ``STOP_SECONDS`` or on a second SIGINT / SIGTERM."""
        self.listener.close()
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and not self._forced:
            if all(worker.process.poll() is not None for worker in self.workers):
                break
            time.sleep(0.1)
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
            worker.channel.close()
        self.selector.close()


def _listen(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on ``host:port`` (``""``: every interface)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener

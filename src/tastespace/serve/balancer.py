"""``serve --workers N``: one process accepts every connection and hands it to a worker.

Why: with a listening socket shared by the workers, the worker whose loop wakes first takes the
connections, and a client's few long keep-alive connections stay where they landed. At 100k
items and 16 connections in flight the split decided the tail: 8 / 8 gave p99 37.8 ms, 15 / 1
49.5 ms and 16 / 0 53.4 ms (docs/benchmarks-index.md, session 23). Here each accepted
connection goes to the ready worker with the fewest open ones (``serve/worker.py`` reports how
many of its connections have closed), so N connections are spread N / workers apiece; the
balancer only accepts and passes descriptors, it never touches a request's bytes.

A worker that dies, or stops answering pings for ``HEALTH_SECONDS``, is killed and started
again (its connections are lost, as with uvicorn's own supervisor); if no worker ever starts,
the server stops with an error. SIGINT / SIGTERM stop it (a second one kills the workers at
once); SIGHUP restarts the workers.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import selectors
import signal
import socket
import subprocess
import sys
import time

from tastespace.errors import ConfigError, TastespaceError
from tastespace.serve.worker import CLOSED, CONNECTION, LEAVING, PING, PONG, READY, closed_total

logger = logging.getLogger(__name__)

BACKLOG = 2048
STOP_SECONDS = 30.0
"""How long workers get to finish their requests after SIGINT / SIGTERM before they are killed."""
PING_SECONDS = 1.0
HEALTH_SECONDS = 20.0
"""A started worker that has said nothing (pings unanswered) for this long is replaced."""
RESTART_SECONDS = 1.0
"""Wait before starting again a worker that died before it was ready (no hot loop)."""
PAUSE_SECONDS = 1.0
"""Accepting pauses this long when the process is out of descriptors or memory."""
GONE = (errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ENOTCONN)
"""Send errors that mean the worker's end is closed (others are the kernel's, for a moment)."""
EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_WAKE = "wake"


def can_balance() -> bool:
    """Whether this platform passes descriptors over ``SOCK_SEQPACKET`` Unix sockets (Linux;
    not Windows, nor macOS, which lacks the socket type)."""
    if not hasattr(socket, "send_fds"):
        return False
    try:
        pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except (AttributeError, OSError):
        return False
    for end in pair:
        end.close()
    return True


@dataclasses.dataclass
class _Worker:
    process: subprocess.Popen
    channel: socket.socket  # the balancer's end of a SOCK_SEQPACKET pair
    handed: int = 0  # connections handed to it
    closed: int = 0  # of those, closed (its last report)
    ready: bool = False  # it can take connections now
    served: bool = False  # it was ready once
    heard: float = dataclasses.field(default_factory=time.monotonic)  # its last message
    restart_at: float | None = None  # dead before it was ready: when to try again

    @property
    def open(self) -> int:
        return self.handed - self.closed


class Balancer:
    """Listens on ``host:port``, runs ``workers`` processes of ``serve/worker.py`` and hands
    each new connection to the ready one with the fewest open connections (ties in turn, so
    short connections one after another go round the workers too)."""

    def __init__(self, workers: int, host: str, port: int, log_level: str = "warning") -> None:
        """Binds ``host:port`` (a one-line :class:`ConfigError` when it cannot); the workers
        start with :meth:`run`."""
        self.size, self.log_level = workers, log_level
        self.listeners = _listen(host, port)
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self._forced = False  # a second SIGINT / SIGTERM: kill the workers now
        self._accepting = False
        self._paused_until = 0.0
        self._up = False  # some worker has been ready
        self._turn = 0  # where the tie-break starts
        self._pinged = 0.0

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM."""
        wake, self._waker = socket.socketpair()
        for end in (wake, self._waker):
            end.setblocking(False)
        self.selector.register(wake, selectors.EVENT_READ, _WAKE)  # a signal ends a select
        previous_wakeup = signal.set_wakeup_fd(self._waker.fileno())
        handlers = {signal.SIGINT: self._stop, signal.SIGTERM: self._stop}
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = self._restart_all
        previous = {s: signal.signal(s, handler) for s, handler in handlers.items()}
        try:
            self.workers = [self._start() for _ in range(self.size)]
            while not self.stopping:
                for key, _ in self.selector.select(timeout=PING_SECONDS):
                    if self.stopping:
                        break
                    if key.data is _WAKE:
                        _drain(wake)
                    elif isinstance(key.data, _Worker):
                        self._hear(key.data)
                    else:
                        self._hand_over(key.data)
                self._check_health()
                self._replace_dead()
                self._accept_when_ready()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wake.close()
            self._waker.close()

    def _stop(self, *_: object) -> None:
        self._forced = self.stopping
        self.stopping = True

    def _restart_all(self, *_: object) -> None:
        """SIGHUP: every worker is stopped and, as it exits, started again."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()

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
        """Every message waiting from a worker: ready, closed connections, pong, leaving, or
        (an empty read) its end closed."""
        while True:
            try:
                message = worker.channel.recv(16)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            worker.heard = time.monotonic()
            if message == READY:
                worker.ready = worker.served = self._up = True
                logger.info("worker %d ready", worker.process.pid)
            elif message.startswith(CLOSED):
                worker.closed = max(worker.closed, closed_total(message))
            elif message == LEAVING:
                worker.ready = False
            elif not message:
                self._forget(worker)
                return
            elif message != PONG:
                logger.warning("worker %d said %r; ignored", worker.process.pid, message)

    def _accept_when_ready(self) -> None:
        """Watch the listeners only while some worker can take a connection (and accepting is
        not paused)."""
        ready = any(w.ready for w in self.workers) and time.monotonic() >= self._paused_until
        if ready and not self._accepting:
            for listener in self.listeners:
                self.selector.register(listener, selectors.EVENT_READ, listener)
        elif self._accepting and not ready:
            for listener in self.listeners:
                self.selector.unregister(listener)
        self._accepting = ready

    def _hand_over(self, listener: socket.socket) -> None:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:  # a connection that failed on the way in, or no room for it
            if err.errno in EXHAUSTED:
                logger.warning("accepting paused for %.0f s: %s", PAUSE_SECONDS, err)
                self._paused_until = time.monotonic() + PAUSE_SECONDS
                self._accept_when_ready()
            return
        with connection:
            try:
                if connection.family in (socket.AF_INET, socket.AF_INET6):
                    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # already reset by the client
                return
            for worker in self._by_load():
                try:
                    socket.send_fds(worker.channel, [CONNECTION], [connection.fileno()])
                except OSError as err:  # its queue is full, or it is gone: the next one
                    if err.errno in GONE:
                        worker.ready = False
                    continue
                worker.handed += 1
                self._turn = self.workers.index(worker) + 1
                return
            # no worker could take it: the client sees it closed

    def _by_load(self) -> list[_Worker]:
        """Ready workers, fewest open connections first; equal ones from the turn on."""
        n = len(self.workers)
        order = sorted(range(n), key=lambda i: (self.workers[i].open, (i - self._turn) % n))
        return [self.workers[i] for i in order if self.workers[i].ready]

    def _check_health(self) -> None:
        """Ping the started workers once a ``PING_SECONDS``; kill one silent for too long
        (``_replace_dead`` starts another)."""
        now = time.monotonic()
        if now - self._pinged < PING_SECONDS:
            return
        self._pinged = now
        for worker in self.workers:
            if not worker.ready or worker.process.poll() is not None:
                continue
            if now - worker.heard > HEALTH_SECONDS:
                logger.warning(
                    "worker %d answered nothing for %.0f s; replacing it",
                    worker.process.pid,
                    now - worker.heard,
                )
                worker.ready = False
                worker.process.kill()
                continue
            try:
                worker.channel.send(PING)
            except OSError:  # full or gone: its silence will tell
                pass

    def _replace_dead(self) -> None:
        now = time.monotonic()
        for number, worker in enumerate(self.workers):
            code = worker.process.poll()
            if code is None or self.stopping:
                continue
            if worker.restart_at is None:
                if not worker.served and not self._up:
                    raise TastespaceError(
                        f"a server worker exited (code {code}) before it was ready"
                    )
                logger.warning(
                    "worker %d exited (code %s); starting another", worker.process.pid, code
                )
                self._forget(worker)
                worker.restart_at = now + (0.0 if worker.served else RESTART_SECONDS)
            if now >= worker.restart_at:
                self.workers[number] = self._start()

    def _forget(self, worker: _Worker) -> None:
        worker.ready = False
        try:
            self.selector.unregister(worker.channel)
        except (KeyError, ValueError):  # already, when its end closed
            pass
        worker.channel.close()

    def _shutdown(self) -> None:
        """Stop accepting, ask every worker to finish (SIGTERM), kill those that have not
        after ``STOP_SECONDS`` or on a second SIGINT / SIGTERM."""
        for listener in self.listeners:
            listener.close()
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


def _drain(wake: socket.socket) -> None:
    try:
        while wake.recv(64):
            pass
    except OSError:
        pass


def _listen(host: str, port: int) -> list[socket.socket]:
    """Non-blocking listening sockets on ``host:port``, one per address it resolves to
    (``localhost`` may be ``::1`` and ``127.0.0.1``; ``""`` is every interface), as asyncio
    binds them."""
    listeners: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        addresses = list(dict.fromkeys((family, address) for family, _, _, _, address in found))
        for family, address in addresses:
            listener = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and len(addresses) > 1:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
    except OSError as err:
        for listener in listeners:
            listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    for listener in listeners:
        listener.listen(BACKLOG)
        listener.setblocking(False)
    return listeners

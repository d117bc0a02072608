"""One process of ``serve --workers N``: serves the connections the balancer hands it.

Why not a listening socket shared by the workers (uvicorn's way): whichever worker's loop wakes
first accepts, so a client's burst of new keep-alive connections can all land on one worker
and stay there (16 of 16 in several runs, docs/benchmarks-index.md, sessions 21 and 23) while
the other sits idle. Here the balancer (``serve/balancer.py``) accepts every connection and
hands it over a Unix socket (its file descriptor, ``SCM_RIGHTS``) to the ready worker with the
fewest open ones; the worker says when it is ready, how many of its connections have closed,
that it is alive (answering pings) and that it is leaving.

Run as ``python -m tastespace.serve.worker CHANNEL_FD LOG_LEVEL``, with the app's settings in
``$TASTESPACE_SERVE`` (``serve/app.py:app_from_environment``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections.abc import Callable

import uvicorn
from uvicorn.config import STARTUP_FAILURE

READY = b"r"
"""Worker → balancer: the app has started; connections may come."""
CLOSED = b"-"
"""Worker → balancer: followed by the count of handed connections closed so far (``<Q``), a
total, so that a message the balancer could not take loses nothing."""
PONG = b"o"
"""Worker → balancer: the answer to a ping, from the event loop (so the loop is not stuck)."""
LEAVING = b"x"
"""Worker → balancer: it is shutting down; send it nothing more."""
CONNECTION = b"c"
"""Balancer → worker: one connection, its descriptor attached."""
PING = b"p"
"""Balancer → worker: answer with PONG."""

APP_FACTORY = "tastespace.serve.app:app_from_environment"
RETRY_SECONDS = 0.05
"""How soon a report the balancer's full queue refused is sent again."""


def closed_report(total: int) -> bytes:
    return CLOSED + struct.pack("<Q", total)


def closed_total(message: bytes) -> int:
    return struct.unpack("<Q", message[len(CLOSED) :])[0]


class HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections received on
    ``channel`` (a ``SOCK_SEQPACKET`` Unix socket to the balancer); it stops when the balancer
    goes away."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._adopting: set[asyncio.Task] = set()  # held, so that none is collected midway
        self._closed = 0
        self._retrying = False
        self._leaving = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        protocol_class = _counted(self.config.http_protocol_class, self._on_close, self)
        config, state, app_state = self.config, self.server_state, self.lifespan.state

        def create_protocol() -> asyncio.Protocol:
            return protocol_class(config=config, server_state=state, app_state=app_state)

        self._create_protocol = create_protocol
        self.servers = []  # nothing to stop listening on at shutdown
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._receive)
        self._send(READY)
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._leave()
        await super().shutdown(sockets)

    def _receive(self) -> None:
        """Adopt every connection waiting on the channel, answer pings; an empty read is the
        balancer gone."""
        while not self._leaving:
            try:
                message, descriptors, _, _ = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                message, descriptors = b"", []
            if not message:
                self._leave()
                self.should_exit = True
                return
            if message == PING:
                self._send(PONG)
            elif not descriptors:  # sent, but not received (this process is out of them)
                self._on_close()
            for descriptor in descriptors:
                connection = socket.socket(fileno=descriptor)
                connection.set_inheritable(False)
                connection.setblocking(False)
                task = asyncio.ensure_future(self._adopt(connection))
                self._adopting.add(task)
                task.add_done_callback(self._adopting.discard)

    def _leave(self) -> None:
        """Stop taking connections: tell the balancer, close those already queued."""
        if self._leaving:
            return
        self._leaving = True
        try:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        except (RuntimeError, ValueError):  # no loop, or the channel already closed
            pass
        self._send(LEAVING)
        while True:
            try:
                message, descriptors, _, _ = socket.recv_fds(self.channel, 1, 1)
            except OSError:
                break
            if not message:
                break
            for descriptor in descriptors:
                socket.socket(fileno=descriptor).close()
                self._on_close()

    async def _adopt(self, connection: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(self._create_protocol, connection)
        except OSError:  # the client left before it was adopted
            connection.close()
            self._on_close()

    def _on_close(self) -> None:
        self._closed += 1
        self._report()

    def _report(self) -> None:
        self._retrying = False
        if not self._send(closed_report(self._closed)):
            self._retrying = True
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._retry)

    def _retry(self) -> None:
        if self._retrying:
            self._report()

    def _send(self, message: bytes) -> bool:
        """Whether the balancer could take ``message`` now (False: its queue is full)."""
        try:
            self.channel.send(message)
        except BlockingIOError:
            return False
        except OSError:  # the balancer is gone: no one to tell
            pass
        return True


def _counted(
    protocol_class: type, on_close: Callable[[], None], server: HandedConnectionsServer
) -> type:
    """``protocol_class`` that calls ``on_close()`` once its connection is lost, and shuts a
    connection adopted after ``server``'s shutdown began (that shutdown has passed it by)."""

    class Counted(protocol_class):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if server.should_exit:
                self.shutdown()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            on_close()

    return Counted


def main(argv: list[str] | None = None) -> None:
    channel_fd, log_level = (argv if argv is not None else sys.argv[1:])[:2]
    # ws="none": a websocket upgrade would swap the counted protocol out (the app has none)
    config = uvicorn.Config(APP_FACTORY, factory=True, log_level=log_level, ws="none")
    channel = socket.socket(fileno=int(channel_fd))
    try:
        HandedConnectionsServer(config, channel).run()
    except KeyboardInterrupt:  # Ctrl+C reaches the workers too; uvicorn re-raises it after
        pass  # its graceful stop, which has happened


if __name__ == "__main__":
    main()

"""One process of ``serve --workers N``: serves the connections the balancer hands it.

Why not a listening socket shared by the workers (uvicorn's way): whichever worker's loop wakes
first accepts, so a client's burst of new keep-alive connections can all land on one worker
and stay there (16 of 16 in several runs, docs/benchmarks-index.md, sessions 21 and 23) while
the other sits idle. Here the balancer (``serve/balancer.py``) accepts every connection and
hands it over a Unix socket (its file descriptor, ``SCM_RIGHTS``) to the ready worker with the
fewest open ones; the worker says when it is ready and when each connection closes.

Run as ``python -m tastespace.serve.worker CHANNEL_FD LOG_LEVEL``, with the app's settings in
``$TASTESPACE_SERVE`` (``serve/app.py:app_from_environment``).
"""

from __future__ import annotations

import asyncio
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

READY = b"r"
"""Worker → balancer: the app has started; connections may come."""
CLOSED = b"-"
"""Worker → balancer: one handed connection has closed."""
CONNECTION = b"c"
"""Balancer → worker: one connection, its descriptor attached."""

APP_FACTORY = "tastespace.serve.app:app_from_environment"


class HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections received on
    ``channel`` (a ``SOCK_SEQPACKET`` Unix socket to the balancer); it stops when the balancer
    goes away."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._adopting: set[asyncio.Task] = set()  # held, so that none is collected midway

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        protocol_class = _counted(self.config.http_protocol_class, self._closed)
        config, state, app_state = self.config, self.server_state, self.lifespan.state

        def create_protocol() -> asyncio.Protocol:
            return protocol_class(config=config, server_state=state, app_state=app_state)

        self._create_protocol = create_protocol
        self.servers = []  # nothing to stop listening on at shutdown
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._receive)
        self.channel.send(READY)
        self.started = True

    def _receive(self) -> None:
        """Adopt every connection waiting on the channel; an empty read is the balancer gone."""
        while True:
            try:
                message, descriptors, _, _ = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                message, descriptors = b"", []
            if not message:
                asyncio.get_running_loop().remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for descriptor in descriptors:
                connection = socket.socket(fileno=descriptor)
                connection.setblocking(False)
                task = asyncio.ensure_future(self._adopt(connection))
                self._adopting.add(task)
                task.add_done_callback(self._adopting.discard)

    async def _adopt(self, connection: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(self._create_protocol, connection)
        except OSError:  # the client left before it was adopted
            connection.close()
            self._closed()

    def _closed(self) -> None:
        try:
            self.channel.send(CLOSED)
        except OSError:  # the balancer is gone: no one to tell
            pass


def _counted(protocol_class: type, on_close) -> type:
    """``protocol_class`` that calls ``on_close()`` once its connection is lost."""

    class Counted(protocol_class):  # type: ignore[misc, valid-type]
        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            on_close()

    return Counted


def main(argv: list[str] | None = None) -> None:
    channel_fd, log_level = (argv if argv is not None else sys.argv[1:])[:2]
    config = uvicorn.Config(APP_FACTORY, factory=True, log_level=log_level)
    channel = socket.socket(fileno=int(channel_fd))
    try:
        HandedConnectionsServer(config, channel).run()
    except KeyboardInterrupt:  # Ctrl+C reaches the workers too; uvicorn re-raises it after
        pass  # its graceful stop, which has happened


if __name__ == "__main__":
    main()

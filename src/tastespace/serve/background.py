"""Serve an app on a free loopback port in a background thread: for tests, scripts, notebooks.

>>> from tastespace.serve.app import create_app                      # doctest: +SKIP
>>> with serving(create_app(["runs/neural"])) as url:                 # doctest: +SKIP
...     httpx.get(f"{url}/healthz").json()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tastespace.errors import ConfigError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app: Any, port: int | None = None, timeout: float = 20.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a daemon thread; yield its base URL.

    The server stops (and the thread ends) when the block exits.
    """
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigError(f"the server did not start on 127.0.0.1:{port}; is the port free?")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)

"""Who may talk to the server: a Host-header allow-list and an optional bearer token.

Why both, on a server that binds loopback by default: loopback stops other machines, not other
web pages. A page on ``evil.example`` can point its own DNS name at 127.0.0.1 (DNS rebinding)
and then read our answers as same-origin; its requests still carry ``Host: evil.example``, so
refusing Hosts we do not know closes that door. The token closes the rest (other local users,
``--host 0.0.0.0``): when set, every ``/api`` route needs ``Authorization: Bearer <token>``.

The explorer page and its static files need no token (they hold no data); the page takes the
token from ``/?token=...`` once, keeps it in the tab's ``sessionStorage`` and sends it as the
header (``static/api.js``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from tastespace.errors import ConfigError
from tastespace.serve.errors import ApiError

#: Names a browser on this machine uses for a loopback server.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"
TOKEN_VARIABLE = "TASTESPACE_TOKEN"


def allowed_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names plus ``extra`` (lower-cased, brackets and ports not allowed)."""
    names = set(LOOPBACK_HOSTS)
    for name in extra:
        clean = name.strip().lower()
        if not clean or any(c in clean for c in "/[]@ ") or clean.count(":") == 1:
            raise ConfigError(
                f"--allow-host {name!r} is not a host name or address "
                "(give it without scheme, port or brackets, e.g. my-box.lan or 10.0.0.5)"
            )
        names.add(clean)
    return frozenset(names)


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header without its port (``[::1]:8000`` → ``::1``); None if
    it does not parse."""
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts.hostname or None


class HostAllowList:
    """ASGI middleware: answer 400 to a request whose ``Host`` is not in ``hosts``."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or ANY_HOST in self.hosts:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        name = host_name(header)
        if name is not None and name.lower() in self.hosts:
            await self.app(scope, receive, send)
            return
        detail = (
            f"Host header {header!r} is not one this server answers to "
            f"({', '.join(sorted(self.hosts))}); start it with --allow-host NAME to add one"
        )
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def check_token(token: str) -> str:
    """``token`` if it can travel in an HTTP header, else a :class:`ConfigError`."""
    if not token:
        raise ConfigError(f"the token is empty; give --token T (or ${TOKEN_VARIABLE}) or neither")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise ConfigError(
            "the token must be printable ASCII without spaces (it travels in an HTTP header)"
        )
    return token


class BearerToken(HTTPBearer):
    """FastAPI dependency: the request must carry ``Authorization: Bearer <token>``.

    A subclass of FastAPI's scheme so /docs shows the lock and an "Authorize" button; the
    comparison is constant-time.
    """

    def __init__(self, token: str) -> None:
        super().__init__(auto_error=False, description="The token `tastespace serve --token` set.")
        self._expected = check_token(token).encode()

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        header = request.headers.get("authorization")
        if header is None:
            raise _unauthorized(
                "missing bearer token: this server was started with --token; send the header "
                "'Authorization: Bearer <token>'"
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise _unauthorized("the Authorization header must read 'Bearer <token>'")
        if not secrets.compare_digest(given.strip().encode("latin-1"), self._expected):
            raise _unauthorized("wrong bearer token in the Authorization header")


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, headers={"WWW-Authenticate": "Bearer"})

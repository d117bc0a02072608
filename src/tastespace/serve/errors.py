"""How the API answers when it cannot: ``{"detail": one line, **extra}`` with a status.

404 for an unknown item or model, 422 for an ambiguous title (with ``candidates``) or an
unusable request, 401 for a missing or wrong token. A request that fails validation gets one
line naming the first bad field (``history[2]: ...``) and the full list under ``errors``, so a
client can print ``detail`` as it prints every other error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tastespace.data.catalog import AmbiguousItemError
from tastespace.errors import TastespaceError, UnknownIdError

if TYPE_CHECKING:
    from tastespace.session import Session

SHOWN_INPUT_CHARS = 60


class ApiError(Exception):
    """An error answered as ``{"detail": message, **extra}`` with ``status``."""

    def __init__(
        self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers, extra


@contextmanager
def answers(session: Session) -> Iterator[None]:
    """Library errors → HTTP answers, with candidates (raw ids) for ambiguous titles."""
    try:
        yield
    except AmbiguousItemError as err:
        candidates = [session.record(index) for index, _ in err.candidates]
        raise ApiError(422, str(err), candidates=candidates) from err
    except UnknownIdError as err:
        raise ApiError(404, str(err)) from err
    except TastespaceError as err:
        raise ApiError(422, str(err)) from err


def field_name(location: Sequence[str | int]) -> str:
    """``("body", "history", 2)`` → ``history[2]``; ``("query", "k")`` → ``k``."""
    location = tuple(location)
    parts = list(location[1:]) if location[:1] in (("body",), ("query",), ("path",)) else []
    if not parts:
        return "request body" if location[:1] == ("body",) else ".".join(map(str, location))
    name = str(parts[0])
    for part in parts[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def describe(errors: Sequence[dict[str, Any]]) -> str:
    """One line for a list of pydantic errors: the first one, with its field and input."""
    first = errors[0]
    if first["type"] == "json_invalid":  # loc is ("body", character offset)
        reason = first.get("ctx", {}).get("error", "JSON decode error")
        return f"request body is not valid JSON (at character {first['loc'][-1]}): {reason}"
    message = str(first["msg"]).removeprefix("Value error, ")
    line = f"{field_name(first['loc'])}: {message}"
    if "input" in first and first["type"] != "missing":
        shown = json.dumps(jsonable_encoder(first["input"]))
        if len(shown) > SHOWN_INPUT_CHARS:
            shown = shown[: SHOWN_INPUT_CHARS - 3] + "..."
        line += f" (got {shown})"
    if len(errors) > 1:
        line += f"; and {len(errors) - 1} more in 'errors'"
    return line


async def _api_error(request: Request, err: ApiError) -> JSONResponse:
    return JSONResponse(
        {"detail": err.detail, **err.extra}, status_code=err.status, headers=err.headers
    )


async def _invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
    errors = jsonable_encoder(err.errors())
    return JSONResponse({"detail": describe(errors), "errors": errors}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Answer :class:`ApiError` and request validation errors in the API's one form."""
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]

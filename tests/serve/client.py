"""A TestClient that speaks to the app as a browser on this machine would (Host: localhost)."""

from __future__ import annotations

import warnings
from typing import Any


def local_client(app: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # newer Starlette: "use httpx2" (a UserWarning)
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://localhost", **kwargs)

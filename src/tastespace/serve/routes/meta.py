"""What is loaded: a health probe (no token, for load balancers) and the model list."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from tastespace.serve.routes.deps import Served
from tastespace.serve.schemas import Health, ModelList

health = APIRouter(tags=["meta"])
router = APIRouter(tags=["meta"])


@health.get("/healthz", response_model=Health)
def healthz(served: Served) -> dict[str, Any]:
    return {"status": "ok", "models": list(served.sessions), "worker": os.getpid()}


@router.get("/api/models", response_model=ModelList)
def models(served: Served) -> dict[str, Any]:
    return {"models": served.infos, "default": served.default}

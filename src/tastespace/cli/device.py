"""The ``--device`` option shared by fit, evaluate, recommend and serve."""

from __future__ import annotations

from typing import Annotated

import typer

DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="auto (CUDA when present), cpu, cuda or cuda:N. Neural only; others run on the CPU.",
    ),
]

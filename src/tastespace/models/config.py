"""Hyper-parameters as frozen dataclasses that round-trip to JSON and parse from ``key=value``.

One definition feeds the CLI (``--param dim=64``), the bundle manifest and the HTTP schema.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Self

from tastespace.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of every model's config: only a seed is common to all.

    ``ALIASES`` maps the CLI's generic names (``dim``, ``epochs``) to a model's own option names
    where they differ (ALS calls them ``factors`` and ``iterations``), so ``--dim`` means the
    vector size for every model.
    """

    ALIASES: ClassVar[dict[str, str]] = {}

    seed: int = 0

    def check_positive(self, *names: str, allow_zero: bool = False) -> None:
        """Raise a ConfigError naming the option, before a bad value reaches an engine; ``None``
        (an option switched off) passes."""
        for name in names:
            value = getattr(self, name)
            if value is not None and (value < 0 or (value == 0 and not allow_zero)):
                bound = "≥ 0" if allow_zero else "> 0"
                raise ConfigError(f"{type(self).__name__}.{name} must be {bound}, got {value}")

    def check_fraction(self, *names: str) -> None:
        """Raise a ConfigError unless each option (a probability or decay) lies in [0, 1)."""
        for name in names:
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"{type(self).__name__}.{name} must be in [0, 1), got {value}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Self:
        """Build from a manifest dict; unknown keys are an error (a typo must not pass)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(payload) - names
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} option(s) {sorted(unknown)}; valid: {sorted(names)}"
            )
        return cls(**payload)

    def with_options(self, options: dict[str, Any]) -> Self:
        """A copy with options applied; strings (from the CLI) are parsed by field type."""
        hints = typing.get_type_hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        parsed = {}
        for key, raw in options.items():
            name = key.replace("-", "_")
            name = self.ALIASES.get(name, name)
            if name not in names:
                raise ConfigError(
                    f"{type(self).__name__} has no option {key!r}; valid: {sorted(names)}"
                )
            parsed[name] = _parse(raw, hints[name], name) if isinstance(raw, str) else raw
        return dataclasses.replace(self, **parsed)


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["dim=64", "lr=0.01"]`` → ``{"dim": "64", "lr": "0.01"}`` with a clear error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"option {pair!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _parse(raw: str, hint: Any, name: str) -> Any:
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    if raw.lower() in ("none", "null") and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        if typing.get_origin(option) is typing.Literal:
            if raw in typing.get_args(option):
                return raw
            continue
        try:
            if option is bool:
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                continue
            if option in (int, float, str):
                return option(raw)
        except ValueError:
            continue
    raise ConfigError(f"option {name}={raw!r} is not a valid {hint}")

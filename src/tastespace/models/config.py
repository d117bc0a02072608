"""Hyper-parameters and run options as frozen dataclasses, validated once from their type hints.

One definition feeds the CLI (``--param dim=64``), the bundle manifest and the HTTP schema. Every
field is checked against its annotation when the object is built — from Python, from a manifest
or from ``key=value`` strings — so a wrong type or an unknown ``Literal`` choice fails at once
with a one-line :class:`~tastespace.errors.ConfigError` naming the field, the value and what was
expected. The string under each field is its documentation; errors quote it.

>>> from tastespace.models.baselines import EASEConfig
>>> EASEConfig(l2=500).l2
500.0
>>> EASEConfig.from_json({"l2": "500"})
Traceback (most recent call last):
    ...
tastespace.errors.ConfigError: EASEConfig.l2='500': expected float — Ridge strength λ ...
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import numbers
import textwrap
import types
import typing
from typing import Any, ClassVar, Self

from tastespace.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Options:
    """Frozen, type-checked, JSON round-tripping options; subclasses add fields and
    :meth:`validate` for value ranges."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = _checked(self, f.name, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Range checks beyond the type (override; the types are already checked)."""

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
        hints = _hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        parsed = {}
        for key, raw in options.items():
            name = self.resolve_name(key)
            if name not in names:
                raise ConfigError(
                    f"{type(self).__name__} has no option {key!r}; valid: {sorted(names)}"
                )
            parsed[name] = _parse(self, name, raw, hints[name]) if isinstance(raw, str) else raw
        return dataclasses.replace(self, **parsed)

    @classmethod
    def resolve_name(cls, key: str) -> str:
        """The field a user-facing option name means (dashes allowed)."""
        return key.replace("-", "_")

    @classmethod
    def describe(cls) -> list[str]:
        """One line per field: ``name: type = default — doc`` (what ``-p help`` prints)."""
        hints, docs = _hints(cls), field_docs(cls)
        lines = []
        for f in dataclasses.fields(cls):
            doc = f" — {docs[f.name]}" if f.name in docs else ""
            lines.append(f"{f.name}: {_expected(hints[f.name])} = {f.default!r}{doc}")
        return lines


@dataclasses.dataclass(frozen=True)
class ModelConfig(Options):
    """Base of every model's config: only a seed is common to all.

    ``ALIASES`` maps the CLI's generic names (``dim``, ``epochs``) to a model's own option names
    where they differ (ALS calls them ``factors`` and ``iterations``), so ``--dim`` means the
    vector size for every model. ``RETIRED`` names options older bundles may still carry that
    no longer belong to the model; :meth:`from_json` drops them.
    """

    ALIASES: ClassVar[dict[str, str]] = {}
    RETIRED: ClassVar[frozenset[str]] = frozenset()

    seed: int = 0
    """Seed of every randomised step of the fit."""

    @classmethod
    def resolve_name(cls, key: str) -> str:
        name = key.replace("-", "_")
        return cls.ALIASES.get(name, name)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Self:
        return super().from_json({k: v for k, v in payload.items() if k not in cls.RETIRED})

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


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["dim=64", "lr=0.01"]`` → ``{"dim": "64", "lr": "0.01"}`` with a clear error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"option {pair!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literal written under each field (base classes
    first, so a subclass's text wins); empty where the source is not available."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, following in zip(body, body[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(following.value.value.split())
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _alternatives(hint: Any) -> tuple[Any, ...]:
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _expected(hint: Any) -> str:
    """``int``, ``float or None``, ``one of 'a', 'b'``: how an error names the hint."""
    names = []
    for option in _alternatives(hint):
        if option is type(None):
            names.append("None")
        elif typing.get_origin(option) is typing.Literal:
            names.append("one of " + ", ".join(repr(v) for v in typing.get_args(option)))
        else:
            names.append(getattr(option, "__name__", str(option)))
    return " or ".join(names)


def _fail(owner: Options, name: str, value: Any, hint: Any) -> ConfigError:
    doc = field_docs(type(owner)).get(name)
    suffix = f" — {doc.split('. ')[0].rstrip('.')}" if doc else ""
    return ConfigError(
        f"{type(owner).__name__}.{name}={value!r}: expected {_expected(hint)}{suffix}"
    )


def _checked(owner: Options, name: str, value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint`` (ints widened to float, numpy scalars to Python), else
    raise."""
    for option in _alternatives(hint):
        if option is type(None):
            if value is None:
                return None
        elif typing.get_origin(option) is typing.Literal:
            if isinstance(value, str) and value in typing.get_args(option):
                return value
        elif option is bool:
            if isinstance(value, bool):
                return value
        elif option is int:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return int(value)
        elif option is float:
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return float(value)
        elif option is str:
            if isinstance(value, str):
                return value
        elif isinstance(value, option):
            return value
    raise _fail(owner, name, value, hint)


def _parse(owner: Options, name: str, raw: str, hint: Any) -> Any:
    """A CLI string as the field's type (``none``/``null`` for an optional field)."""
    options = _alternatives(hint)
    if raw.lower() in ("none", "null") and type(None) in options:
        return None
    for option in options:
        if typing.get_origin(option) is typing.Literal and raw in typing.get_args(option):
            return raw
        if option is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
        elif option in (int, float):
            try:
                return option(raw)
            except ValueError:
                continue
        elif option is str:
            return raw
    raise _fail(owner, name, raw, hint)

"""``fit --config FILE.toml`` and ``fit --from BUNDLE``: a run's options kept as data.

Why: a fit worth keeping is worth re-running — on new data, by a colleague, in CI. Every
option of ``fit`` can live in a TOML file (keys spelled like the flags, ``min-rating`` or
``min_rating``; model options under ``[params]``), and a bundle already records its model kind
and options, so ``--from`` re-runs them. Precedence: flags > ``--config`` > ``--from`` > defaults.

    data = "ml-100k.zip"
    model = "ease"
    min-rating = 4

    [params]
    l2 = 300
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import typer

from tastespace.errors import ConfigError

RUN_ONLY = frozenset({"device", "threads", "checkpoint_dir", "resume"})
"""Config fields that describe one machine's run, not the model; ``--from`` leaves them."""
NOT_IN_FILES = frozenset({"config", "from_bundle", "param", "help"})


def _layer(ctx: typer.Context, name: str, values: dict[str, Any], params: dict[str, str]) -> None:
    """Record one source of defaults and rebuild ``ctx.default_map`` in precedence order."""
    layers = ctx.meta.setdefault("tastespace.layers", {})
    layers[name] = (values, params)
    merged: dict[str, Any] = {}
    for source in ("from", "config"):
        merged.update(layers.get(source, ({}, {}))[0])
    ctx.default_map = {**(ctx.default_map or {}), **merged}


def layered_params(ctx: typer.Context) -> dict[str, str]:
    """Model options from ``--from`` then ``--config`` (flags' ``-p`` go on top)."""
    layers = ctx.meta.get("tastespace.layers", {})
    out: dict[str, str] = {}
    for source in ("from", "config"):
        out.update(layers.get(source, ({}, {}))[1])
    return out


def _option_values(ctx: typer.Context, table: dict[str, Any], source: str) -> dict[str, Any]:
    """``table`` keyed by the command's own option names; an unknown key is an error."""
    params = {p.name: p for p in ctx.command.params if p.param_type_name == "option" and p.name}
    out = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in params or name in NOT_IN_FILES:
            valid = ", ".join(sorted(n.replace("_", "-") for n in params if n not in NOT_IN_FILES))
            raise ConfigError(f"{source}: unknown option {key!r}; valid: {valid}, [params]")
        out[name] = value  # the option converts and checks it like a typed flag
    return out


def _as_param_strings(table: Any, source: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [params] must be a table of model options")
    return {str(k): _scalar_text(v, f"{source}: params.{k}") for k, v in table.items()}


def _scalar_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if value is None:
        return "none"
    raise ConfigError(f"{where}: expected a number, string or boolean, got {type(value).__name__}")


def load_config_file(
    ctx: typer.Context, _param: typer.CallbackParam, value: Path | None
) -> Path | None:
    """Eager callback of ``--config``: the TOML file's options become the command's defaults."""
    if value is None:
        return None
    try:
        table = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{value}: cannot read the config file ({err.strerror})") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{value}: not valid TOML ({err})") from err
    params = _as_param_strings(table.pop("params", {}), str(value))
    _layer(ctx, "config", _option_values(ctx, table, str(value)), params)
    return value


def load_bundle_options(
    ctx: typer.Context, _param: typer.CallbackParam, value: Path | None
) -> Path | None:
    """Eager callback of ``--from``: the bundle's model kind and options become the defaults."""
    if value is None:
        return None
    from tastespace.io.bundle import read_bundle

    manifest = read_bundle(value).manifest
    config = manifest.get("config")
    if not isinstance(config, dict) or not isinstance(manifest.get("kind"), str):
        raise ConfigError(f"{value}: the bundle records no model kind and config to re-run")
    params = {
        k: _scalar_text(v, f"{value}: config.{k}")
        for k, v in config.items()
        if k not in RUN_ONLY and not isinstance(v, list | dict)
    }
    _layer(ctx, "from", {"model": manifest["kind"]}, params)
    return value


def write_fit_config(path: Path, model: str, params: dict[str, Any], **options: Any) -> Path:
    """A TOML file ``fit --config`` reads back: ``options`` (flag names) and ``[params]``."""
    lines = [f"model = {json.dumps(model)}"]
    lines += [f"{k.replace('_', '-')} = {_toml(v)}" for k, v in options.items() if v is not None]
    lines += ["", "[params]"] + [f"{k} = {_toml(v)}" for k, v in params.items() if v is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string

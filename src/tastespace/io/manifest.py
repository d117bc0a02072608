"""The manifest's schema, checked before anything in a bundle is trusted.

Every key the loader reads is checked for presence and type here, so a hand-edited or damaged
manifest is one :class:`~tastespace.errors.BundleError` naming the key — never a ``KeyError``
or ``TypeError`` from deep inside a model's ``load``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tastespace.errors import BundleError
from tastespace.io.integrity import HASH

#: 1: manifest + arrays + items, no digests. 2: adds ``files`` (size + SHA-256 of every other
#: file) and ``manifest_sha256`` (the manifest's own digest).
FORMAT_VERSION = 2
FIRST_HASHED_VERSION = 2

_NUMBER = (int, float)
#: key → (accepted types, description for the message); ``None`` in the types means nullable.
_REQUIRED: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": ((str,), "a model kind string"),
    "config": ((dict,), "an object of hyper-parameters"),
    "item_ids": ((dict,), 'an object {"name": ..., "ids": [...]}'),
    "catalog_bags": ((dict,), "an object {feature: [values]}"),
    "fingerprint": ((str, type(None)), "a string or null"),
    "fit_seconds": ((*_NUMBER, type(None)), "a number or null"),
    "extra": ((dict,), "an object"),
}
_HEX = re.compile(r"[0-9a-f]{64}")


def parse_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    """Parse and check ``raw``, the bytes of ``path`` (a ``manifest.json``)."""
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err}); the bundle is damaged") from err
    if not isinstance(manifest, dict):
        raise BundleError(
            f"{path}: expected a JSON object, found {_json_type(manifest)}; the bundle is damaged"
        )
    check_version(path, manifest)
    for key, (types, wanted) in _REQUIRED.items():
        _check_key(path, manifest, key, types, wanted)
    ids = manifest["item_ids"].get("ids")
    if not isinstance(ids, list) or not set(map(type, ids)) <= {int, str}:  # bool is no int here
        raise BundleError(f"{path}: 'item_ids.ids' must be a list of ints or strings")
    if not ids:
        raise BundleError(f"{path}: 'item_ids.ids' is empty; a fitted model has at least one item")
    for name, values in manifest["catalog_bags"].items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BundleError(f"{path}: 'catalog_bags.{name}' must be a list of strings")
    if manifest["format_version"] >= FIRST_HASHED_VERSION:
        _check_files(path, manifest)
    return manifest


def check_version(path: Path, manifest: dict[str, Any]) -> None:
    """``format_version`` must be an integer in ``1..FORMAT_VERSION``."""
    if "format_version" not in manifest:
        raise BundleError(f"{path}: missing key 'format_version'; the bundle is damaged")
    found = manifest["format_version"]
    if not isinstance(found, int) or isinstance(found, bool):
        raise BundleError(
            f"{path}: 'format_version' must be an integer, found {_json_type(found)} {found!r}"
        )
    if found < 1:
        raise BundleError(
            f"{path}: format_version {found} is not a bundle format (formats are 1.."
            f"{FORMAT_VERSION}); the bundle is damaged"
        )
    if found > FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {found} is newer than this tastespace reads (up to "
            f"{FORMAT_VERSION}); upgrade tastespace"
        )


def _check_key(
    path: Path, manifest: dict[str, Any], key: str, types: tuple[type, ...], wanted: str
) -> None:
    if key not in manifest:
        raise BundleError(f"{path}: missing key {key!r}; the bundle is damaged")
    value = manifest[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise BundleError(
            f"{path}: {key!r} must be {wanted}, found {_json_type(value)}; the bundle is damaged"
        )


def _check_files(path: Path, manifest: dict[str, Any]) -> None:
    """``files`` maps plain file names to ``{"sha256": 64 hex, "bytes": int}``."""
    _check_key(path, manifest, "files", (dict,), 'an object {file: {"sha256", "bytes"}}')
    _check_key(path, manifest, "manifest_sha256", (str,), "a hex digest string")
    for name, record in manifest["files"].items():
        if not is_plain_name(name):
            raise BundleError(f"{path}: 'files' names {name!r}, which is not a plain file name")
        if (
            not isinstance(record, dict)
            or not isinstance(record.get(HASH), str)
            or not _HEX.fullmatch(record[HASH])
            or not isinstance(record.get("bytes"), int)
            or isinstance(record.get("bytes"), bool)
            or record["bytes"] < 0
        ):
            raise BundleError(
                f'{path}: files[{name!r}] must be {{"{HASH}": 64 hex digits, "bytes": int >= 0}}'
            )


def is_plain_name(name: str) -> bool:
    """A file directly inside the bundle: no folders, no parent links, not hidden."""
    return bool(name) and name == Path(name).name and not name.startswith(".")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return names.get(type(value), type(value).__name__)

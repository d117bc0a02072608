"""Bundles can't be silently corrupted, and saving never loses what a user owns.

Every damaged or hostile bundle below must be refused with one :class:`BundleError` line that
names the file; every interrupted save must leave the old or the new bundle at the path.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tastespace.data import load_dataset
from tastespace.errors import BundleError, BundleWarning
from tastespace.io import bundle as bundle_io
from tastespace.io.integrity import SELF_DIGEST, file_record, manifest_digest
from tastespace.io.swap import BUILD, STAGING, check_target
from tastespace.models.base import Recommender
from tastespace.models.histories import ItemIndices
from tastespace.models.registry import model_class

fault = pytest.mark.fault
MANIFEST, ARRAYS, ITEMS = "manifest.json", "arrays.safetensors", "items.parquet"


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic:tiny")


@pytest.fixture(scope="module")
def popularity(tiny):
    return model_class("popularity")().fit(tiny)


@pytest.fixture(scope="module")
def ease(tiny):
    return model_class("ease")(l2=10.0).fit(tiny)


@pytest.fixture
def saved(popularity, tmp_path):
    """A fresh popularity bundle per test (tests damage it)."""
    return popularity.save(tmp_path / "pop")


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())


def write_manifest(bundle: Path, manifest: dict, *, reseal: bool = True) -> None:
    """Rewrite the manifest; ``reseal`` recomputes every digest, as a buggy writer would."""
    if reseal and isinstance(manifest, dict) and "files" in manifest:
        manifest["files"] = {name: file_record(bundle / name) for name in manifest["files"]}
        manifest[SELF_DIGEST] = manifest_digest(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def reseal(bundle: Path) -> None:
    write_manifest(bundle, manifest_of(bundle))


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_arrays(bundle: Path, change) -> None:
    """Load the safetensors file, let ``change`` edit the dict, save it back and reseal."""
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(bundle / ARRAYS))
    change(arrays)
    save_file(arrays, str(bundle / ARRAYS))
    reseal(bundle)


def refused(bundle: Path, *fragments: str) -> str:
    """Assert loading fails with one BundleError line containing ``fragments``."""
    with pytest.raises(BundleError) as caught:
        Recommender.load(bundle)
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- a healthy bundle ---------------------------------------------------------------------------
def test_manifest_records_size_and_sha256_of_every_file(saved):
    manifest = manifest_of(saved)
    assert manifest["format_version"] == bundle_io.FORMAT_VERSION == 2
    assert set(manifest["files"]) == {ARRAYS, ITEMS}
    for name, record in manifest["files"].items():
        assert record == file_record(saved / name)
        assert record["bytes"] == (saved / name).stat().st_size and len(record["sha256"]) == 64
    assert manifest[SELF_DIGEST] == manifest_digest(manifest)


def test_round_trip_answers_match(saved, popularity):
    loaded = Recommender.load(saved)
    np.testing.assert_array_equal(
        loaded.recommend(ItemIndices([[0, 1]]), k=5)[0],
        popularity.recommend(ItemIndices([[0, 1]]), k=5)[0],
    )


# -- damaged files ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        pytest.param(
            ARRAYS,
            lambda p: flip_byte(p, -3),
            "sha256 does not match",
            marks=fault(
                "bundle",
                "one byte flipped in arrays.safetensors",
                "BundleError naming arrays.safetensors (sha256 mismatch)",
            ),
        ),
        pytest.param(
            ARRAYS,
            lambda p: p.write_bytes(p.read_bytes()[:-10]),
            "bytes, manifest.json recorded",
            marks=fault(
                "bundle",
                "arrays.safetensors truncated",
                "BundleError naming arrays.safetensors (size mismatch)",
            ),
        ),
        pytest.param(
            ITEMS,
            lambda p: flip_byte(p, len(p.read_bytes()) // 2),
            "sha256 does not match",
            marks=fault(
                "bundle",
                "one byte flipped in items.parquet",
                "BundleError naming items.parquet (sha256 mismatch)",
            ),
        ),
        pytest.param(
            ITEMS,
            lambda p: p.unlink(),
            "missing",
            marks=fault(
                "bundle", "items.parquet deleted", "BundleError naming items.parquet (missing)"
            ),
        ),
        pytest.param(
            ARRAYS,
            lambda p: p.write_bytes(b""),
            "0 bytes",
            marks=fault(
                "bundle",
                "arrays.safetensors emptied (0 bytes)",
                "BundleError naming arrays.safetensors (size mismatch)",
            ),
        ),
    ],
)
def test_damaged_file_is_refused_naming_it(saved, name, damage, expected):
    damage(saved / name)
    message = refused(saved, name, expected)
    assert str(saved) in message


@fault(
    "bundle",
    "arrays.safetensors copied in from another bundle",
    "BundleError naming arrays.safetensors (digest mismatch)",
)
def test_arrays_from_another_bundle_are_refused(saved, ease, tmp_path):
    other = ease.save(tmp_path / "ease")
    shutil.copy(other / ARRAYS, saved / ARRAYS)
    refused(saved, ARRAYS, "damaged")


@fault(
    "bundle",
    "manifest.json edited by hand (an item id changed, digests left)",
    "BundleError naming manifest.json (manifest_sha256 mismatch)",
)
def test_edited_manifest_is_refused(saved):
    manifest = manifest_of(saved)
    manifest["item_ids"]["ids"][0] = 10_000
    write_manifest(saved, manifest, reseal=False)
    refused(saved, MANIFEST, "manifest_sha256")


@fault(
    "bundle",
    "damaged safetensors header (digests recomputed over the damage)",
    "BundleError naming arrays.safetensors: not a readable safetensors file",
)
def test_damaged_safetensors_header_is_refused(saved):
    path = saved / ARRAYS
    data = bytearray(path.read_bytes())
    data[8:16] = b"{garbage"
    path.write_bytes(bytes(data))
    reseal(saved)
    refused(saved, ARRAYS, "not a readable safetensors file")


@fault(
    "bundle",
    "header length field says 2^60 bytes (digests recomputed)",
    "BundleError naming arrays.safetensors: not a readable safetensors file",
)
def test_safetensors_header_length_out_of_range_is_refused(saved):
    path = saved / ARRAYS
    path.write_bytes((1 << 60).to_bytes(8, "little") + path.read_bytes()[8:])
    reseal(saved)
    refused(saved, ARRAYS, "not a readable safetensors file")


@fault(
    "bundle",
    "items.parquet is not Parquet (digests recomputed)",
    "BundleError naming items.parquet: not a readable Parquet file",
)
def test_unreadable_parquet_is_refused(saved):
    (saved / ITEMS).write_bytes(b"PAR1 not really")
    reseal(saved)
    refused(saved, ITEMS, "not a readable Parquet file")


# -- non-finite weights -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            np.nan,
            marks=fault(
                "bundle",
                "a NaN weight in arrays.safetensors (digests recomputed)",
                "BundleError naming the array and the count",
            ),
        ),
        pytest.param(
            -np.inf,
            marks=fault(
                "bundle",
                "a -inf weight in arrays.safetensors (digests recomputed)",
                "BundleError naming the array and the count",
            ),
        ),
    ],
)
def test_non_finite_weights_are_refused_at_load(saved, value):
    def poison(arrays):
        arrays["counts"] = arrays["counts"].astype(np.float32)
        arrays["counts"][[3, 7]] = value

    rewrite_arrays(saved, poison)
    refused(saved, ARRAYS, "'counts'", "2 NaN/inf")


@fault("save", "saving a model whose weights hold NaN", "BundleError before anything is written")
def test_non_finite_weights_are_refused_at_save(tiny, tmp_path):
    model = model_class("popularity")().fit(tiny)
    model.counts_ = model.counts_.astype(np.float32)
    model.counts_[0] = np.nan
    with pytest.raises(BundleError, match="'counts' holds 1 NaN/inf"):
        model.save(tmp_path / "nan")
    assert not (tmp_path / "nan").exists()


# -- the manifest's schema ----------------------------------------------------------------------
@fault(
    "bundle",
    "manifest.json is not valid JSON (truncated)",
    "BundleError naming manifest.json: not valid JSON",
)
def test_truncated_manifest(saved):
    (saved / MANIFEST).write_text((saved / MANIFEST).read_text()[:40])
    refused(saved, MANIFEST, "not valid JSON")


@fault("bundle", "manifest.json is not UTF-8", "BundleError naming manifest.json: not valid JSON")
def test_manifest_not_utf8(saved):
    (saved / MANIFEST).write_bytes(b'{"kind": "\xff\xfe"}')
    refused(saved, MANIFEST, "not valid JSON")


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        pytest.param(
            [1, 2],
            "an array",
            marks=fault(
                "bundle",
                "manifest.json is a JSON array, not an object",
                "BundleError naming manifest.json: expected a JSON object",
            ),
        ),
        pytest.param(
            "bundle",
            "a string",
            marks=fault(
                "bundle",
                "manifest.json is a JSON string",
                "BundleError naming manifest.json: expected a JSON object",
            ),
        ),
        pytest.param(
            None,
            "null",
            marks=fault(
                "bundle",
                "manifest.json is JSON null",
                "BundleError naming manifest.json: expected a JSON object",
            ),
        ),
    ],
)
def test_manifest_not_an_object(saved, payload, found):
    (saved / MANIFEST).write_text(json.dumps(payload))
    refused(saved, MANIFEST, f"expected a JSON object, found {found}")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(
            key,
            marks=fault(
                "bundle",
                f"manifest.json lacks key '{key}'",
                f"BundleError naming manifest.json and '{key}'",
            ),
        )
        for key in ("format_version", "kind", "config", "item_ids", "extra", "files", SELF_DIGEST)
    ],
)
def test_missing_manifest_key(saved, key):
    manifest = manifest_of(saved)
    del manifest[key]
    write_manifest(saved, manifest, reseal=False)
    refused(saved, MANIFEST, f"missing key '{key}'")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param(
            "kind",
            3,
            "'kind' must be a model kind string, found a number",
            marks=fault(
                "bundle",
                "manifest 'kind' is a number",
                "BundleError naming manifest.json and 'kind'",
            ),
        ),
        pytest.param(
            "config",
            [],
            "'config' must be an object",
            marks=fault(
                "bundle",
                "manifest 'config' is an array",
                "BundleError naming manifest.json and 'config'",
            ),
        ),
        pytest.param(
            "item_ids",
            {"ids": "1,2,3"},
            "'item_ids.ids' must be a list",
            marks=fault(
                "bundle",
                "manifest 'item_ids.ids' is a string",
                "BundleError naming manifest.json and 'item_ids.ids'",
            ),
        ),
        pytest.param(
            "fit_seconds",
            "fast",
            "'fit_seconds' must be a number or null",
            marks=fault(
                "bundle",
                "manifest 'fit_seconds' is a string",
                "BundleError naming manifest.json and 'fit_seconds'",
            ),
        ),
        pytest.param(
            "catalog_bags",
            {"genres": [1, 2]},
            "'catalog_bags.genres' must be a list of strings",
            marks=fault(
                "bundle",
                "manifest 'catalog_bags' values are numbers",
                "BundleError naming manifest.json and the bag",
            ),
        ),
        pytest.param(
            "files",
            {ARRAYS: {"sha256": "xyz", "bytes": 1}},
            'must be {"sha256": 64 hex digits',
            marks=fault(
                "bundle",
                "manifest 'files' entry has a malformed digest",
                "BundleError naming manifest.json and the entry",
            ),
        ),
        pytest.param(
            "files",
            {"../../etc/passwd": {"sha256": "0" * 64, "bytes": 1}},
            "not a plain file name",
            marks=fault(
                "bundle",
                "manifest 'files' names a path outside the bundle",
                "BundleError: not a plain file name; nothing outside the bundle is read",
            ),
        ),
    ],
)
def test_manifest_wrong_type(saved, key, value, expected):
    manifest = manifest_of(saved)
    manifest[key] = value
    write_manifest(saved, manifest, reseal=False)
    refused(saved, MANIFEST, expected)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param(
            0,
            "format_version 0 is not a bundle format",
            marks=fault("bundle", "format_version 0", "BundleError naming manifest.json"),
        ),
        pytest.param(
            -1,
            "format_version -1 is not a bundle format",
            marks=fault("bundle", "format_version -1", "BundleError naming manifest.json"),
        ),
        pytest.param(
            3,
            "newer than this tastespace reads (up to 2); upgrade tastespace",
            marks=fault(
                "bundle",
                "format_version newer than supported (3)",
                "BundleError: upgrade tastespace",
            ),
        ),
        pytest.param(
            "2",
            "must be an integer, found a string",
            marks=fault("bundle", "format_version is a string", "BundleError naming manifest.json"),
        ),
        pytest.param(
            True,
            "must be an integer, found a boolean",
            marks=fault(
                "bundle", "format_version is a boolean", "BundleError naming manifest.json"
            ),
        ),
    ],
)
def test_bad_format_version(saved, version, expected):
    manifest = manifest_of(saved)
    manifest["format_version"] = version
    write_manifest(saved, manifest, reseal=False)
    refused(saved, MANIFEST, expected)


# -- contents that don't fit together (digests recomputed, as a buggy writer would) -------------
@fault(
    "bundle",
    "manifest lists one item id more than items.parquet has rows",
    "BundleError naming items.parquet and both counts",
)
def test_more_ids_than_catalog_rows(saved):
    manifest = manifest_of(saved)
    manifest["item_ids"]["ids"].append(99_999)
    write_manifest(saved, manifest)
    refused(saved, ITEMS, "200 rows for 201 item ids")


@fault(
    "bundle",
    "weights have one row fewer than the manifest has item ids",
    "BundleError naming arrays.safetensors and both counts",
)
def test_fewer_array_rows_than_ids(saved):
    rewrite_arrays(saved, lambda arrays: arrays.update(counts=arrays["counts"][:-1].copy()))
    refused(saved, ARRAYS, "score 199 items, manifest.json has 200 item ids")


@fault(
    "bundle",
    "EASE weight matrix of the wrong size",
    "BundleError naming the bundle and the shape clash",
)
def test_ease_weights_of_the_wrong_size(ease, tmp_path):
    path = ease.save(tmp_path / "ease")
    rewrite_arrays(path, lambda arrays: arrays.update(weights=arrays["weights"][:-1, :-1].copy()))
    refused(path, "do not fit together")


@fault(
    "bundle",
    "an array the model needs is missing (digests recomputed)",
    "BundleError naming the missing array",
)
def test_missing_array(saved):
    rewrite_arrays(saved, lambda arrays: arrays.update(other=arrays.pop("counts")))
    refused(saved, "missing array or key 'counts'")


@fault(
    "bundle",
    "manifest names an unknown model kind (digests recomputed)",
    "BundleError naming the bundle and the known kinds",
)
def test_unknown_kind(saved):
    manifest = manifest_of(saved)
    manifest["kind"] = "transformer-xl"
    write_manifest(saved, manifest)
    refused(saved, "unknown model 'transformer-xl'")


@fault("bundle", "a folder with no manifest.json", "BundleError: not a tastespace bundle")
def test_not_a_bundle(tmp_path):
    refused(tmp_path, "not a tastespace bundle (no manifest.json)")


# -- format 1 bundles (before the digests) ------------------------------------------------------
def downgrade_to_format_1(bundle: Path) -> None:
    manifest = manifest_of(bundle)
    manifest["format_version"] = 1
    del manifest["files"], manifest[SELF_DIGEST]
    write_manifest(bundle, manifest, reseal=False)


@fault(
    "bundle", "format 1 bundle (no digests)", "loads, with a BundleWarning saying to save it again"
)
def test_format_1_loads_with_a_warning_and_resaving_adds_digests(saved, popularity):
    downgrade_to_format_1(saved)
    with pytest.warns(BundleWarning, match="no file digests.*save the model again"):
        loaded = Recommender.load(saved)
    np.testing.assert_array_equal(
        loaded.recommend(ItemIndices([[0]]), k=5)[0],
        popularity.recommend(ItemIndices([[0]]), k=5)[0],
    )
    loaded.save(saved)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Recommender.load(saved)
    assert manifest_of(saved)["format_version"] == 2


@fault(
    "bundle",
    "format 1 bundle with a damaged safetensors header",
    "BundleError naming arrays.safetensors (no digest to compare)",
)
def test_format_1_damage_is_still_refused(saved):
    downgrade_to_format_1(saved)
    (saved / ARRAYS).write_bytes(b"\x05" * 8 + b"{}")
    with pytest.warns(BundleWarning):
        refused(saved, ARRAYS, "not a readable safetensors file")


# -- saving keeps what the user owns ------------------------------------------------------------
def own_notes(bundle: Path) -> None:
    (bundle / "NOTES.md").write_text("my notes")
    (bundle / "eval").mkdir()
    (bundle / "eval" / "run1.json").write_text('{"recall": 0.3}')


def assert_notes_kept(bundle: Path) -> None:
    assert (bundle / "NOTES.md").read_text() == "my notes"
    assert (bundle / "eval" / "run1.json").read_text() == '{"recall": 0.3}'


def leftovers(bundle: Path) -> list[str]:
    siblings = [p.name for p in bundle.parent.iterdir() if ".tastespace-" in p.name]
    inside = (
        [p.name for p in bundle.iterdir() if p.name.startswith(".tastespace-")]
        if bundle.is_dir()
        else []
    )
    return siblings + inside


@fault(
    "save",
    "re-saving over a bundle holding NOTES.md and an eval/ folder",
    "only manifest/arrays/items replaced; the user's files kept byte for byte",
)
def test_resave_keeps_user_files(saved, ease):
    own_notes(saved)
    ease.save(saved)
    assert_notes_kept(saved)
    assert Recommender.load(saved).kind == "ease"
    assert sorted(p.name for p in saved.iterdir()) == ["NOTES.md", ARRAYS, "eval", ITEMS, MANIFEST]


@fault(
    "save",
    "--out is a folder of other files, not a bundle",
    "BundleError naming the files and force; nothing written",
)
def test_foreign_folder_is_refused_unless_forced(popularity, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    own_notes(folder)
    with pytest.raises(
        BundleError,
        match=r"not a tastespace bundle and holds 2 other entries \(NOTES.md, eval/\).*force=True",
    ) as err:
        popularity.save(folder)
    assert err.value.options == ("path", "force")
    assert sorted(p.name for p in folder.iterdir()) == ["NOTES.md", "eval"]
    popularity.save(folder, force=True)
    assert_notes_kept(folder)
    assert Recommender.load(folder).kind == "popularity"


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(
            "file",
            marks=fault(
                "save", "--out is an existing file", "BundleError: is a file, not a bundle folder"
            ),
        ),
        pytest.param(
            "parent-file",
            marks=fault("save", "--out's parent is a file", "BundleError naming the file parent"),
        ),
        pytest.param(
            "proc",
            marks=fault(
                "save", "--out under /proc (cannot create folders)", "BundleError: not writable"
            ),
        ),
    ],
)
def test_unwritable_out_is_refused_before_anything(tmp_path, setup):
    (tmp_path / "f").write_text("x")
    target = {
        "file": tmp_path / "f",
        "parent-file": tmp_path / "f" / "x",
        "proc": Path("/proc/tastespace-x"),
    }[setup]
    if setup == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    with pytest.raises(BundleError, match="choose another path$") as err:
        check_target(target)
    assert err.value.options == ("path",)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@fault(
    "save",
    "--out inside a read-only folder (chmod 555)",
    "BundleError: not writable (skipped when run as root)",
)
def test_read_only_folder(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(BundleError, match="not writable"):
            check_target(locked / "bundle")
    finally:
        locked.chmod(stat.S_IRWXU)


@fault(
    "save",
    "--out on a read-only file system (EROFS simulated)",
    "BundleError: not writable (Read-only file system)",
)
def test_read_only_file_system(tmp_path, monkeypatch):
    import errno
    import tempfile

    def erofs(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkdtemp", erofs)
    with pytest.raises(BundleError, match="not writable \\(Read-only file system\\)"):
        check_target(tmp_path / "bundle")


# -- interrupted saves --------------------------------------------------------------------------
class Crash(Exception):
    """Stands in for a crash at one step of a save."""


def crash_at_replace(monkeypatch, step: int, *, killed: bool) -> list[tuple[str, str]]:
    """Make the ``step``-th ``os.replace`` of the next save fail; ``killed`` also stops every
    clean-up (``shutil.rmtree``), as a SIGKILL would."""
    calls: list[tuple[str, str]] = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == step:
            raise Crash(f"crash at step {step}")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    if killed:
        monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)
    return calls


IN_PLACE_STEPS = [
    (1, "old", "before the finished build folder becomes the staging folder"),
    (2, "old", "before the manifest commit"),
    (3, "new", "after the commit, before arrays.safetensors moves"),
    (4, "new", "after arrays.safetensors moved, before items.parquet moves"),
]


@pytest.mark.parametrize(
    ("step", "expected", "killed"),
    [
        pytest.param(
            step,
            expected,
            killed,
            marks=fault(
                "save",
                f"save over a bundle {'killed' if killed else 'fails'} {when}",
                f"the path loads as the {expected} bundle; NOTES.md kept; the next save cleans up",
            ),
        )
        for step, expected, when in IN_PLACE_STEPS
        for killed in (False, True)
    ],
)
def test_interrupted_save_over_a_bundle_leaves_old_or_new(
    saved, ease, popularity, monkeypatch, step, expected, killed
):
    own_notes(saved)
    crash_at_replace(monkeypatch, step, killed=killed)
    with pytest.raises(Crash):
        ease.save(saved)
    monkeypatch.undo()
    loaded = Recommender.load(saved)
    assert loaded.kind == {"old": "popularity", "new": "ease"}[expected]
    assert_notes_kept(saved)
    if not killed and expected == "old":
        assert leftovers(saved) == []  # a failure cleans up at once
    popularity.save(saved)  # the next save finishes or discards what was left
    assert leftovers(saved) == []
    assert Recommender.load(saved).kind == "popularity"
    assert_notes_kept(saved)


def test_a_save_over_a_bundle_takes_four_renames(saved, ease, monkeypatch):
    """The steps above are every rename a save makes (so no step goes untested)."""
    calls = crash_at_replace(monkeypatch, step=0, killed=False)
    ease.save(saved)
    assert calls == [(BUILD, STAGING), (MANIFEST, MANIFEST), (ARRAYS, ARRAYS), (ITEMS, ITEMS)]


@pytest.mark.parametrize(
    "killed",
    [
        pytest.param(
            False,
            marks=fault(
                "save",
                "first save to a new path fails at the final rename",
                "no bundle at the path (never a half one); staging removed",
            ),
        ),
        pytest.param(
            True,
            marks=fault(
                "save",
                "first save to a new path killed at the final rename",
                "no bundle at the path; the next save removes the stale sibling folder",
            ),
        ),
    ],
)
def test_interrupted_first_save_leaves_nothing_half_written(
    popularity, tmp_path, monkeypatch, killed
):
    target = tmp_path / "new"
    crash_at_replace(monkeypatch, 1, killed=killed)
    with pytest.raises(Crash):
        popularity.save(target)
    monkeypatch.undo()
    assert not target.exists()
    assert bool(leftovers(target)) == killed
    popularity.save(target)
    assert leftovers(target) == [] and Recommender.load(target).kind == "popularity"


@fault(
    "save",
    "save fails while writing arrays.safetensors (disk full simulated)",
    "BundleError naming the path; the old bundle untouched, no staging left",
)
def test_failure_while_writing_keeps_the_old_bundle(saved, ease, monkeypatch):
    import errno

    import safetensors.numpy

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = {name: (saved / name).read_bytes() for name in (MANIFEST, ARRAYS, ITEMS)}
    monkeypatch.setattr(safetensors.numpy, "save_file", disk_full)
    with pytest.raises(BundleError, match="cannot write the bundle at .*No space left on device"):
        ease.save(saved)
    assert {name: (saved / name).read_bytes() for name in before} == before
    assert leftovers(saved) == []


@fault(
    "save",
    "a reader loads while a killed save's committed files are still staged",
    "the reader gets the new bundle, verified",
)
def test_reader_takes_committed_files_from_staging(saved, ease, monkeypatch):
    crash_at_replace(monkeypatch, 3, killed=True)
    with pytest.raises(Crash):
        ease.save(saved)
    monkeypatch.undo()
    assert (saved / STAGING / ARRAYS).exists()  # not moved yet
    model = Recommender.load(saved)
    np.testing.assert_array_equal(
        model.recommend(ItemIndices([[0, 1]]), k=5)[0],
        ease.recommend(ItemIndices([[0, 1]]), k=5)[0],
    )


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc/self/fd")
def test_every_file_and_folder_is_fsynced(saved, ease, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    ease.save(saved)
    names = [Path(p).name for p in synced]
    for name in (ARRAYS, ITEMS, MANIFEST):
        assert name in names
    assert names.count(saved.name) >= 2  # the bundle folder after the commit and the moves


# -- through the CLI ----------------------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point (tastespace errors → one line, exit 2)."""
    return subprocess.run(
        [sys.executable, "-m", "tastespace", *args], capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout.strip() == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def damaged(popularity, tmp_path_factory):
    path = popularity.save(tmp_path_factory.mktemp("cli") / "damaged")
    flip_byte(path / ARRAYS, -3)
    return path


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            [name, *rest],
            marks=fault(
                "cli",
                f"`tastespace {name}` on a bundle with a flipped byte",
                "exit 2, one line naming arrays.safetensors, no traceback, no output",
            ),
            id=name,
        )
        for name, *rest in (
            ("recommend", "{bundle}", "-H", "1", "--json"),
            ("similar", "{bundle}", "1", "--json"),
            ("evaluate", "{bundle}", "--data", "synthetic:tiny", "--json"),
            ("serve", "{bundle}", "--port", "8763"),
            ("export", "{bundle}", "--format", "npy", "--out", "{tmp}/vectors"),
            ("map", "{bundle}", "--out", "{tmp}/map.png"),
        )
    ],
)
def test_cli_refuses_a_damaged_bundle(damaged, tmp_path, command):
    args = [a.format(bundle=damaged, tmp=tmp_path) for a in command]
    assert_one_line_error(cli(*args), str(damaged / ARRAYS), "damaged")
    assert list(tmp_path.iterdir()) == []  # export / map wrote nothing


@fault(
    "cli",
    "`tastespace recommend` on a bundle whose manifest.json is a JSON array",
    "exit 2, one line naming manifest.json",
)
def test_cli_refuses_a_manifest_that_is_not_an_object(saved):
    (saved / MANIFEST).write_text("[]")
    assert_one_line_error(
        cli("recommend", str(saved), "-H", "1"), str(saved / MANIFEST), "JSON object"
    )


@fault(
    "cli",
    "`tastespace fit --out /proc/x` (cannot be created)",
    "exit 2 naming /proc before the data is even read",
)
def test_cli_fit_checks_out_before_reading_data(tmp_path):
    done = cli("fit", "--data", str(tmp_path / "no-such.csv"), "--out", "/proc/tastespace-x")
    assert_one_line_error(done, "/proc/tastespace-x", "not writable")


@fault(
    "cli",
    "`tastespace fit --out` over a folder of the user's files",
    "exit 2 naming the files; with --force the bundle is written beside them",
)
def test_cli_fit_into_a_foreign_folder_needs_force(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    own_notes(folder)
    args = ("fit", "--model", "popularity", "--data", "synthetic:tiny", "--out", str(folder))
    assert_one_line_error(
        cli(*args), "NOTES.md, eval/", "pass --force to write the bundle beside them (option --out)"
    )
    done = cli(*args, "--force")
    assert done.returncode == 0, done.stderr
    assert_notes_kept(folder)
    assert Recommender.load(folder).kind == "popularity"


def test_cli_fit_over_a_bundle_keeps_user_files(saved):
    own_notes(saved)
    done = cli(
        "fit", "--model", "ease", "-p", "l2=10", "--data", "synthetic:tiny", "--out", str(saved)
    )
    assert done.returncode == 0, done.stderr
    assert_notes_kept(saved)
    assert Recommender.load(saved).kind == "ease"


KILL_AFTER_COMMIT = """
import os, signal, sys
from tastespace.data import load_dataset
from tastespace.models.registry import model_class
real, calls = os.replace, []
def replace(src, dst):
    calls.append(src)
    if len(calls) == 3:  # the commit is done; the data files are still staged
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
model_class("ease")(l2=10.0).fit(load_dataset("synthetic:tiny")).save(sys.argv[1])
"""


@fault(
    "save",
    "save process SIGKILLed right after the manifest commit",
    "the path loads as the new bundle; the next save finishes the move",
)
def test_sigkill_after_commit(saved, ease, popularity):
    own_notes(saved)
    done = subprocess.run([sys.executable, "-c", KILL_AFTER_COMMIT, str(saved)], timeout=300)
    assert done.returncode == -9
    assert (saved / STAGING).is_dir()
    np.testing.assert_array_equal(
        Recommender.load(saved).recommend(ItemIndices([[0]]), k=5)[0],
        ease.recommend(ItemIndices([[0]]), k=5)[0],
    )
    popularity.save(saved)
    assert leftovers(saved) == [] and Recommender.load(saved).kind == "popularity"
    assert_notes_kept(saved)


# -- featureless catalogs (a plain user,item,rating file) ---------------------------------------
@pytest.fixture
def plain_bundle(tmp_path):
    csv = tmp_path / "ratings.csv"
    rows = [f"u{u},{item},{1 + (u + item) % 5}" for u in range(30) for item in range(u % 7, 12, 2)]
    csv.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    model = model_class("popularity")().fit(load_dataset(str(csv)))
    return model.save(tmp_path / "plain"), model


def test_featureless_catalog_keeps_its_rows(plain_bundle):
    path, model = plain_bundle
    loaded = Recommender.load(path)
    assert len(loaded.items_) == model.n_items == 12
    np.testing.assert_array_equal(
        loaded.recommend(ItemIndices([[0]]), k=3)[0], model.recommend(ItemIndices([[0]]), k=3)[0]
    )


@fault(
    "bundle",
    "manifest item_rows disagrees with items.parquet (digests recomputed)",
    "BundleError naming items.parquet and both counts",
)
def test_item_rows_disagreeing_with_the_catalog(saved):
    manifest = manifest_of(saved)
    manifest["item_rows"] = 150
    write_manifest(saved, manifest)
    refused(saved, ITEMS, "200 rows but the manifest records 150")


@fault(
    "bundle",
    "format 1 bundle of a featureless catalog (items.parquet read back with 0 rows)",
    "loads with a BundleWarning; the rows come back from the item ids",
)
def test_format_1_featureless_bundle_gets_its_rows_back(plain_bundle):
    path, model = plain_bundle
    downgrade_to_format_1(path)
    manifest = manifest_of(path)
    del manifest["item_rows"]
    write_manifest(path, manifest, reseal=False)
    with pytest.warns(BundleWarning):
        loaded = Recommender.load(path)
    assert len(loaded.items_) == 12
    np.testing.assert_array_equal(
        loaded.recommend(ItemIndices([[0]]), k=3)[0], model.recommend(ItemIndices([[0]]), k=3)[0]
    )


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            ["tune", "--model", "ease", "--data", "{missing}", "--out", "/proc/ts-x"],
            marks=fault(
                "cli",
                "`tastespace tune --out /proc/x`",
                "exit 2 naming /proc before the data is read or a trial runs",
            ),
            id="tune",
        ),
        pytest.param(
            ["demo", "--out", "/proc/ts-x"],
            marks=fault(
                "cli", "`tastespace demo --out /proc/x`", "exit 2 naming /proc before training"
            ),
            id="demo",
        ),
    ],
)
def test_cli_other_out_options_are_checked_first(tmp_path, command):
    args = [a.format(missing=tmp_path / "no-such.csv") for a in command]
    assert_one_line_error(cli(*args), "/proc/ts-x", "not writable")


@fault(
    "serve",
    "create_app on a damaged bundle",
    "BundleError naming arrays.safetensors; no app is built",
)
def test_server_refuses_a_damaged_bundle(damaged):
    from tastespace.serve.app import create_app

    with pytest.raises(BundleError, match="arrays.safetensors: damaged"):
        create_app([damaged])


@fault(
    "save",
    "two processes' worth of saves to one path at the same time (threads)",
    "saves are serialised by a folder lock; the path loads as one of them, nothing left over",
)
def test_concurrent_saves_to_one_path(saved, popularity, ease):
    import threading

    errors: list[BaseException] = []

    def save_repeatedly(model):
        try:
            for _ in range(4):
                model.save(saved)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=save_repeatedly, args=(m,)) for m in (popularity, ease)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Recommender.load(saved).kind in {"popularity", "ease"}
    assert leftovers(saved) == []


@fault(
    "bundle",
    "a save commits while a reader is between the manifest and the files",
    "the reader notices the new manifest and reads again: it gets the new bundle, no error",
)
def test_reader_retries_when_a_save_lands_mid_read(saved, ease, monkeypatch):
    real = bundle_io._verify_file
    calls = []

    def verify_after_a_save(path, expected):
        if not calls:
            ease.save(saved)  # lands after the reader took the old manifest
        calls.append(path)
        return real(path, expected)

    monkeypatch.setattr(bundle_io, "_verify_file", verify_after_a_save)
    assert Recommender.load(saved).kind == "ease"
    assert len(calls) > 2  # the first pass failed on the swapped file and was read again


@fault(
    "bundle",
    "manifest config has an option the model does not know (digests recomputed)",
    "BundleError naming the bundle and the valid options",
)
def test_unknown_config_option(saved):
    manifest = manifest_of(saved)
    manifest["config"]["dimm"] = 3
    write_manifest(saved, manifest)
    refused(saved, "do not fit together", "unknown PopularityConfig option(s) ['dimm']")


@fault(
    "cli",
    "`tastespace recommend` on a format 1 bundle (no digests)",
    "answers (exit 0) with one 'warning:' line saying to save it again",
)
def test_cli_warns_once_on_a_format_1_bundle(saved):
    downgrade_to_format_1(saved)
    done = cli("recommend", str(saved), "-H", "1", "--json", "-k", "3")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["items"]) == 3
    warning_lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("warning: "), done.stderr
    assert "no file digests" in warning_lines[0] and "Traceback" not in done.stderr


@fault(
    "bundle",
    "manifest lists no item ids (an empty catalog, digests recomputed)",
    "BundleError naming manifest.json, never an empty answer",
)
def test_empty_catalog_is_refused(saved):
    manifest = manifest_of(saved)
    manifest["item_ids"]["ids"] = []
    write_manifest(saved, manifest)
    refused(saved, MANIFEST, "'item_ids.ids' is empty")


@fault(
    "bundle",
    "manifest lists the same item id twice (digests recomputed)",
    "BundleError naming the bundle and the duplicate id",
)
def test_duplicate_item_ids_are_refused(saved):
    manifest = manifest_of(saved)
    manifest["item_ids"]["ids"][1] = manifest["item_ids"]["ids"][0]
    write_manifest(saved, manifest)
    refused(saved, "do not fit together", "duplicate ids")

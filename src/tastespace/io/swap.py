"""Putting a bundle's files in place so that a crash never leaves a broken bundle or loses a file.

The bundle directory ``X`` may hold files the user put there (``NOTES.md``, an ``eval/`` folder);
a save replaces only the bundle's own files. ``manifest.json`` is the commit point:

1. every new file is written and fsynced in ``X/.tastespace-build/``, the new manifest last;
   the finished folder is renamed to ``X/.tastespace-staging/``;
2. **commit**: the staged ``manifest.json`` is renamed over ``X/manifest.json`` (one atomic
   rename);
3. each staged data file is renamed over its old copy in ``X``, then the staging folder goes.

Before step 2 ``X`` is the old bundle: a build folder, or a staging folder that still holds a
manifest, is ignored. After it ``X`` is the new bundle: a reader takes each file from the staging
folder while it is still there (:func:`resolve`). A save killed at any step is finished or
discarded by the next save (:func:`recover`). A bundle written where nothing existed is assembled
in a sibling folder and renamed into place whole. Saves into one parent folder are serialised by
an advisory lock on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tastespace.errors import BundleError

log = logging.getLogger(__name__)

STAGING = ".tastespace-staging"
BUILD = ".tastespace-build"
MANIFEST = "manifest.json"
_NEW_PREFIX = ".tastespace-new-"
_SHOWN = 5


def check_target(path: str | Path, *, force: bool = False) -> Path:
    """Fail now, in one line, if a bundle cannot be written at ``path`` — before any training.

    ``path`` may be an existing bundle (its own files will be replaced, others kept), an empty
    or missing folder (parents are created), or — only with ``force`` — a folder holding other
    files, which the bundle is written beside. Returns the absolute path.
    """
    target = Path(path).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise BundleError(
            f"{target} is a file, not a bundle folder; choose another path", options=("path",)
        )
    if target.is_dir() and not (target / MANIFEST).is_file() and not force:
        others = sorted(p.name + ("/" if p.is_dir() else "") for p in _user_entries(target))
        if others:
            shown = ", ".join(others[:_SHOWN]) + (", …" if len(others) > _SHOWN else "")
            raise BundleError(
                f"{target} is not a tastespace bundle and holds {len(others)} other "
                f"entr{'y' if len(others) == 1 else 'ies'} ({shown}); choose another path, "
                "or pass force=True to write the bundle beside them",
                options=("path", "force"),
            )
    _probe_writable(target)
    return target


def _user_entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name not in (STAGING, BUILD)]


def _probe_writable(target: Path) -> None:
    """Create and remove a temporary folder where the bundle (or its first parent) will go."""
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BundleError(
            f"cannot write a bundle at {target}: {existing} is a file, not a folder; "
            "choose another path",
            options=("path",),
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tastespace-probe-", dir=existing))
    except OSError as err:
        raise BundleError(
            f"cannot write a bundle at {target}: {existing} is not writable "
            f"({err.strerror or err}); choose another path",
            options=("path",),
        ) from err


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` (no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: saves into one folder are not serialised
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def install_new(target: Path, build: Callable[[Path], None]) -> None:
    """Create the bundle folder ``target`` (absent or empty) whole: build a sibling, rename it."""
    for leftover in target.parent.glob(f".{target.name}{_NEW_PREFIX}*"):
        log.info("removing %s, left by an interrupted save", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_NEW_PREFIX}", dir=target.parent))
    try:
        build(staging)
        fsync_dir(staging)
        os.replace(staging, target)  # POSIX rename replaces an empty folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(target.parent)


def replace_in_place(
    target: Path, build: Callable[[Path], None], own_files: Iterable[str], old_files: Iterable[str]
) -> None:
    """Swap the bundle files inside ``target`` (see the module docstring for the steps).

    ``build`` writes every new file into the folder it is given, ``manifest.json`` last;
    ``own_files`` are the new data file names, ``old_files`` the old bundle's (removed when the
    new bundle no longer has them). Files not named stay untouched.
    """
    recover(target)
    building, staging = target / BUILD, target / STAGING
    building.mkdir()
    try:
        build(building)
        fsync_dir(building)
        os.replace(building, staging)
        fsync_dir(target)
        os.replace(staging / MANIFEST, target / MANIFEST)  # commit
    except BaseException:
        _discard(building, staging)
        raise
    fsync_dir(target)
    _roll_forward(target, staging)
    for name in set(old_files) - set(own_files) - {MANIFEST}:
        (target / name).unlink(missing_ok=True)
    fsync_dir(target)


def recover(target: Path) -> None:
    """Finish or discard what a killed save left in ``target``."""
    building, staging = target / BUILD, target / STAGING
    if staging.is_dir() and not (staging / MANIFEST).exists():
        log.info("finishing a save that was interrupted after it committed (%s)", staging)
        _roll_forward(target, staging)
        fsync_dir(target)
    if building.exists() or staging.exists():
        log.info("discarding the files of a save interrupted before it committed in %s", target)
        _discard(building, staging)


def _discard(*folders: Path) -> None:
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def _roll_forward(target: Path, staging: Path) -> None:
    for staged in sorted(staging.iterdir()):
        os.replace(staged, target / staged.name)
    staging.rmdir()


def resolve(root: Path, name: str) -> Path:
    """Where a committed bundle's file ``name`` is now: still staged, or in place."""
    staging = root / STAGING
    staged = staging / name
    if staged.is_file() and not (staging / MANIFEST).exists():
        return staged
    return root / name


def fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable (no-op where folders can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

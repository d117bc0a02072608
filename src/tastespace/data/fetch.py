"""Download GroupLens MovieLens zips into a user cache, verified against the published MD5.

GroupLens' licence forbids redistributing MovieLens, so tastespace never ships the files: it
fetches them on request from ``files.grouplens.org`` into ``~/.cache/tastespace/movielens`` (or
``$TASTESPACE_CACHE/movielens``) and loads the zip in place. A download goes to a temporary file
in the cache folder and is renamed only after its checksum matched, so an interrupted or damaged
download never looks like a good cached copy.

The fixed releases' MD5s are pinned below (GroupLens publishes ``<release>.zip.md5`` next to each
zip). ``ml-latest`` and ``ml-latest-small`` are regenerated from time to time, so no value is
pinned for them: the published ``.md5`` file is read at download time instead.

Example
-------
>>> path = fetch_movielens("ml-100k")  # doctest: +SKIP
>>> path.name  # doctest: +SKIP
'ml-100k.zip'
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from tastespace.data.movielens import RELEASE_NAMES
from tastespace.errors import FetchError

logger = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens"
CACHE_ENV = "TASTESPACE_CACHE"
_CHUNK = 1 << 20
#: What a FetchError's advice is about: the source to load (a copy downloaded by hand) instead.
_LOCAL_COPY = ("source",)
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")

Opener = Callable[..., Any]  # urllib.request.urlopen-like: opener(url, timeout=s) -> response
Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


@dataclass(frozen=True)
class ReleaseInfo:
    """Where a release is published and the checksum its zip must have.

    ``md5`` is GroupLens' published value (``None``: read ``md5_url`` when downloading);
    ``sha256`` is not published by GroupLens and is ``None`` unless pinned by hand.
    """

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None

    @property
    def md5_url(self) -> str:
        """The checksum file GroupLens publishes next to the zip."""
        return self.url + ".md5"

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"


# From GroupLens' <release>.zip.md5 files (as quoted, identically, by several independent
# projects); the "latest" releases change over time and are checked against the live .md5.
_PUBLISHED_MD5 = {
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
    "ml-10m": "ce571fd55effeba0271552578f2648bd",
    "ml-20m": "cd245b17a1ae2cc31bb14903e1204af3",
    "ml-25m": "6b51fb2759a8657d3bfcbfc42b592ada",
    "ml-32m": "d472be332d4daa821edc399621853b57",
}

RELEASES: dict[str, ReleaseInfo] = {
    name: ReleaseInfo(name, f"{BASE_URL}/{name}.zip", _PUBLISHED_MD5.get(name))
    for name in RELEASE_NAMES
}


def default_cache_dir() -> Path:
    """tastespace's cache folder: ``$TASTESPACE_CACHE`` if set, else ``~/.cache/tastespace``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "tastespace"


def release_info(release: str) -> ReleaseInfo:
    """The :class:`ReleaseInfo` of ``release`` (``"ml-1m"``; ``"1m"`` works too).

    Raises :class:`FetchError` listing the known releases for any other name.
    """
    key = release.strip().lower()
    key = key.removesuffix(".zip")
    if not key.startswith("ml-"):
        key = f"ml-{key}"
    if key not in RELEASES:
        raise FetchError(
            f"unknown MovieLens release {release!r}; known releases: {', '.join(RELEASES)}"
        )
    return RELEASES[key]


def fetch_movielens(
    release: str,
    cache_dir: Path | str | None = None,
    *,
    force: bool = False,
    opener: Opener = urllib.request.urlopen,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> Path:
    """Path to a verified local copy of a GroupLens MovieLens zip, downloading it if needed.

    Parameters
    ----------
    release
        One of :data:`RELEASES` (``"ml-100k"``, ``"ml-1m"``, …, ``"ml-latest-small"``).
    cache_dir
        Folder that holds the zips; default ``default_cache_dir() / "movielens"``.
    force
        Download again even if a verified copy is cached.
    opener
        Called as ``opener(url, timeout=timeout)``; returns a readable binary response usable
        as a context manager. Defaults to :func:`urllib.request.urlopen`; tests pass a fake.
    timeout
        Seconds to wait for the server on each network operation.
    progress
        Called with ``(bytes_done, total_bytes_or_None)`` after each chunk (the CLI draws a bar).

    Returns
    -------
    Path
        The cached ``<release>.zip``, whose MD5 matched the published one.

    Raises
    ------
    FetchError
        Unknown release, GroupLens unreachable (the message says to load a copy downloaded by
        hand; ``options`` names ``source``), an HTTP error, or a checksum mismatch (naming
        expected and actual).
    """
    info = release_info(release)
    if cache_dir is None:
        folder = default_cache_dir() / "movielens"
    else:
        folder = Path(cache_dir).expanduser()
    target = folder / info.filename
    record = folder / f"{info.filename}.md5"  # the MD5 verified when this copy was downloaded

    if target.exists() and not force:
        if _cached_copy_is_good(info, target, record):
            logger.info("using cached %s", target)
            return target
        logger.warning("cached %s does not match its checksum; downloading it again", target)

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"cannot create the cache folder {folder} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a writable folder"
        ) from None
    expected = info.md5 or _published_md5(info, opener, timeout)
    actual = _download(info, target, expected, opener, timeout, progress)
    _write_atomically(record, f"{actual}  {info.filename}\n".encode())
    logger.info("downloaded %s (md5 %s)", target, actual)
    return target


def _cached_copy_is_good(info: ReleaseInfo, target: Path, record: Path) -> bool:
    expected = info.md5 or _recorded_md5(record)
    if expected is None:  # a copy put there by hand, for a release whose MD5 changes over time
        return zipfile.is_zipfile(target)
    try:
        return _md5_of(target) == expected.lower()
    except OSError:
        return False


def _recorded_md5(record: Path) -> str | None:
    try:
        match = _MD5.search(record.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None
    return match.group(1).lower() if match else None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _published_md5(info: ReleaseInfo, opener: Opener, timeout: float) -> str:
    """Read the ``.md5`` file GroupLens publishes next to the zip (``MD5 (x.zip) = <hex>``)."""
    with _network(info, info.md5_url), opener(info.md5_url, timeout=timeout) as response:
        text = response.read(4096).decode("ascii", errors="replace")
    match = _MD5.search(text)
    if match is None:
        raise FetchError(
            f"{info.md5_url} holds no MD5 checksum; cannot verify {info.filename} — "
            f"{_by_hand(info)}",
            options=_LOCAL_COPY,
        )
    return match.group(1).lower()


def _download(
    info: ReleaseInfo,
    target: Path,
    expected_md5: str,
    opener: Opener,
    timeout: float,
    progress: Progress | None,
) -> str:
    """Stream ``info.url`` to a temporary file beside ``target``; rename it once verified."""
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{info.filename}.", suffix=".part", dir=target.parent
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            logger.info("downloading %s", info.url)
            with _network(info, info.url):
                response = opener(info.url, timeout=timeout)
            with response:
                md5, sha256 = _stream(info, response, out, temp, progress)
            out.flush()
            os.fsync(out.fileno())
        _verify(info, expected_md5, md5, sha256)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return md5


def _stream(
    info: ReleaseInfo, response: IO[bytes], out: IO[bytes], temp: Path, progress: Progress | None
) -> tuple[str, str]:
    """Copy the response to ``out`` chunk by chunk, hashing as it goes; a short read (fewer
    bytes than Content-Length) is an error. Returns the MD5 and SHA-256 hex digests."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    total = _content_length(response)
    done = 0
    while True:
        with _network(info, info.url):
            chunk = response.read(_CHUNK)
        if not chunk:
            break
        try:
            out.write(chunk)
        except OSError as exc:
            raise FetchError(
                f"cannot write {temp} ({exc.strerror or exc}); free some space or "
                f"set {CACHE_ENV} to another folder"
            ) from None
        md5.update(chunk)
        sha256.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    if total is not None and done != total:
        raise FetchError(
            f"download of {info.url} stopped after {done:,} of {total:,} bytes; "
            f"try again, or {_by_hand(info)}",
            options=_LOCAL_COPY,
        )
    return md5.hexdigest(), sha256.hexdigest()


def _verify(info: ReleaseInfo, expected_md5: str, md5: str, sha256: str) -> None:
    """The published MD5 (and the SHA-256 we pin, where we do) must match the download."""
    if md5 != expected_md5.lower():
        raise FetchError(
            f"checksum mismatch for {info.url}: expected md5 {expected_md5.lower()}, got "
            f"{md5}; the download is damaged or the file changed upstream — try again, "
            f"or load a copy you trust from /path/to/{info.filename}",
            options=_LOCAL_COPY,
        )
    if info.sha256 is not None and sha256 != info.sha256.lower():
        raise FetchError(
            f"checksum mismatch for {info.url}: expected sha256 {info.sha256.lower()}, got {sha256}"
        )


@contextlib.contextmanager
def _network(info: ReleaseInfo, url: str) -> Iterator[None]:
    """Turn every way a request can fail into one :class:`FetchError` line saying what to do."""
    host = urlsplit(url).hostname or url
    by_hand = _by_hand(info)
    try:
        yield
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(
            f"{url}: the server answered HTTP {exc.code} {exc.reason}; {by_hand}",
            options=_LOCAL_COPY,
        ) from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, DNS, TLS, refused connections
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        text = (str(reason).splitlines() or [type(exc).__name__])[0]
        raise FetchError(
            f"could not reach {host} ({text}); {by_hand}", options=_LOCAL_COPY
        ) from None


def _by_hand(info: ReleaseInfo) -> str:
    return f"download {info.url} by hand and load /path/to/{info.filename}"


def _content_length(response: IO[bytes]) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise

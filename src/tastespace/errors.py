"""Exception and warning types raised at tastespace's boundaries.

Every error a user can cause by handing us bad input is one of these, with a one-line message that
says what is wrong and what to do. The CLI turns them into a non-zero exit without a traceback.
"""

from __future__ import annotations


class TastespaceError(Exception):
    """Base class of every error tastespace raises on purpose.

    ``options`` names the library options (``"top"``, ``"out"``) a message is about, so a
    front end can point at its own spelling of them (the CLI adds ``--top``); the message
    itself speaks the library's names.
    """

    def __init__(self, *args: object, options: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.options = tuple(options)


class DataError(TastespaceError, ValueError):
    """Input data is missing, malformed or unusable (names the file, line or field)."""


class ConfigError(TastespaceError, ValueError):
    """A hyper-parameter or option has a value that cannot work."""


class NotFittedError(TastespaceError, RuntimeError):
    """A model was asked for results before ``fit`` (or ``load``) was called."""


class BundleError(TastespaceError):
    """A saved model bundle is missing, corrupt, or of an unsupported format version."""


class CheckpointError(TastespaceError):
    """A training checkpoint is unreadable, foreign, or was written by another run."""


class FetchError(TastespaceError):
    """A dataset could not be downloaded or its checksum did not match."""


class UnknownIdError(TastespaceError, KeyError):
    """A raw user or item id is not in the vocabulary.

    Subclasses ``KeyError`` so ``except KeyError`` works as it does for a dict.
    """

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class TastespaceWarning(UserWarning):
    """Base class of tastespace's warnings (raise them with ``stacklevel=2``).

    ``options`` works as for :class:`TastespaceError`: the library options the advice in the
    message names, which a front end may translate to its own spelling.
    """

    def __init__(self, *args: object, options: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.options = tuple(options)


class DataWarning(TastespaceWarning):
    """Rows were filtered or merged while loading; the message says how many and why."""


class ConfigWarning(TastespaceWarning):
    """An option cannot do what it is for on this data; the message says what it does instead."""


class BundleWarning(TastespaceWarning):
    """A bundle loads but cannot be fully checked (e.g. an old format without file digests)."""

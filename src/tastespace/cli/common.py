"""Pieces every CLI module shares: consoles, the --data option, dataset loading."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help="A MovieLens zip/folder, a CSV/TSV/Parquet interactions file, or 'synthetic[:NAME]'.",
    ),
]
MinRating = Annotated[
    float | None,
    typer.Option(help="Implicit feedback: keep ratings >= this as positives (e.g. 4)."),
]
Duplicates = Annotated[
    str | None, typer.Option(help="Repeated (user, item) rows: sum|max|last|first|error.")
]
Nonpositive = Annotated[
    str | None,
    typer.Option(help="Ratings <= 0 without --min-rating: error (default) | drop those rows."),
]
KeepUnrated = Annotated[
    bool,
    typer.Option(
        "--keep-unrated",
        help="Keep feature-file items/users with no interactions (cold items) instead of "
        "leaving them out.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
UserCol = Annotated[str | None, typer.Option(help="User id column (auto-detected).")]
ItemCol = Annotated[str | None, typer.Option(help="Item id column (auto-detected).")]
RatingCol = Annotated[str | None, typer.Option(help="Rating/weight column (auto-detected).")]
TimestampCol = Annotated[str | None, typer.Option(help="Timestamp column (auto-detected).")]
ItemFeatures = Annotated[
    str | None, typer.Option(help="CSV/Parquet of item features (title, genres 'a|b', numbers).")
]
UserFeatures = Annotated[str | None, typer.Option(help="CSV/Parquet of user features.")]
CutoffOption = Annotated[
    str | None,
    typer.Option(
        help="Time protocol: train before this date (2000-06-01), unix second, or fraction "
        "of interactions (0.8)."
    ),
]


def heldout_value(value: float) -> int | float:
    """``0.1`` stays a fraction; ``50`` (a whole number ≥ 1) is a count of users."""
    return int(value) if value >= 1 and float(value).is_integer() else value


IndexOption = Annotated[
    str,
    typer.Option(
        "--index",
        help="Top-k search: exact, hnsw or ivfpq (faiss, approximate; recall measured), or auto "
        "(exact up to 200,000 items, hnsw above).",
    ),
]


#: Library option names whose flag is not ``--`` + the name with dashes.
FLAGS: dict[str, str] = {
    "k": "-k",
    "param": "--param/-p",
    "path": "--out",
    "source": "--data",
    "dataset": "--data",
}


def flag_for(option: str) -> str:
    """The flag that sets library option ``option`` (``min_rating`` → ``--min-rating``)."""
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def flag_hint(options: tuple[str, ...]) -> str:
    """`` (option --top)`` for an error about library option ``top``: the library's messages
    speak its own names, the command line adds the flag that sets each."""
    if not options:
        return ""
    flags = [flag_for(name) for name in options]
    return f" ({'option' if len(flags) == 1 else 'options'} {', '.join(flags)})"


def cli_message(message: object, options: tuple[str, ...]) -> str:
    """A library message in the command line's words: the options it spells as code become
    flags (:func:`spell_options`), the others it is about are listed after it."""
    text, unspelled = spell_options(str(message), options)
    return text + flag_hint(unspelled)


def spell_options(text: str, options: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``text`` with each option spelled as code — ``min_rating=N``, ``nonpositive='drop'``,
    ``force=True`` or a bare ``item_col`` — turned into its flag (``--min-rating N``,
    ``--nonpositive drop``, ``--force``, ``--item-col``), and the options left unspelled.

    A name without an underscore (``top``, ``path``) counts as code only with ``=``: as a
    plain word it may be prose or part of a file name.
    """
    unspelled = []
    for option in options:
        pattern = re.compile(
            rf"(?<![\w/.-]){re.escape(option)}(?:=(['\"]?)([\w.:-]+)\1)?(?![\w/.-])"
        )

        def as_flag(match: re.Match[str], option: str = option) -> str:
            value = match.group(2)
            if value is None and "_" not in option:
                return match.group(0)
            return flag_for(option) + ("" if value in (None, "True") else f" {value}")

        spelled = pattern.sub(as_flag, text)
        if spelled == text:
            unspelled.append(option)
        text = spelled
    return text, tuple(unspelled)


def load(
    data: str, min_rating: float | None = None, duplicates: str | None = None, **columns: Any
) -> Any:
    """Load a dataset with only the options the user actually gave (``None`` or an unset
    flag's ``False`` = not given, so sources without such an option do not refuse it)."""
    from tastespace.data import load_dataset

    options = {k: v for k, v in columns.items() if v is not None and v is not False}
    if min_rating is not None:
        options["min_rating"] = min_rating
    if duplicates is not None:
        options["duplicates"] = duplicates
    return load_dataset(data, **options)

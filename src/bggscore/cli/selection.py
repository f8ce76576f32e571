"""The game-selection flags shared by score, detect-changes and embed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bggscore.errors import InputError
from bggscore.stages import DEFAULT_END_YEAR, DEFAULT_MAX_GAMES, DEFAULT_START_YEAR

if TYPE_CHECKING:
    from bggscore.warehouse.queries import Selection

StartYearOption = Annotated[int, typer.Option(help="First year published (inclusive).")]
EndYearOption = Annotated[int, typer.Option(help="Last year published (exclusive).")]
AllYearsOption = Annotated[bool, typer.Option("--all-years", help="Ignore the year range.")]
IncludeNullYearOption = Annotated[
    bool,
    typer.Option(
        "--include-null-year",
        help="Also games with no year published (left out of year ranges and --all-years).",
    ),
]
GameIdOption = Annotated[
    list[int] | None, typer.Option("--game-id", help="Only this game (repeat).")
]
GameIdsFileOption = Annotated[
    Path | None,
    typer.Option(
        help="Only the games in this file: one id per line, '#' comments.", dir_okay=False
    ),
]

__all__ = ["DEFAULT_END_YEAR", "DEFAULT_MAX_GAMES", "DEFAULT_START_YEAR"]
MaxGamesOption = Annotated[
    int,
    typer.Option(
        help="With change detection: at most this many games per stage (new first, then the "
        "oldest scores); repeated runs converge."
    ),
]


def read_ids_file(path: Path) -> list[int]:
    if not path.is_file():
        raise InputError(f"--game-ids-file {path} not found")
    try:
        # utf-8-sig: editors on Windows start a file with a byte-order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"--game-ids-file {path} is not UTF-8 text (byte {exc.start}); "
            "give one game id per line"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read --game-ids-file {path}: {exc.strerror}") from None
    ids: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        if not (value.isascii() and value.isdigit()) or int(value) <= 0:  # '²' is a digit too
            raise InputError(
                f"{path}:{number}: {value!r} is not a game id (a positive whole number)"
            )
        ids.append(int(value))
    return ids


def build_selection(
    start_year: int,
    end_year: int,
    all_years: bool,
    game_ids: list[int] | None,
    game_ids_file: Path | None,
    include_null_year: bool = False,
) -> Selection:
    from bggscore.warehouse.queries import Selection

    ids: list[int] | None = None
    if game_ids or game_ids_file:
        ids = list(game_ids or [])
        if game_ids_file:
            ids += read_ids_file(game_ids_file)
        bad = [i for i in ids if i <= 0]
        if bad:
            raise InputError(f"--game-id {bad[0]} is not a game id (a positive whole number)")
        ids = sorted(set(ids))
    return Selection(
        start_year=start_year,
        end_year=end_year,
        all_years=all_years,
        game_ids=tuple(ids) if ids is not None else None,
        include_null_year=include_null_year,
    )

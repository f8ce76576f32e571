"""The game-selection flags shared by score, detect-changes, embed and run.

A flag that would be silently ignored is refused (exit 2): a year range with --all-years,
any year flag or --min-users-rated with --game-id/--game-ids-file (ids choose games whatever
their year and ratings), and --max-games where no change detection runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bggscore.errors import InputError, UsageError
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
MinUsersRatedOption = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Only games at least N users rated (users_rated >= N; a game with no count "
        "never passes), e.g. 25 to backfill the rated games as production does.",
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


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave the parameter ``name`` (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def refuse_ignored_max_games(ctx: typer.Context, detecting: bool, hint: str) -> None:
    """--max-games caps what change detection finds: refused where none runs."""
    if not detecting and given(ctx, "max_games"):
        raise UsageError(f"--max-games caps the games change detection finds; {hint}")


def _refuse_ignored_flags(
    ctx: typer.Context, all_years: bool, include_null_year: bool, by_ids: list[str]
) -> None:
    years = [
        flag for flag in ("--start-year", "--end-year") if given(ctx, flag[2:].replace("-", "_"))
    ]
    if all_years and years:
        raise UsageError(
            f"--all-years takes every year: drop {' and '.join(years)}, or --all-years"
        )
    if by_ids:
        flags = [*years, *(["--all-years"] if all_years else [])]
        flags += ["--include-null-year"] if include_null_year else []
        if flags:
            raise UsageError(
                f"{' and '.join(by_ids)} {'select' if len(by_ids) > 1 else 'selects'} games "
                f"whatever their year: drop {', '.join(flags)}"
            )
        if given(ctx, "min_users_rated"):
            raise UsageError(
                f"{' and '.join(by_ids)} {'select' if len(by_ids) > 1 else 'selects'} games "
                "whatever their ratings: drop --min-users-rated"
            )


def build_selection(
    start_year: int,
    end_year: int,
    all_years: bool,
    game_ids: list[int] | None,
    game_ids_file: Path | None,
    include_null_year: bool = False,
    min_users_rated: int | None = None,
    *,
    ctx: typer.Context | None = None,
) -> Selection:
    """The selection the flags give; with ``ctx`` (a command's), flags it would ignore are
    refused."""
    from bggscore.warehouse.queries import Selection

    if ctx is not None:
        by_ids = ["--game-id"] * bool(game_ids) + ["--game-ids-file"] * bool(game_ids_file)
        _refuse_ignored_flags(ctx, all_years, include_null_year, by_ids)
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
        min_users_rated=min_users_rated,
    )

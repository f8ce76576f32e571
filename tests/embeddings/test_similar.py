"""`bggscore similar`: cosine neighbours over the latest game embeddings of the current model.

Most tests use their own copy of the session's demo home (`embedded_home`: 2,000 synthetic
games, scored and embedded by `bggscore demo`); name look-ups use the real sample, whose
names are real (`embedded_sample_home`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import execute, game_ids, read, sql

SCYTHE = 169786


def similar_json(cli, *args: str) -> dict[str, Any]:
    result = cli("similar", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def stored(home: Path) -> pl.DataFrame:
    """Each game's latest stored game embedding (what `similar` must search)."""
    return sql(
        home,
        "SELECT e.game_id, e.embedding FROM raw.game_embeddings AS e "
        "JOIN raw.bggscore_scoring_state AS s ON s.game_id = e.game_id AND s.job_id = e.job_id "
        "AND s.stage = 'game-embeddings' ORDER BY e.game_id",
    )


def brute_force(home: Path, game_id: int, top: int) -> list[tuple[int, float]]:
    frame = stored(home)
    ids = frame["game_id"].to_numpy()
    vectors = np.vstack(frame["embedding"].to_list())
    scores = vectors @ vectors[ids == game_id][0]
    order = [i for i in np.argsort(-scores, kind="stable") if ids[i] != game_id][:top]
    return [(int(ids[i]), float(scores[i])) for i in order]


def warehouse_state(home: Path) -> dict[str, int]:
    return {
        "state": len(read(home, "scoring_state")),
        "runs": len(read(home, "runs")),
        "game_embeddings": len(stored(home)),
    }


def most_rated(home: Path) -> int:
    return int(
        sql(
            home,
            "SELECT game_id FROM analytics.games_features WHERE year_published IS NOT NULL "
            "ORDER BY users_rated DESC, game_id LIMIT 1",
        )["game_id"][0]
    )


# -- answers ----------------------------------------------------------------------------------
def test_neighbours_are_the_nearest_stored_embeddings(cli, embedded_home: Path) -> None:
    game = most_rated(embedded_home)
    before = warehouse_state(embedded_home)
    data = similar_json(cli, str(game))
    assert data["game_id"] == game
    assert data["model"] == "game_embeddings=game_embeddings:1"
    assert len(data["neighbours"]) == 10  # the default --top
    expected = brute_force(embedded_home, game, 10)
    assert [n["game_id"] for n in data["neighbours"]] == [g for g, _ in expected]
    np.testing.assert_allclose(
        [n["similarity"] for n in data["neighbours"]], [s for _, s in expected], atol=1e-4
    )
    names = dict(
        sql(embedded_home, "SELECT game_id, name FROM analytics.games_features").iter_rows()
    )
    assert all(n["name"] == names[n["game_id"]] for n in data["neighbours"])
    assert all(isinstance(n["year_published"], int) for n in data["neighbours"])
    assert warehouse_state(embedded_home) == before  # a reader: nothing written

    three = similar_json(cli, str(game), "--top", "3")
    assert three["neighbours"] == data["neighbours"][:3]

    human = cli("similar", str(game), "--top", "3")
    assert human.exit_code == 0
    assert f"games like {data['name']} ({game})" in human.stdout
    assert all(n["name"] in human.stdout for n in data["neighbours"][:3])


def test_the_cached_matrix_follows_new_embeddings(cli, embedded_home: Path) -> None:
    game = most_rated(embedded_home)
    first = similar_json(cli, str(game), "--top", "5")
    assert list((embedded_home / "cache").glob("similar-*/build-*/vectors.npy"))
    assert similar_json(cli, str(game), "--top", "5") == first  # served from the cache

    # move one neighbour far away: new description and mechanics, then the changed-only chain
    moved = first["neighbours"][0]["game_id"]
    games = sql(embedded_home, f"SELECT * FROM analytics.games_features WHERE game_id = {moved}")
    edited = games.with_columns(
        description=pl.lit("A cooperative word game about trains, pirates and space bees."),
        mechanics=pl.lit(["Cooperative Game", "Pick-up and Deliver", "Bribery"]),
        categories=pl.lit(["Trains", "Pirates", "Word Game"]),
    )
    path = embedded_home.parent / "moved.parquet"
    edited.write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0
    run = cli("run", "--all-years", "--json")
    assert run.exit_code == 0, run.stderr

    after = similar_json(cli, str(game), "--top", "5")
    expected = brute_force(embedded_home, game, 5)
    assert [n["game_id"] for n in after["neighbours"]] == [g for g, _ in expected]
    assert after != first


def test_names_exact_case_insensitive_then_shortest_containing(
    cli, embedded_sample_home: Path
) -> None:
    assert similar_json(cli, "--name", "scythe")["game_id"] == SCYTHE
    assert similar_json(cli, "--name", "Scyth")["name"] == "Scythe"
    assert similar_json(cli, "--name", "camelot")["name"] == "Camelot"  # exact beats longer
    assert similar_json(cli, "--name", "catan")["name"] == "Catan: Big Box"  # the shortest


# -- the warm path: answered from the cache while nothing it depends on changed ----------------
@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls that went through the full check (settings, registry, warehouse)."""
    from bggscore.embeddings import similar

    calls: list[int] = []
    full = similar.load_index

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return full(*args, **kwargs)

    monkeypatch.setattr(similar, "load_index", counting)
    return calls


def test_a_warm_call_skips_the_full_check_until_something_changes(
    cli, embedded_home: Path, full_checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    game = most_rated(embedded_home)
    time.sleep(0.1)  # the copied registry must be older than the check by 50 ms
    first = similar_json(cli, str(game), "--top", "5")
    assert len(full_checks) == 1
    assert similar_json(cli, str(game), "--top", "5") == first
    assert similar_json(cli, "--name", first["name"], "--top", "5")["game_id"] == game
    assert len(full_checks) == 1  # both answered from the cache

    # settings inputs: a variable the settings read (or ignore, with a warning)
    monkeypatch.setenv("BGGSCORE_SCORING__BATCH_SIZE", "1000")
    assert similar_json(cli, str(game), "--top", "5") == first
    assert len(full_checks) == 2
    monkeypatch.setenv("BGGSCORE_TYPO", "1")
    for expected_checks in (3, 3):  # the warm call repeats the warning
        result = cli("similar", str(game), "--top", "5", "--json")
        assert result.exit_code == 0
        assert "BGGSCORE_TYPO is not a bggscore setting" in result.stderr
        assert len(full_checks) == expected_checks
    monkeypatch.delenv("BGGSCORE_TYPO")
    monkeypatch.delenv("BGGSCORE_SCORING__BATCH_SIZE")

    # the registry: an alias moved (here: set where it already points)
    assert cli("models", "alias", "game_embeddings:1", "champion").exit_code == 0
    time.sleep(0.1)  # a check within 50 ms of a registry write is not remembered
    for _ in range(2):
        assert similar_json(cli, str(game), "--top", "5") == first
        assert len(full_checks) == 4

    # the warehouse: any write, even one that leaves the embeddings alone
    time.sleep(0.1)
    similar_json(cli, str(game), "--top", "5")
    execute(embedded_home, "CREATE TABLE main.unrelated (x INTEGER)")
    checks = len(full_checks)
    builds = list((embedded_home / "cache").glob("similar-*/build-*"))
    for _ in range(2):
        assert similar_json(cli, str(game), "--top", "5") == first
        assert len(full_checks) == checks + 1  # then remembered again
    assert list((embedded_home / "cache").glob("similar-*/build-*")) == builds  # not rebuilt


def test_renamed_games_are_found_with_a_warm_cache(cli, embedded_home: Path) -> None:
    game = most_rated(embedded_home)
    time.sleep(0.1)
    for _ in range(2):
        similar_json(cli, str(game), "--top", "3")
    games = sql(embedded_home, f"SELECT * FROM analytics.games_features WHERE game_id = {game}")
    path = embedded_home.parent / "renamed.parquet"
    games.with_columns(name=pl.lit("Zyzzyva Quest")).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0
    assert similar_json(cli, "--name", "zyzzyva")["game_id"] == game
    assert similar_json(cli, str(game))["name"] == "Zyzzyva Quest"


def bggscore_process(home: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`bggscore ARGS` in a process of its own, as people run it; and which of the heavy
    modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BGGSCORE_", "COLUMNS"))}
    env["BGGSCORE_HOME"] = str(home)
    probe = (
        "import json, runpy, sys\n"
        f"sys.argv = ['bggscore', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('bggscore', run_name='__main__')\n"
        "finally:\n"
        "    heavy = ('polars', 'duckdb', 'pyarrow', 'sqlglot', 'sklearn', 'scipy', 'typer',\n"
        "             'pydantic', 'bggscore.settings', 'bggscore.warehouse')\n"
        "    loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "    print('imported:', json.dumps(loaded), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=home.parent, text=True, capture_output=True
    )
    marker = next(line for line in run.stderr.splitlines() if line.startswith("imported: "))
    return run, json.loads(marker.removeprefix("imported: "))


def test_a_warm_process_needs_numpy_and_the_standard_library_only(cli, embedded_home: Path) -> None:
    game = str(most_rated(embedded_home))
    time.sleep(0.1)
    cold, imported = bggscore_process(embedded_home, "similar", game, "--json")
    assert cold.returncode == 0, cold.stderr
    assert "polars" in imported and "bggscore.settings" in imported  # the full check
    name = json.loads(cold.stdout)["name"]
    for args in (
        ("similar", game, "--json"),
        ("similar", "--json", "--top=3", "--name", name.upper()),
        ("similar", "--top", "3", game),
    ):
        warm, imported = bggscore_process(embedded_home, *args)
        assert warm.returncode == 0, warm.stderr
        assert imported == []
        in_process = cli(*args)  # the app, answering from the same cache
        assert warm.stdout == in_process.stdout
    errors = (("similar", "999999999"), ("similar", "--name", "zzqqxx"))
    for args in errors:  # a game not in the index: the app asks the warehouse whether it exists
        warm, imported = bggscore_process(embedded_home, *args)
        assert "bggscore.warehouse" in imported
        in_process = cli(*args)
        assert (warm.returncode, warm.stdout) == (in_process.exit_code, "")
        said = [line for line in warm.stderr.splitlines() if not line.startswith("imported: ")]
        assert_one_line_error("\n".join(said) + "\n", args[-1])
    # other flags and other commands go through the app
    for args in (("--debug", "similar", game), ("similar", game, "--top", "0")):
        _, imported = bggscore_process(embedded_home, *args)
        assert "typer" in imported


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["similar", "12"], {"game_id": 12}),
        (
            ["similar", "--name", "x y", "--top", "3", "--json"],
            {"name": "x y", "top": 3, "json": True},
        ),
        (["similar", "--top=3", "--name=", "--json"], {"name": "", "top": 3, "json": True}),
        (["similar"], None),
        (["similar", "1", "--name", "x"], None),
        (["similar", "1", "2"], None),
        (["similar", "-1"], None),
        (["similar", "01"], None),
        (["similar", "1", "--top", "0"], None),
        (["similar", "1", "--top"], None),
        (["similar", "1", "--json", "--json"], None),
        (["similar", "--name", "--json"], None),
        (["similar", "1", "--help"], None),
        (["similar", "1", "--"], None),
        (["--home", "h", "similar", "1"], None),
        (["score"], None),
        ([], None),
    ],
)
def test_only_plain_similar_calls_skip_the_app(argv: list[str], expected: Any) -> None:
    from bggscore.cli.main import _similar_args

    assert _similar_args(argv) == expected


# -- errors: exit code, one line, nothing written ----------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (("999999999",), 2, ("game 999999999 is not in the warehouse",)),
        (("--name", "Sxythe"), 2, ("no game named 'Sxythe'", "did you mean: Scythe")),
        (("--name", "zzqqxx"), 2, ("no game named 'zzqqxx'",)),
        ((str(SCYTHE), "--name", "Scythe"), 2, ("GAME_ID or --name",)),
        ((), 2, ("GAME_ID or --name",)),
        (("--name", ""), 2, ("--name is empty",)),
        (("--name", "  "), 2, ("--name is empty",)),
    ],
)
def test_unknown_games_are_clear_errors(
    cli, embedded_sample_home: Path, args: tuple[str, ...], code: int, needles: tuple[str, ...]
) -> None:
    before = warehouse_state(embedded_sample_home)
    result = cli("similar", *args)
    assert result.exit_code == code
    assert_one_line_error(result.stderr, *needles)
    assert result.stdout == ""
    assert warehouse_state(embedded_sample_home) == before


def test_game_without_a_year_has_no_embedding(cli, embedded_home: Path) -> None:
    no_year = sorted(game_ids(embedded_home, "year_published IS NULL"))[0]
    result = cli("similar", str(no_year))
    assert result.exit_code == 2
    assert_one_line_error(
        result.stderr,
        f"game {no_year} (",
        "is in the warehouse but has no game embedding yet",
        f"run `bggscore score --game-id {no_year}`, then `bggscore embed --game-id {no_year}`",
    )


NEW_GAME = 9_000_001


def test_an_unembedded_game_says_exactly_which_commands_embed_it(cli, embedded_home: Path) -> None:
    """A game outside embed's default years: by id or by name, the error says it exists and
    gives the commands; running them makes `similar` answer."""
    games = sql(embedded_home, "SELECT * FROM analytics.games_features ORDER BY game_id LIMIT 1")
    path = embedded_home.parent / "old.parquet"
    games.with_columns(
        game_id=pl.lit(NEW_GAME, pl.Int64), name=pl.lit("Qwxlor Quarry"), year_published=1971
    ).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0
    similar_json(cli, str(most_rated(embedded_home)))  # a warm cache: misses still ask

    score_then_embed = (
        f"run `bggscore score --game-id {NEW_GAME}`, then `bggscore embed --game-id {NEW_GAME}`"
    )
    for args in ((str(NEW_GAME),), ("--name", "qwxlor"), ("--name", "Qwxlor Quarry")):
        result = cli("similar", *args)
        assert result.exit_code == 2, args
        assert_one_line_error(
            result.stderr,
            f"game {NEW_GAME} (Qwxlor Quarry) is in the warehouse but has no game embedding yet",
            score_then_embed,
        )
        assert result.stdout == ""

    assert cli("score", "--game-id", str(NEW_GAME)).exit_code == 0
    result = cli("similar", "--name", "qwxlor")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, f"(run `bggscore embed --game-id {NEW_GAME}`)")
    assert "bggscore score" not in result.stderr

    assert cli("embed", "--game-id", str(NEW_GAME)).exit_code == 0
    assert similar_json(cli, "--name", "qwxlor")["game_id"] == NEW_GAME


@pytest.mark.parametrize("top", ["0", "-2"])
def test_top_must_be_positive(cli, embedded_home: Path, top: str) -> None:
    result = cli("similar", str(most_rated(embedded_home)), "--top", top)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_no_embeddings_yet_says_to_run_embed(cli, to_embed_home: Path) -> None:
    result = cli("similar", str(most_rated(to_embed_home)))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no game embeddings yet", "run `bggscore embed` first")
    assert not (to_embed_home / "cache").exists() or not any((to_embed_home / "cache").iterdir())


def test_no_game_model_says_to_train_one(cli, home: Path, sample_path: Path) -> None:
    assert cli("warehouse", "load", str(sample_path)).exit_code == 0
    result = cli("similar", "--name", "Scythe")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no game_embeddings models yet", "models train")


def test_names_are_shown_as_text_not_markup(cli, embedded_sample_home: Path) -> None:
    """Game names are data: brackets must show, and a closing tag must not crash rich."""
    games = sql(
        embedded_sample_home, f"SELECT * FROM analytics.games_features WHERE game_id = {SCYTHE}"
    )
    path = embedded_sample_home.parent / "renamed.parquet"
    games.with_columns(name=pl.lit("[redacted] Scythe [/b]")).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0

    result = cli("similar", "--name", "[redacted]", "--top", "3")
    assert result.exit_code == 0, result.stderr
    assert "[redacted] Scythe [/b]" in " ".join(result.stdout.split())


def test_a_clock_of_whole_seconds_is_never_trusted_to_tell_writes_apart() -> None:
    from bggscore.embeddings.similar import _fine_clock

    assert _fine_clock([1, 2, 3, 1_700_000_000_123_456_789, 0])
    assert not _fine_clock([1, 2, 3, 1_700_000_000_000_000_000, 0])  # FAT, some mounts
    assert not _fine_clock(None)


def test_the_fast_path_leaves_any_trouble_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from bggscore.cli.main import _similar_from_cache

    def gone() -> str:  # the working folder was deleted under us
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr("os.getcwd", gone)
    assert _similar_from_cache(["similar", "5"]) is False

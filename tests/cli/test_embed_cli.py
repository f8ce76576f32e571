"""`bggscore embed`: exit codes first, then the embedding rows and state left in the warehouse.

Every test runs the real CLI on its own copy of a home whose registry comes from the
session's `bggscore demo --games 2000` (outcome, text and game models) beside a warehouse
holding the same 2,000 synthetic games: scored and not embedded (`to_embed_home`), not
scored (`unscored_home`), or fully embedded by the demo itself (`embedded_home`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.conftest import DemoRun
from tests.support.output import assert_one_line_error, parse_json
from tests.support.state import EMBEDDING_TABLES, execute, game_ids, read, sql

IN_RANGE = "year_published >= 2024 AND year_published < 2029"
LINEAGE = ("job_id", "embedding_model", "embedding_version", "embedding_dim")
# The landing contract, written out from the domain reference (not from our schema module),
# plus bggscore's lineage columns; DuckDB mirrors ARRAY<FLOAT64> as DOUBLE[].
DOMAIN_DESCRIPTION = {
    "game_id": "BIGINT",
    "name": "VARCHAR",
    "embedding": "DOUBLE[]",
    "embedding_model": "VARCHAR",
    "embedding_version": "BIGINT",
    "embedding_dim": "BIGINT",
    "algorithm": "VARCHAR",
    "document_method": "VARCHAR",
    "created_ts": "TIMESTAMP WITH TIME ZONE",
    "job_id": "VARCHAR",
    "feature_hash": "BIGINT",
}
DOMAIN_GAME = {
    "game_id": "BIGINT",
    "name": "VARCHAR",
    "year_published": "DOUBLE",
    "embedding": "DOUBLE[]",
    "embedding_8": "DOUBLE[]",
    "embedding_16": "DOUBLE[]",
    "embedding_32": "DOUBLE[]",
    "embedding_model": "VARCHAR",
    "embedding_version": "BIGINT",
    "embedding_dim": "BIGINT",
    "algorithm": "VARCHAR",
    "created_ts": "TIMESTAMP WITH TIME ZONE",
    "job_id": "VARCHAR",
    "coordinates_2d": "DOUBLE[]",
    "feature_hash": "BIGINT",
}


# -- helpers ----------------------------------------------------------------------------------
def embed_json(cli, *args: str) -> dict[str, Any]:
    result = cli("embed", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_json(result.stdout)


def rows(home: Path, logical: str) -> pl.DataFrame:
    return sql(home, f"SELECT * FROM {EMBEDDING_TABLES[logical]} ORDER BY game_id, created_ts")


def embedding_state(home: Path) -> pl.DataFrame:
    return read(home, "scoring_state").filter(pl.col("stage").str.ends_with("embeddings"))


def embed_runs(home: Path) -> pl.DataFrame:
    return read(home, "runs").filter(pl.col("command") == "embed")


def embedding_counts(home: Path) -> dict[str, int]:
    """Rows in everything `embed` writes: embedding rows, embedding state, runs."""
    return {
        **{logical: len(rows(home, logical)) for logical in EMBEDDING_TABLES},
        "state": len(embedding_state(home)),
        "runs": len(embed_runs(home)),
    }


def column_types(home: Path, logical: str) -> dict[str, str]:
    schema, table = EMBEDDING_TABLES[logical].split(".")
    frame = sql(
        home,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
        {"schema": schema, "table": table},
    )
    return dict(frame.select("column_name", "data_type").iter_rows())


def vectors(frame: pl.DataFrame, column: str = "embedding") -> np.ndarray:
    return np.vstack(frame[column].to_list())


def reload_with(cli, home: Path, ids: list[int], **columns: Any) -> None:
    """Re-load these games through `bggscore warehouse load` with some columns replaced."""
    games = sql(home, "SELECT * FROM analytics.games_features ORDER BY game_id").filter(
        pl.col("game_id").is_in(ids)
    )
    edited = games.with_columns(
        **{
            name: pl.Series(name, value, dtype=games.schema[name])
            if isinstance(value, list)
            else value
            for name, value in columns.items()
        }
    )
    path = home.parent / f"edited-{ids[0]}.parquet"
    edited.write_parquet(path)
    loaded = cli("warehouse", "load", str(path), "--json")
    assert loaded.exit_code == 0, loaded.stderr


# -- end to end -------------------------------------------------------------------------------
def test_embed_all_years_end_to_end(cli, to_embed_home: Path, monkeypatch) -> None:
    outputs = to_embed_home.parent / "github_output"
    summary = to_embed_home.parent / "step_summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli("embed", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    ids = game_ids(to_embed_home)
    job = data["job_id"]

    assert job and data["skipped_reason"] is None
    assert data["games_embedded"] == {"text": len(ids), "game": len(ids)}
    assert data["models"] == {
        "text_embeddings": "text_embeddings:1",
        "game_embeddings": "game_embeddings:1",
    }
    assert data["selection"] == "all years"
    # progress on stderr (not a terminal): one pass, text then game embeddings per batch
    progress = f"text-embeddings, game-embeddings: all years: {len(ids)}/{len(ids)}"
    assert progress in result.stderr

    # the domain's columns plus lineage, in order
    assert column_types(to_embed_home, "description_embeddings") == DOMAIN_DESCRIPTION
    assert column_types(to_embed_home, "game_embeddings") == DOMAIN_GAME
    hashes = read(to_embed_home, "game_features_hash").select("game_id", "feature_hash")
    features = sql(
        to_embed_home,
        "SELECT game_id, name, year_published, description FROM analytics.games_features "
        "WHERE year_published IS NOT NULL",
    )

    text = rows(to_embed_home, "description_embeddings")
    assert sorted(text["game_id"]) == sorted(ids)
    assert text.select(*LINEAGE).unique().rows() == [(job, "text_embeddings", 1, 100)]
    assert set(text["algorithm"]) == {"ppmi-svd"} and set(text["document_method"]) == {"sif"}
    assert text["created_ts"].n_unique() == 1
    text_vectors = vectors(text)
    assert text_vectors.shape == (len(ids), 100) and np.isfinite(text_vectors).all()
    zero = int((np.abs(text_vectors).sum(axis=1) == 0).sum())
    assert data["empty_descriptions"] == zero  # the demo has a few empty descriptions
    assert (
        text.join(hashes, on="game_id", suffix="_now")
        .select((pl.col("feature_hash") == pl.col("feature_hash_now")).all())
        .item()
    )
    assert (
        text.join(features, on="game_id")
        .select(pl.col("name") == pl.col("name_right"))["name"]
        .all()
    )

    game = rows(to_embed_home, "game_embeddings")
    assert sorted(game["game_id"]) == sorted(ids)
    assert game.select(*LINEAGE).unique().rows() == [(job, "game_embeddings", 1, 64)]
    assert set(game["algorithm"]) == {"truncated-svd"}
    full = vectors(game)
    assert full.shape == (len(ids), 64)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, rtol=1e-9)
    for k in (8, 16, 32):  # the first k components, re-normalised: dot products are cosines
        prefix = full[:, :k]
        expected = prefix / np.linalg.norm(prefix, axis=1, keepdims=True)
        np.testing.assert_allclose(vectors(game, f"embedding_{k}"), expected, atol=1e-12)
    assert vectors(game, "coordinates_2d").shape == (len(ids), 2)
    joined = game.join(features, on="game_id")
    assert joined["year_published"].eq_missing(joined["year_published_right"]).all()
    assert (
        game.join(hashes, on="game_id", suffix="_now")
        .select((pl.col("feature_hash") == pl.col("feature_hash_now")).all())
        .item()
    )

    # state: text keyed on the description's md5; game on the complexity + text it read
    state = embedding_state(to_embed_home)
    text_state = state.filter(pl.col("stage") == "text-embeddings").join(features, on="game_id")
    assert len(text_state) == len(ids)
    md5 = [hashlib.md5((d or "").encode()).hexdigest() for d in text_state["description"]]
    assert text_state["input_hash"].to_list() == md5
    assert set(text_state["model_key"]) == {"text_embeddings=text_embeddings:1"}
    game_state = state.filter(pl.col("stage") == "game-embeddings")
    complexity_job = read(to_embed_home, "scoring_state").filter(pl.col("stage") == "complexity")[
        "job_id"
    ][0]
    assert set(game_state["upstream_key"]) == {f"complexity:{complexity_job}|text-embeddings:{job}"}
    assert set(game_state["model_key"]) == {"game_embeddings=game_embeddings:1"}
    assert set(state["job_id"]) == {job}
    runs = read(to_embed_home, "runs").filter(pl.col("job_id") == job)
    assert runs.select("command", "stage", "status", "games").rows() == [
        ("embed", "text-embeddings,game-embeddings", "success", len(ids))
    ]

    # GitHub Actions outputs and summary
    assert outputs.read_text().splitlines() == [f"games_embedded={2 * len(ids)}", f"job_id={job}"]
    text_summary = summary.read_text()
    assert text_summary.startswith("### bggscore embed")
    assert f"| text | {len(ids)} |" in text_summary and f"| game | {len(ids)} |" in text_summary


def test_batches_give_the_same_embeddings_as_one_batch(
    cli, to_embed_home: Path, demo_run: DemoRun
) -> None:
    """The demo embedded the same catalogue with the same models in one batch."""
    data = embed_json(cli, "--all-years", "--batch-size", "300")
    ids = game_ids(to_embed_home)
    assert data["games_embedded"] == {"text": len(ids), "game": len(ids)}
    for logical in EMBEDDING_TABLES:
        mine = rows(to_embed_home, logical)
        theirs = rows(demo_run.home, logical)
        assert mine["game_id"].to_list() == theirs["game_id"].to_list()  # no duplicates
        np.testing.assert_allclose(vectors(mine), vectors(theirs), atol=1e-9)


def test_default_range_kind_text_then_game(cli, to_embed_home: Path) -> None:
    in_range = game_ids(to_embed_home, IN_RANGE)
    text = embed_json(cli, "--kind", "text")
    assert text["games_embedded"] == {"text": len(in_range)}
    assert text["selection"] == "years 2024-2028"
    assert set(rows(to_embed_home, "description_embeddings")["game_id"]) == in_range
    assert rows(to_embed_home, "game_embeddings").is_empty()

    game = embed_json(cli, "--kind", "game")
    assert game["games_embedded"] == {"game": len(in_range)}
    assert game["job_id"] != text["job_id"]
    state = embedding_state(to_embed_home).filter(pl.col("stage") == "game-embeddings")
    assert set(state["game_id"]) == in_range
    assert all(key.endswith(f"|text-embeddings:{text['job_id']}") for key in state["upstream_key"])


def test_game_ids_and_ids_file_select_games(cli, to_embed_home: Path, tmp_path: Path) -> None:
    old = sorted(game_ids(to_embed_home, "year_published < 2000"))[:2]
    new = sorted(game_ids(to_embed_home, IN_RANGE))[0]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# games\n{old[1]}\n{new}  # in range\n")
    data = embed_json(cli, "--game-id", str(old[0]), "--game-ids-file", str(ids_file))
    assert data["games_embedded"] == {"text": 3, "game": 3}
    assert data["selection"] == "3 requested game ids"
    for logical in EMBEDDING_TABLES:
        assert set(rows(to_embed_home, logical)["game_id"]) == {*old, new}


def test_changed_only_with_nothing_changed_writes_nothing(
    cli, embedded_home: Path, monkeypatch
) -> None:
    outputs = embedded_home.parent / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    before = embedding_counts(embedded_home)
    result = cli("embed", "--changed-only", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    assert data["job_id"] is None
    assert data["skipped_reason"] == "no_changes"
    assert data["games_embedded"] == {"text": 0, "game": 0}
    assert data["selection"] == "all years (changed only)"
    assert embedding_counts(embedded_home) == before
    assert outputs.read_text().splitlines() == ["games_embedded=0", "job_id="]


def test_empty_year_range_is_not_an_error(cli, to_embed_home: Path) -> None:
    data = embed_json(cli, "--start-year", "1800", "--end-year", "1801")
    assert data["skipped_reason"] == "no_games" and data["job_id"] is None
    assert embedding_counts(to_embed_home) == dict.fromkeys(
        ("description_embeddings", "game_embeddings", "state", "runs"), 0
    )


def test_empty_and_html_only_descriptions_are_zero_vectors(cli, to_embed_home: Path) -> None:
    ids = sorted(game_ids(to_embed_home, IN_RANGE))[:4]
    reload_with(
        cli,
        to_embed_home,
        ids,
        description=["", "<p><br/>&nbsp;</p>&#10;", None, "&lt;b&gt;&amp;quot;"],
    )
    score = cli("score", "--changed-only", "--all-years")
    assert score.exit_code == 0, score.stderr
    result = cli("embed", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    everything = game_ids(to_embed_home)
    assert data["games_embedded"] == {"text": len(everything), "game": len(everything)}

    text = rows(to_embed_home, "description_embeddings")
    zero = text.filter(pl.col("embedding").list.eval(pl.element().abs()).list.sum() == 0)
    assert set(ids) <= set(zero["game_id"])
    assert data["empty_descriptions"] == len(zero)
    assert f"{len(zero)} games had no usable description" in result.stderr
    game = rows(to_embed_home, "game_embeddings").filter(pl.col("game_id").is_in(ids))
    np.testing.assert_allclose(np.linalg.norm(vectors(game), axis=1), 1.0, rtol=1e-9)


# -- errors: exit code, one line, nothing written ----------------------------------------------
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--kind", "words"), ("--kind", "words")),
        (("--start-year", "2026", "--end-year", "2026"), ("--start-year 2026",)),
        (("--batch-size", "0"), ()),
        (("--game-id", "-3"), ()),
    ],
)
def test_bad_flags_are_usage_errors(
    cli, to_embed_home: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    result = cli("embed", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    if needles:
        assert_one_line_error(result.stderr, *needles)
    assert embedding_counts(to_embed_home) == dict.fromkeys(
        ("description_embeddings", "game_embeddings", "state", "runs"), 0
    )


def test_no_embedding_model_yet_says_how_to_train_one(cli, home: Path, sample_path: Path) -> None:
    loaded = cli("warehouse", "load", str(sample_path))
    assert loaded.exit_code == 0, loaded.stderr
    result = cli("embed", "--all-years")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no text_embeddings models yet", "models train")
    assert embedding_counts(home) == dict.fromkeys(
        ("description_embeddings", "game_embeddings", "state", "runs"), 0
    )


def waiting(data: dict) -> dict[tuple[str, str], dict]:
    return {(w["stage"], w["waits_for"]): w for w in data["waiting_on"]}


def test_game_kind_before_text_waits_for_text(cli, to_embed_home: Path) -> None:
    """Games with no description embedding are not embedded but reported (the stage to
    run first, a count and the ids), with one warning line saying what to run."""
    result = cli("embed", "--kind", "game", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    data = parse_json(result.stdout)
    everything = game_ids(to_embed_home)
    found = waiting(data)[("game-embeddings", "text-embeddings")]
    assert found["count"] == len(everything) and set(found["game_ids"]) == everything
    assert data["games_embedded"] == {"game": 0}
    assert data["skipped_reason"] == "waiting_on_upstream"
    [line] = [x for x in result.stderr.splitlines() if "warning:" in x]
    assert "waiting" in line and "for text-embeddings" in line
    assert "bggscore embed --kind text --changed-only" in line
    counts = embedding_counts(to_embed_home)
    assert (counts["game_embeddings"], counts["state"]) == (0, 0)


def test_game_kind_before_scoring_waits_for_complexity(cli, unscored_home: Path) -> None:
    assert embed_json(cli, "--kind", "text", "--all-years")["games_embedded"]["text"] > 0
    before = embedding_counts(unscored_home)
    result = cli("embed", "--kind", "game", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    found = waiting(parse_json(result.stdout))[("game-embeddings", "complexity")]
    assert found["count"] == len(game_ids(unscored_home))
    assert "bggscore score --stage complexity" in result.stderr
    after = embedding_counts(unscored_home)
    assert (after["game_embeddings"], after["state"]) == (0, before["state"])


def test_a_game_model_failing_its_check_writes_nothing(cli, to_embed_home: Path) -> None:
    """Both stages run in one pass, so every model is checked before the first write: a
    tampered game model stops the run before the text stage writes anything."""
    artifact = to_embed_home / "registry" / "game_embeddings" / "game_embeddings" / "v1"
    data = bytearray((artifact / "artifact.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (artifact / "artifact.joblib").write_bytes(bytes(data))
    result = cli("embed", "--all-years")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "game_embeddings:1" in last and "sha256" in last
    assert rows(to_embed_home, "game_embeddings").is_empty()
    assert rows(to_embed_home, "description_embeddings").is_empty()
    assert embed_runs(to_embed_home).is_empty()  # no run was started


def test_dimension_larger_than_the_vocabulary_is_refused(cli, unscored_home: Path) -> None:
    registry = sorted((unscored_home / "registry").rglob("*"))
    result = cli("models", "train", "--outcome", "text_embeddings", "--dim", "100000")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert "--dim 100000 is larger than the" in errors[0] and "words" in errors[0]
    assert sorted((unscored_home / "registry").rglob("*")) == registry


def test_dimension_larger_than_the_game_features_is_refused(cli, unscored_home: Path) -> None:
    registry = sorted((unscored_home / "registry").rglob("*"))
    result = cli("models", "train", "--outcome", "game_embeddings", "--dim", "100000")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "--dim 100000 is larger than the" in errors[0] and "features" in errors[0]
    assert sorted((unscored_home / "registry").rglob("*")) == registry


def test_unknown_game_id_embeds_nothing(cli, to_embed_home: Path) -> None:
    execute(to_embed_home, "CHECKPOINT")
    data = embed_json(cli, "--game-id", "999999999")
    assert data["skipped_reason"] == "no_games"
    assert embedding_counts(to_embed_home)["state"] == 0


def test_the_progress_line_says_which_games_embed_only_if_their_text_changed(
    cli, embedded_home: Path
) -> None:
    """After a refresh, games whose features moved are read, but only those whose
    description changed are embedded: the label says how many are unsure, the result how
    many were embedded (a new-user trial saw "87/87" beside 30 embedded)."""
    assert cli("demo", "refresh", "--fraction", "0.05").exit_code == 0
    result = cli("embed", "--kind", "text", "--changed-only", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    embedded = parse_json(result.stdout)["games_embedded"]["text"]
    import re

    found = re.search(
        r"([\d,]+) changed games?(?:, ([\d,]+) of them only if the description changed)?",
        result.stderr,
    )
    assert found, result.stderr
    read_games = int(found[1].replace(",", ""))
    unsure = int(found[2].replace(",", "")) if found[2] else 0
    assert unsure, result.stderr  # the refresh moved features without the description
    assert read_games - unsure <= embedded < read_games

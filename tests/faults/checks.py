"""The invariants a crash must never break, read back from the embedded warehouse.

"Landing and state are written together": every batch commits its landing rows and the
matching state rows of each stage in one transaction, so whatever moment a run dies,
(a) each in-range game has exactly one state row per stage, pointing at exactly one
landing row of that stage's table, (b) no (job_id, game_id) appears twice in a landing
table, and (c) the games a killed job wrote are the same set in every table it writes,
made of whole batches, and still carry its state unless a later job rescored them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from tests.support.state import EMBEDDING_TABLES, QUALIFIED, game_ids, sql, warehouse_file

# stage -> the landing table its state rows point at
SCORE_STAGES = {"complexity": "complexity_predictions", "main": "ml_predictions_landing"}
EMBED_STAGES = {
    "text-embeddings": "description_embeddings",
    "game-embeddings": "game_embeddings",
}
QUALIFIED_ALL = {**QUALIFIED, **EMBEDDING_TABLES}


def database_is_sound(home: Path) -> dict[str, int]:
    """Open the file (replaying any WAL left by a kill), read every row of every table,
    checkpoint, and read again: the same counts both times. Returns the counts."""
    path = warehouse_file(home)

    def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        found = {}
        for (name,) in tables:
            # hash(t) reads every column of every row
            n, _ = con.execute(f"SELECT COUNT(*), SUM(hash(t)) FROM {name} AS t").fetchone()
            found[name] = int(n)
        return found

    con = duckdb.connect(str(path))
    try:
        before = counts(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    con = duckdb.connect(str(path))
    try:
        after = counts(con)
    finally:
        con.close()
    assert before == after, (before, after)
    return after


def _ids(frame: pl.DataFrame) -> set[int]:
    return set(frame["game_id"].to_list())


def landing_duplicates(home: Path, logical: str) -> int:
    table = QUALIFIED_ALL[logical]
    frame = sql(
        home,
        f"SELECT COUNT(*) AS n FROM (SELECT job_id, game_id FROM {table} "
        "GROUP BY job_id, game_id HAVING COUNT(*) > 1)",
    )
    return int(frame["n"][0])


def assert_state_points_at_landing(home: Path, stages: dict[str, str]) -> None:
    """Every in-range game: one state row per stage, matching exactly one landing row."""
    in_range = game_ids(home)
    for stage, logical in stages.items():
        assert landing_duplicates(home, logical) == 0, f"duplicate (job_id, game_id) in {logical}"
        state = sql(
            home,
            f"SELECT s.game_id, s.job_id, COUNT(l.game_id) AS landed "
            f"FROM {QUALIFIED['scoring_state']} AS s LEFT JOIN {QUALIFIED_ALL[logical]} AS l "
            "ON l.job_id = s.job_id AND l.game_id = s.game_id "
            "WHERE s.stage = $stage GROUP BY s.game_id, s.job_id",
            {"stage": stage},
        )
        assert state["game_id"].is_unique().all(), f"{stage}: a game with two state rows"
        assert _ids(state) == in_range, f"{stage}: state rows != in-range games"
        orphans = state.filter(pl.col("landed") != 1)
        assert orphans.is_empty(), f"{stage}: state without exactly one landing row: {orphans}"


def games_of(home: Path, logical: str, job_id: str) -> set[int]:
    frame = sql(
        home,
        f"SELECT game_id FROM {QUALIFIED_ALL[logical]} WHERE job_id = $job",
        {"job": job_id},
    )
    return _ids(frame)


def state_games_of(home: Path, stage: str, job_id: str) -> set[int]:
    frame = sql(
        home,
        f"SELECT game_id FROM {QUALIFIED['scoring_state']} WHERE stage = $stage AND job_id = $job",
        {"stage": stage, "job": job_id},
    )
    return _ids(frame)


def is_whole_batches(games: set[int], ordered: list[int], batch_size: int) -> bool:
    """``games`` is the first k*batch_size games of ``ordered`` (or all of them)."""
    return games == set(ordered[: len(games)]) and (
        len(games) % batch_size == 0 or len(games) == len(ordered)
    )


def runs(home: Path) -> pl.DataFrame:
    return sql(home, f"SELECT * FROM {QUALIFIED['runs']} ORDER BY started_at")


@dataclass
class KilledJob:
    """What a killed job left behind, per table."""

    job_id: str | None
    status: str | None
    games: dict[str, set[int]]

    @property
    def committed(self) -> int:
        sizes = {len(g) for g in self.games.values()}
        return max(sizes) if sizes else 0


def killed_job(home: Path, command: str, tables: list[str]) -> KilledJob:
    """The one run the killed process recorded (if it got that far) and its rows."""
    frame = runs(home).filter(pl.col("command") == command)
    assert len(frame) <= 1, frame
    if frame.is_empty():
        for logical in tables:
            assert sql(home, f"SELECT COUNT(*) AS n FROM {QUALIFIED_ALL[logical]}")["n"][0] == 0
        return KilledJob(None, None, {t: set() for t in tables})
    row = frame.row(0, named=True)
    return KilledJob(
        row["job_id"], row["status"], {t: games_of(home, t, row["job_id"]) for t in tables}
    )


def assert_main_read_its_complexity(home: Path) -> None:
    """main's state names the complexity job whose prediction it used, and that job is the
    one complexity's state points at; the landing row carries the same number."""
    state, landing = QUALIFIED["scoring_state"], QUALIFIED["ml_predictions_landing"]
    complexity = QUALIFIED["complexity_predictions"]
    bad = sql(
        home,
        f"SELECT m.game_id, m.upstream_key, c.job_id FROM {state} AS m "
        f"JOIN {state} AS c ON c.game_id = m.game_id AND c.stage = 'complexity' "
        "WHERE m.stage = 'main' AND m.upstream_key IS DISTINCT FROM 'complexity:' || c.job_id",
    )
    assert bad.is_empty(), bad
    mismatched = sql(
        home,
        f"SELECT l.job_id, l.game_id FROM {landing} AS l JOIN {complexity} AS c "
        "ON c.job_id = l.job_id AND c.game_id = l.game_id "
        "WHERE l.predicted_complexity IS DISTINCT FROM c.predicted_complexity",
    )
    assert mismatched.is_empty(), mismatched


def assert_game_embeddings_read_current_inputs(home: Path) -> None:
    state = QUALIFIED["scoring_state"]
    bad = sql(
        home,
        f"SELECT g.game_id, g.upstream_key FROM {state} AS g "
        f"JOIN {state} AS c ON c.game_id = g.game_id AND c.stage = 'complexity' "
        f"JOIN {state} AS t ON t.game_id = g.game_id AND t.stage = 'text-embeddings' "
        "WHERE g.stage = 'game-embeddings' AND g.upstream_key IS DISTINCT FROM "
        "'complexity:' || c.job_id || '|text-embeddings:' || t.job_id",
    )
    assert bad.is_empty(), bad


def predictions(home: Path) -> pl.DataFrame:
    """Each in-range game's current prediction (the landing row its main state points at)."""
    state, landing = QUALIFIED["scoring_state"], QUALIFIED["ml_predictions_landing"]
    return sql(
        home,
        "SELECT l.game_id, l.predicted_complexity, l.predicted_hurdle_prob, l.predicted_rating, "
        f"l.predicted_users_rated, l.predicted_geek_rating FROM {state} AS s JOIN {landing} AS l "
        "ON l.job_id = s.job_id AND l.game_id = s.game_id WHERE s.stage = 'main' ORDER BY 1",
    )

"""Bad input to every command: exit 2 for usage / input / config errors and for a model,
version or alias that is not registered (typed, or named by a setting), 1 for runtime
failures (missing tables, no token, a tampered artifact), one `error:` line, no traceback, and
NOTHING WRITTEN: warehouse row counts, the registry's files, the work folder and the GitHub
output files are the same before and after.

Most rows run against one shared copy of the session's `bggscore demo` home (six models,
every stage scored and embedded), so a row that wrongly wrote would show up in its own
before/after snapshot. Rows marked ``fresh`` run against an empty home. Every row has a
GitHub token and a local fake GitHub API: a dispatch that got through would be recorded.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.support.github import FakeGitHub, start_fake_github
from tests.support.output import assert_one_line_error
from tests.support.state import files, table_counts

from bggscore.warehouse.schemas import GAMES_FEATURES

REPO = "phenrickson/bgg-predictive-models"
FAKE_TOKEN = "ghp_BadInputs0123456789abcdefABCDEF012345"
DISPATCH = ("dispatch", "e", "--repo", REPO)
RUN_DISPATCH = ("run", "--dispatch", "e", "--dispatch-repo", REPO)
BIGQUERY = {
    "BGGSCORE_WAREHOUSE__ENGINE": "bigquery",
    "BGGSCORE_WAREHOUSE__FEATURES_PROJECT": "my-features-project",
    "BGGSCORE_WAREHOUSE__ML_PROJECT": "my-ml-project",
}


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _games(ids: list[int]) -> pl.DataFrame:
    """A games_features export of these ids, every other column empty."""
    frame = pl.DataFrame(
        {name: [None] * len(ids) for name in GAMES_FEATURES.names},
        schema=GAMES_FEATURES.polars_schema(),
    )
    return frame.with_columns(game_id=pl.Series(ids, dtype=pl.Int64), name=pl.lit("x"))


def _joblib(model: object) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _regressor() -> object:
    """A fitted regressor with named columns: registrable, but not as the hurdle model."""
    from sklearn.linear_model import LinearRegression

    frame = pl.DataFrame({"min_age": [8.0, 10.0, 12.0], "max_players": [2.0, 4.0, 5.0]})
    return LinearRegression().fit(frame, [6.0, 6.5, 7.0])


@dataclass(frozen=True)
class Row:
    """One bad input: ``bggscore ARGS`` with ``env`` (None unsets) and ``files`` written in
    the work folder first; it must exit ``code`` with one error line containing ``needle``."""

    id: str
    args: tuple[str, ...]
    code: int
    needle: str
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)
    fresh: bool = False  # an empty home instead of the demo home


def row(
    id: str, args: tuple[str, ...] | str, code: int, needle: str, **kwargs: Any
) -> pytest.ParameterSet:
    args = tuple(args.split()) if isinstance(args, str) else args
    return pytest.param(Row(id, args, code, needle, **kwargs), id=id)


ROWS = [
    # -- settings: config files, env vars, global flags -----------------------------------
    row("config-missing", "--config missing.toml warehouse init", 2, "config file missing.toml"),
    row(
        "config-not-toml",
        "--config broken.toml warehouse init",
        2,
        "broken.toml is not valid TOML",
        files={"broken.toml": "warehouse = [\n"},
    ),
    row(
        "config-unknown-key",
        "--config typo.toml warehouse status",
        2,
        "invalid setting warehouse.bogus",
        files={"typo.toml": "[warehouse]\nbogus = 1\n"},
    ),
    row(
        "config-table-injection",
        "--config inject.toml warehouse status",
        2,
        "table name 'runs; DROP TABLE x' is not a valid identifier",
        files={"inject.toml": '[warehouse.tables]\nruns = "runs; DROP TABLE x"\n'},
    ),
    row("engine-unknown", "--engine oracle warehouse status", 2, "warehouse.engine"),
    row("bigquery-no-project", "--engine bigquery warehouse init", 2, "features_project is not"),
    row(
        "env-lock-timeout",
        "warehouse status",
        2,
        "warehouse.lock_timeout",
        env={"BGGSCORE_WAREHOUSE__LOCK_TIMEOUT": "-1"},
    ),
    row(
        "env-dataset",
        "warehouse init",
        2,
        "dataset 'raw.x' is not a valid identifier",
        env={"BGGSCORE_WAREHOUSE__ML_DATASET": "raw.x"},
    ),
    row(
        "env-warehouse-path-is-a-folder",
        "warehouse status",
        1,
        "cannot open warehouse .",
        env={"BGGSCORE_WAREHOUSE__PATH": "."},
    ),
    row(
        "github-output-unwritable",
        "detect-changes",
        1,
        "cannot write $GITHUB_OUTPUT (/nonexistent/github_output)",
        env={"GITHUB_OUTPUT": "/nonexistent/github_output"},
    ),
    row(
        "ids-file-not-text",
        "detect-changes --game-ids-file ids.bin",
        2,
        "ids.bin is not UTF-8 text",
        files={"ids.bin": b"PAR1\xda\xff\x00"},
    ),
    row(
        "home-is-a-file",
        "--home notes.txt detect-changes",
        2,
        "notes.txt is a file, not a folder",
        files={"notes.txt": "x"},
    ),
    # config files and variables that cannot be parsed: one line, naming the file or variable
    row(
        "config-not-utf8",
        "warehouse status",
        2,
        "bggscore.toml is not UTF-8 text (byte 1)",
        files={"bggscore.toml": b"\x00\xff\xfe[warehouse]"},
    ),
    row(
        "config-flag-after-command-not-utf8",
        "warehouse status --config bin.toml",
        2,
        "config file bin.toml is not UTF-8 text",
        files={"bin.toml": b"PAR1\xda\xff\x00"},
    ),
    row(
        "config-unknown-top-level-key",
        "--config typo.toml warehouse status",
        2,
        "invalid setting sorce_environment: no such setting (got 'x'; from typo.toml)",
        files={"typo.toml": 'sorce_environment = "x"\n'},
    ),
    row(
        "env-group-not-json",
        "warehouse status",
        2,
        "BGGSCORE_WAREHOUSE is not valid JSON",
        env={"BGGSCORE_WAREHOUSE": "{bad"},
    ),
    row(
        "env-github-group-not-json",
        DISPATCH,
        2,
        "BGGSCORE_GITHUB is not valid JSON",
        env={"BGGSCORE_GITHUB": '{"token": "ghp_never_shown'},
    ),
    row(
        "env-unknown-group",
        "detect-changes",
        2,
        "BGGSCORE_WAREHOUS__ENGINE is not a bggscore setting: 'warehous' is not a settings group",
        env={"BGGSCORE_WAREHOUS__ENGINE": "duckdb"},
    ),
    row(
        "env-plain-setting-nested",
        "detect-changes",
        2,
        "BGGSCORE_HOME__PATH is not a bggscore setting",
        env={"BGGSCORE_HOME__PATH": "x"},
    ),
    row(
        "env-unknown-key-in-group",
        "detect-changes",
        2,
        "invalid setting scoring.prior: no such setting (got '1'; from BGGSCORE_SCORING__PRIOR)",
        env={"BGGSCORE_SCORING__PRIOR": "1"},
    ),
    # an empty home or warehouse path would silently mean the current folder
    row(
        "env-home-empty",
        "detect-changes",
        2,
        "invalid setting home: an empty path would mean the current folder",
        env={"BGGSCORE_HOME": ""},
    ),
    row(
        "flag-home-empty",
        ("--home", "", "warehouse", "init"),
        2,
        "invalid setting home: an empty path would mean the current folder; give a path "
        "(from --home)",
    ),
    row(
        "config-home-empty",
        "warehouse init",
        2,
        "invalid setting home: an empty path",
        env={"BGGSCORE_HOME": None},
        files={"bggscore.toml": 'home = ""\n'},
    ),
    row(
        "env-warehouse-path-empty",
        "warehouse init",
        2,
        "invalid setting warehouse.path: an empty path",
        env={"BGGSCORE_WAREHOUSE__PATH": " "},
    ),
    # every float setting is a finite number; counts fit in int64
    row("score-prior-rating-nan", "score --prior-rating nan", 2, "Input should be a finite number"),
    row(
        "score-prior-weight-inf",
        "score --prior-weight inf",
        2,
        "invalid setting scoring.prior_weight: Input should be a finite number (got inf; from "
        "--prior-weight)",
    ),
    row(
        "env-prior-rating-nan",
        "run",
        2,
        "scoring.prior_rating: Input should be a finite number (got 'nan'; from "
        "BGGSCORE_SCORING__PRIOR_RATING)",
        env={"BGGSCORE_SCORING__PRIOR_RATING": "nan"},
    ),
    row(
        "config-prior-weight-inf",
        "--config inf.toml score",
        2,
        "scoring.prior_weight: Input should be a finite number (got inf; from inf.toml)",
        files={"inf.toml": "[scoring]\nprior_weight = inf\n"},
    ),
    row(
        "env-lock-timeout-inf",
        "warehouse status",
        2,
        "warehouse.lock_timeout: Input should be a finite number",
        env={"BGGSCORE_WAREHOUSE__LOCK_TIMEOUT": "inf"},
    ),
    row(
        "env-memory-limit-huge",
        "warehouse status",
        2,
        "warehouse.memory_limit_mb: Input should be less than or equal to 17592186044415",
        env={"BGGSCORE_WAREHOUSE__MEMORY_LIMIT_MB": "99999999999999999999"},
    ),
    row(
        "env-batch-size-huge",
        "score",
        2,
        "scoring.batch_size: Input should be less than or equal to 9223372036854775807",
        env={"BGGSCORE_SCORING__BATCH_SIZE": "99999999999999999999"},
    ),
    # global options after the command name mean what they mean before it
    row("config-missing-after-command", "warehouse init --config nope.toml", 2, "nope.toml not"),
    row("engine-unknown-after-command", "detect-changes --engine oracle", 2, "warehouse.engine"),
    row(
        "home-is-a-file-after-command",
        "score --home notes.txt",
        2,
        "notes.txt is a file, not a folder",
        files={"notes.txt": "x"},
    ),
    row(
        "config-show-nan",
        "config show --json",
        2,
        "invalid setting scoring.prior_rating",
        env={"BGGSCORE_SCORING__PRIOR_RATING": "-inf"},
    ),
    row(
        "config-show-not-toml",
        "config show",
        2,
        "bggscore.toml is not valid TOML",
        files={"bggscore.toml": "[scoring\n"},
    ),
    row(
        "env-registry-uri",
        "models list",
        2,
        "unsupported registry URI 's3://bucket/x'",
        env={"BGGSCORE_REGISTRY__URI": "s3://bucket/x"},
    ),
    # -- warehouse load ------------------------------------------------------------------
    row("load-missing-file", "warehouse load nope.parquet", 2, "nope.parquet not found"),
    row("load-a-folder", "warehouse load .", 2, ". is a folder"),
    row(
        "load-not-parquet",
        "warehouse load games.parquet",
        2,
        "games.parquet is not a readable parquet file",
        files={"games.parquet": b"game_id,name\n1,x\n"},
    ),
    row(
        "load-missing-columns",
        "warehouse load ids.parquet",
        2,
        "ids.parquet is missing required column(s): name, year_published",
        files={"ids.parquet": _parquet(pl.DataFrame({"game_id": [1, 2]}))},
    ),
    row("load-nothing", "warehouse load", 2, "give a games_features export, --embeddings"),
    row(
        "load-negative-game-id",
        "warehouse load neg.parquet",
        2,
        "neg.parquet: 1 row(s) have a game_id below 1 (e.g. -7)",
        files={"neg.parquet": _parquet(_games([5, -7]))},
    ),
    row(
        "load-embeddings-negative-game-id",
        "warehouse load --embeddings neg.parquet",
        2,
        "neg.parquet: 1 row(s) have a game_id below 1",
        files={
            "neg.parquet": _parquet(pl.DataFrame({"game_id": [3, 0], "embedding": [[1.0], [2.0]]}))
        },
    ),
    row(
        "load-no-rows",
        "warehouse load empty.parquet",
        2,
        "empty.parquet holds no games",
        files={"empty.parquet": _parquet(pl.DataFrame(schema=GAMES_FEATURES.polars_schema()))},
    ),
    row(
        "load-embeddings-ragged",
        "warehouse load --embeddings v.parquet",
        2,
        "v.parquet: embeddings must all have the same number of dimensions",
        files={"v.parquet": _parquet(pl.DataFrame({"game_id": [1, 2], "embedding": [[1.0], []]}))},
    ),
    row(
        "load-embeddings-bigquery",
        "warehouse load --embeddings v.parquet",
        2,
        "the data warehouse owns the embeddings table",
        env=BIGQUERY,
        files={"v.parquet": _parquet(pl.DataFrame({"game_id": [1], "embedding": [[1.0]]}))},
    ),
    # -- models ----------------------------------------------------------------------------
    row("train-nothing", "models train", 2, "give --outcome NAME (repeatable) or --all"),
    row("train-both", "models train --all --outcome rating", 2, "give --outcome NAME"),
    row("train-outcome", "models train --outcome bogus", 2, "unknown outcome(s) bogus"),
    row(
        "train-estimator",
        "models train --outcome rating --estimator xgboost",
        2,
        "unknown --estimator 'xgboost'",
    ),
    row(
        "train-years",
        "models train --outcome rating --train-through 2025",
        2,
        "years must satisfy train-through < tune-year < test-year",
    ),
    row(
        "train-name-two-outcomes",
        "models train --outcome rating --outcome hurdle --name foo",
        2,
        "--name needs exactly one --outcome",
    ),
    row(
        "train-bad-name",
        ("models", "train", "--outcome", "rating", "--name", "Bad Name"),
        2,
        "invalid model name 'Bad Name'",
    ),
    row("list-type", "models list --type bogus", 2, "unknown model type 'bogus'"),
    row("show-unknown", "models show nosuch", 2, "unknown model 'nosuch'"),
    row("show-no-version", "models show rating:99", 2, "rating has no version 99; versions: 1"),
    row("show-no-alias", "models show rating@gold", 2, "rating has no alias 'gold'"),
    row("show-version-0", "models show rating:0", 2, "invalid model version '0'"),
    row("show-alias-and-version", "models show rating@champion:1", 2, "not both"),
    row("show-empty", ("models", "show", ""), 2, "empty model reference"),
    row(
        "register-missing-file",
        "models register nope.joblib --type rating --name r2",
        2,
        "model file nope.joblib does not exist",
    ),
    row(
        "register-not-joblib",
        "models register bad.joblib --type rating --name r2",
        2,
        "bad.joblib is not a joblib file",
        files={"bad.joblib": b"not a pickle"},
    ),
    row(
        "register-type",
        "models register bad.joblib --type bogus --name r2",
        2,
        "unknown model type 'bogus'",
        files={"bad.joblib": b"not a pickle"},
    ),
    row(
        "register-signature-missing",
        "models register bad.joblib --type rating --name r2 --signature nope.json",
        2,
        "signature file nope.json does not exist",
        files={"bad.joblib": b"not a pickle"},
    ),
    row(
        "register-signature-not-json",
        "models register model.joblib --type rating --name r2 --signature sig.json",
        2,
        "signature file sig.json is not valid JSON (line 1",
        files={"model.joblib": b"not a pickle", "sig.json": '[{"name": "a",}]'},
    ),
    row(
        "register-signature-unknown-key",
        "models register model.joblib --type rating --name r2 --signature sig.json",
        2,
        "entry 1 has unknown key(s) dtpye",
        files={"model.joblib": b"not a pickle", "sig.json": '[{"name": "a", "dtpye": "INT64"}]'},
    ),
    row(
        "register-regressor-as-hurdle",
        "models register reg.joblib --type hurdle --name h2",
        2,
        "is a LinearRegression without predict_proba, so it cannot be a hurdle model",
        files={"reg.joblib": _joblib(_regressor())},
    ),
    row(
        "register-not-a-model",
        "models register dict.joblib --type rating --name r2",
        2,
        "is a dict with neither predict nor transform",
        files={"dict.joblib": _joblib({"coef": [1.0]})},
    ),
    row(
        "register-name-path",
        "models register bad.joblib --type rating --name ../evil",
        2,
        "invalid model name '../evil'",
        files={"bad.joblib": b"not a pickle"},
    ),
    row(
        "import-not-a-registry",
        "models import notes.txt",
        2,
        "is not a folder; check the path",
        files={"notes.txt": "not a registry"},
    ),
    row("alias-bad", ("models", "alias", "rating:1", "Bad Alias"), 2, "invalid alias 'Bad Alias'"),
    row("alias-no-version", "models alias rating:7 champion", 2, "rating has no version 7"),
    row("alias-unknown-model", "models alias nope:1 x", 2, "unknown model 'nope'"),
    row("alias-missing", "models alias rating:1", 2, "give the alias to set"),
    row("alias-remove-unknown", "models alias --remove rating@gold", 2, "has no alias 'gold'"),
    row("alias-remove-version", "models alias --remove rating:1", 2, "as NAME@ALIAS"),
    row(
        "alias-remove-two-arguments",
        "models alias --remove rating@champion champion",
        2,
        "--remove takes one argument",
    ),
    row(
        "archive-injection",
        ("models", "archive", "x; DROP TABLE y"),
        2,
        "invalid model name 'x; DROP TABLE y'",
    ),
    row("archive-no-version", "models archive rating:9", 2, "rating has no version 9"),
    row("archive-plain-name", "models archive rating", 2, "archive needs a version"),
    row("unarchive-plain-name", "models unarchive rating", 2, "unarchive needs a version"),
    row("unarchive-no-version", "models unarchive rating:9", 2, "rating has no version 9"),
    row("unarchive-unknown", "models unarchive nope:1", 2, "unknown model 'nope'"),
    row("verify-unknown", "models verify nosuch", 2, "unknown model 'nosuch'"),
    row("verify-bad-ref", ("models", "verify", "a b"), 2, "invalid model name 'a b'"),
    # -- detect-changes --------------------------------------------------------------------
    row("detect-format", "detect-changes --format xml", 2, "unknown --format 'xml'"),
    row("detect-stage", "detect-changes --stage bogus", 2, "unknown --stage 'bogus'"),
    row(
        "detect-years",
        "detect-changes --start-year 2030 --end-year 2020",
        2,
        "--start-year 2030 must be before --end-year 2020",
    ),
    row("detect-max-games", "detect-changes --max-games 0", 2, "--max-games must be positive"),
    row("detect-explain", "detect-changes --explain 999999999", 2, "game 999999999 is not in"),
    row("detect-model-ref", "detect-changes --model hurdle=Bad", 2, "invalid model name 'Bad'"),
    row(
        "detect-ids-file-line",
        "detect-changes --game-ids-file ids.txt",
        2,
        "ids.txt:3: 'x3' is not a game id",
        files={"ids.txt": "1\n# a comment\nx3\n"},
    ),
    row(
        "detect-max-games-past-int64",
        f"detect-changes --max-games {2**63}",
        2,
        "--max-games must be at most 9223372036854775807 (which means no cap), got "
        "9223372036854775808",
    ),
    row(
        "detect-all-years-and-range",
        "detect-changes --all-years --start-year 2000 --end-year 2010",
        2,
        "--all-years takes every year: drop --start-year and --end-year, or --all-years",
    ),
    row(
        "detect-ids-and-years",
        "detect-changes --game-id 5 --start-year 2020",
        2,
        "--game-id selects games whatever their year: drop --start-year",
    ),
    row(
        "detect-json-and-ids",
        "detect-changes --json --format ids",
        2,
        "--format ids prints bare ids and --json one document",
    ),
    row("detect-fresh", "detect-changes", 1, "no warehouse at", fresh=True),
    row(
        "detect-min-users-rated-negative",
        "detect-changes --min-users-rated -1",
        2,
        "--min-users-rated -1 must be a whole number from 0",
    ),
    # -- score -----------------------------------------------------------------------------
    row(
        "score-years-equal",
        "score --start-year 2026 --end-year 2026",
        2,
        "must be before --end-year 2026 (the end year is exclusive)",
    ),
    row("score-game-id-0", "score --game-id 0", 2, "--game-id 0 is not a game id"),
    row("score-game-id-negative", "score --game-id=-7", 2, "--game-id -7 is not a game id"),
    row("score-game-id-unknown", "score --game-id 999999999", 2, "game 999999999 is not in the"),
    row(
        "score-game-ids-all-unknown",
        "score --game-id 999999998 --game-id 999999999",
        2,
        "none of the 2 requested game ids is in the warehouse: 999999998, 999999999",
    ),
    row("score-ids-file-missing", "score --game-ids-file nope.txt", 2, "nope.txt not found"),
    row(
        "score-ids-file-superscript",
        "score --game-ids-file ids.txt",
        2,
        "ids.txt:2: '²' is not a game id",
        files={"ids.txt": "5\n²\n"},
    ),
    row("score-model-no-ref", "score --model rating", 2, "must look like TYPE=REF"),
    row("score-model-type", "score --model foo=bar", 2, "unknown model type 'foo'"),
    row("score-model-alias", "score --model rating=rating@@x", 2, "invalid alias '@x'"),
    row(
        "score-model-unknown",
        "score --model rating=nosuch",
        2,
        "--model rating=nosuch: unknown rating model 'nosuch'",
    ),
    row(
        "score-model-version",
        "score --model rating=rating:99",
        2,
        "--model rating=rating:99: rating has no version 99; versions: 1",
    ),
    row("score-model-alias-unknown", "score --model rating=rating@gold", 2, "no alias 'gold'"),
    row("score-model-kind", "score --model rating=hurdle", 2, "is a hurdle model, not rating"),
    row("score-stage", "score --stage nope", 2, "unknown --stage 'nope'"),
    row("score-no-upload", "score --no-upload", 2, "--no-upload needs --output"),
    row("score-output-csv", "score --output out.csv", 2, "--output out.csv must end in .parquet"),
    row("score-output-folder", "score --output no/x.parquet", 2, "--output folder no does not"),
    row("score-prior-weight", "score --prior-weight 0", 2, "scoring.prior_weight"),
    row(
        "score-env-batch-size",
        "score",
        2,
        "invalid setting scoring.batch_size",
        env={"BGGSCORE_SCORING__BATCH_SIZE": "0"},
    ),
    row(
        "score-env-model",
        "score --all-years",
        2,
        "BGGSCORE_MODELS__RATING: invalid model name 'Bad Ref'",
        env={"BGGSCORE_MODELS__RATING": "Bad Ref"},
    ),
    row(
        "score-env-model-unknown",
        "score --all-years",
        2,
        "BGGSCORE_MODELS__RATING: unknown rating model 'nope'",
        env={"BGGSCORE_MODELS__RATING": "nope"},
    ),
    row(
        "score-config-model-version",
        "--config models.toml score --all-years",
        2,
        "models.hurdle in models.toml: hurdle has no version 9",
        files={"models.toml": '[models]\nhurdle = "hurdle:9"\n'},
    ),
    row(
        "score-changed-max-games",
        "score --changed-only --max-games 0",
        2,
        "--max-games must be positive, got 0",
    ),
    row(
        "score-max-games-past-int64",
        "score --changed-only --max-games 99999999999999999999",
        2,
        "--max-games must be at most 9223372036854775807",
    ),
    row(
        "score-max-games-without-changed-only",
        "score --max-games 10",
        2,
        "--max-games caps the games change detection finds; add --changed-only",
    ),
    row(
        "score-all-years-and-start",
        "score --all-years --start-year 2020",
        2,
        "--all-years takes every year: drop --start-year, or --all-years",
    ),
    row(
        "score-ids-file-and-all-years",
        "score --game-ids-file ids.txt --all-years --include-null-year",
        2,
        "--game-ids-file selects games whatever their year: drop --all-years, --include-null-year",
        files={"ids.txt": "5\n"},
    ),
    row("score-embedding-stage", "score --stage text-embeddings", 2, "`bggscore embed` computes"),
    row("score-fresh", "score", 1, "no warehouse at", fresh=True),
    # -- embed and similar -----------------------------------------------------------------
    row("embed-kind", "embed --kind bogus", 2, "unknown --kind 'bogus'"),
    row("embed-max-games", "embed --changed-only --max-games=-1", 2, "--max-games must be"),
    row("embed-years", "embed --start-year 2030 --end-year 2030", 2, "--start-year 2030 must"),
    row(
        "embed-ids-file",
        "embed --game-ids-file ids.txt",
        2,
        "ids.txt:1: '0'",
        files={"ids.txt": "0"},
    ),
    row(
        "embed-max-games-past-int64",
        "embed --changed-only --max-games 99999999999999999999",
        2,
        "--max-games must be at most 9223372036854775807",
    ),
    row(
        "embed-max-games-without-changed-only",
        "embed --kind text --max-games 10",
        2,
        "--max-games caps the games change detection finds; add --changed-only",
    ),
    row(
        "embed-all-years-and-end",
        "embed --all-years --end-year 2020",
        2,
        "--all-years takes every year: drop --end-year, or --all-years",
    ),
    row("embed-fresh", "embed", 1, "no warehouse at", fresh=True),
    row(
        "embed-env-model-unknown",
        "embed --all-years",
        2,
        "BGGSCORE_MODELS__TEXT_EMBEDDINGS: unknown text_embeddings model 'nope'",
        env={"BGGSCORE_MODELS__TEXT_EMBEDDINGS": "nope"},
    ),
    row("similar-nothing", "similar", 2, "give a GAME_ID or --name"),
    row("similar-both", "similar 1 --name x", 2, "not both"),
    row("similar-neither-says-what-to-give", "similar", 2, '--name "part of a name"'),
    row("similar-unknown-id", "similar 999999999", 2, "game 999999999 is not in the warehouse"),
    row("similar-empty-name", ("similar", "--name", ""), 2, "--name is empty"),
    row("similar-blank-name", ("similar", "--name", " \t"), 2, "--name is empty"),
    row("similar-unknown-name", ("similar", "--name", "zzz no such"), 2, "no game named 'zzz"),
    row("similar-fresh", "similar 1", 2, "unknown game_embeddings model", fresh=True),
    # -- dispatch (a fake token and a local API: nothing may be sent) ----------------------
    row("dispatch-repo", ("dispatch", "e", "--repo", "a/b; rm -rf /"), 2, "is not OWNER/NAME"),
    row("dispatch-no-kind", ("dispatch", "--repo", REPO), 2, "give EVENT_TYPE for a"),
    row("dispatch-event-newline", ("dispatch", "a\nb", "--repo", REPO), 2, "control characters"),
    row("dispatch-event-long", ("dispatch", "x" * 101, "--repo", REPO), 2, "1 to 100 characters"),
    row("dispatch-payload", (*DISPATCH, "--payload", "=x"), 2, "--payload '=x' is not KEY=VALUE"),
    row("dispatch-json", (*DISPATCH, "--payload-json", "{bad"), 2, "is not valid JSON"),
    row("dispatch-json-array", (*DISPATCH, "--payload-json", "[1]"), 2, "must be a JSON object"),
    row(
        "dispatch-json-huge-number",
        (*DISPATCH, "--payload-json", "1" * 5000),
        2,
        "--payload-json is not valid JSON",
    ),
    row(
        "dispatch-guard-key",
        (*DISPATCH, "--payload-json", '{"bggscore_hops": 0}'),
        2,
        "which the loop guard sets itself",
    ),
    row(
        "dispatch-workflow-path",
        ("dispatch", "--workflow", "../evil.yml", "--ref", "main", "--repo", REPO),
        2,
        "is not a workflow file name or id",
    ),
    row(
        "dispatch-ref-space",
        ("dispatch", "--workflow", "score.yml", "--ref", "main branch", "--repo", REPO),
        2,
        "--ref 'main branch' is not a branch or tag name",
    ),
    row(
        "dispatch-input-key",
        ("dispatch", "--workflow", "s.yml", "--ref", "main", "--repo", REPO, "--input", "1x=y"),
        2,
        "--input '1x=y' is not KEY=VALUE",
    ),
    row("dispatch-input-alone", (*DISPATCH, "--input", "a=1"), 2, "only go with --workflow"),
    row(
        "dispatch-api-plain-http",
        DISPATCH,
        2,
        "refusing to send the token over plain http",
        env={"BGGSCORE_GITHUB_API_URL": "http://api.github.invalid"},
    ),
    row(
        "dispatch-api-credentials",
        DISPATCH,
        2,
        "must not carry credentials",
        env={"BGGSCORE_GITHUB_API_URL": "https://user:pw@api.github.invalid"},
    ),
    row(
        "dispatch-token-space",
        DISPATCH,
        1,
        "cannot be sent in a header",
        env={"BGGSCORE_GITHUB_TOKEN": "ghp_not a token"},
    ),
    row("dispatch-no-token", DISPATCH, 1, "no GitHub token", env={"BGGSCORE_GITHUB_TOKEN": None}),
    row(
        "dispatch-event-file",
        DISPATCH,
        2,
        "cannot read the triggering event GITHUB_EVENT_PATH=missing.json",
        env={"GITHUB_EVENT_PATH": "missing.json"},
    ),
    row(
        "dispatch-event-hops",
        DISPATCH,
        2,
        "bggscore_hops is 'x', not a hop count",
        env={"GITHUB_EVENT_PATH": "event.json"},
        files={"event.json": json.dumps({"client_payload": {"bggscore_hops": "x"}})},
    ),
    row("dispatch-if-changed", (*DISPATCH, "--if-changed", "no.json"), 2, "cannot read no.json"),
    row(
        "dispatch-if-changed-not-a-result",
        (*DISPATCH, "--if-changed", "r.json"),
        2,
        "is not a bggscore score/embed/run --json result",
        files={"r.json": '{"rows": 5}'},
    ),
    # -- run -------------------------------------------------------------------------------
    row("run-dispatch-alone", "run --dispatch e", 2, "--dispatch and --dispatch-repo go together"),
    row("run-dispatch-repo", "run --dispatch e --dispatch-repo bad", 2, "'bad' is not OWNER/NAME"),
    row(
        "run-dispatch-event",
        ("run", "--dispatch", "a\tb", "--dispatch-repo", REPO),
        2,
        "EVENT_TYPE must not contain control characters",
    ),
    row(
        "run-dispatch-no-token",
        RUN_DISPATCH,
        1,
        "no GitHub token",
        env={"BGGSCORE_GITHUB_TOKEN": None},
    ),
    row(
        "run-dispatch-api-plain-http",
        RUN_DISPATCH,
        2,
        "refusing to send the token over plain http",
        env={"BGGSCORE_GITHUB_API_URL": "http://api.github.invalid"},
    ),
    row(
        "run-dispatch-event-file",
        RUN_DISPATCH,
        2,
        "cannot read the triggering event",
        env={"GITHUB_EVENT_PATH": "missing.json"},
    ),
    row("run-stage", "run --stage complexity,bogus", 2, "unknown stage(s) bogus"),
    row("run-max-games", "run --max-games 0", 2, "--max-games must be positive"),
    row(
        "run-max-games-past-int64",
        "run --max-games 99999999999999999999",
        2,
        "--max-games must be at most 9223372036854775807",
    ),
    row(
        "run-full-and-max-games",
        "run --full --max-games 10",
        2,
        "--max-games caps the games change detection finds; --full rescores everything",
    ),
    row("run-stage-empty", ("run", "--stage", ""), 2, "--stage '' names an empty stage"),
    row(
        "run-stage-stray-comma",
        ("run", "--stage", "complexity", "--stage", "main,"),
        2,
        "--stage 'complexity', 'main,' names an empty stage",
    ),
    row(
        "run-all-years-and-range",
        "run --all-years --start-year 2020 --end-year 2030",
        2,
        "--all-years takes every year",
    ),
    row("run-game-id", "run --game-id 0", 2, "--game-id 0 is not a game id"),
    row("run-years", "run --start-year 2030 --end-year 2029", 2, "--start-year 2030 must be"),
    row(
        "run-min-users-rated-and-ids",
        "run --game-id 3 --min-users-rated 25",
        2,
        "--game-id selects games whatever their ratings: drop --min-users-rated",
    ),
    # -- compare ---------------------------------------------------------------------------
    row(
        "compare-unknown-job",
        "compare 20991231T000000Z-deadbeef 20991231T000000Z-deadbeef",
        2,
        "job '20991231T000000Z-deadbeef' has no rows in raw.ml_predictions_landing",
    ),
    row("compare-missing-file", "compare missing.parquet other.parquet", 2, "not found"),
    row(
        "compare-not-parquet",
        "compare notes.parquet notes.parquet",
        2,
        "notes.parquet is not a readable parquet file",
        files={"notes.parquet": "game_id,predicted_rating\n1,6.5\n"},
    ),
    row(
        "compare-no-game-id",
        "compare ids.parquet ids.parquet",
        2,
        "ids.parquet has no game_id column",
        files={"ids.parquet": _parquet(pl.DataFrame({"predicted_rating": [6.5]}))},
    ),
    row(
        "compare-tolerance",
        "compare a.parquet a.parquet --tolerance -1",
        2,
        "--tolerance -1.0 must be 0 or more",
    ),
    row("compare-fresh-job", "compare some-job some-job", 1, "no warehouse at", fresh=True),
    # -- report ----------------------------------------------------------------------------
    row("report-unknown-job", "report --job nope", 2, "job 'nope' is not in raw.bggscore_runs"),
    row("report-job-and-since", "report --job a --since 2026-01-01", 2, "not both"),
    row("report-since-text", "report --since yesterday", 2, "--since 'yesterday' is not a date"),
    row("report-since-future", "report --since 2999-01-01", 2, "is in the future"),
    row("report-not-html", "report --output page.txt", 2, "must end in .html"),
    row("report-no-folder", "report --output nowhere/page.html", 2, "folder nowhere does not"),
    row("report-a-folder", "report --output .", 2, "is a folder"),
    row("report-unknown-game", "report --game-id 999999999", 2, "not in the warehouse"),
    row("report-fresh", "report", 1, "no warehouse at", fresh=True),
    # -- demo ------------------------------------------------------------------------------
    row("demo-bigquery", "demo --games 10", 2, "runs only on the embedded duckdb", env=BIGQUERY),
    row("refresh-bigquery", "demo refresh", 2, "runs only on the embedded duckdb", env=BIGQUERY),
    row("refresh-fraction-2", "demo refresh --fraction 2", 2, "--fraction must be in (0, 1]"),
    row("refresh-fraction-0", "demo refresh --fraction 0", 2, "got 0.0"),
    row("refresh-fraction-nan", "demo refresh --fraction nan", 2, "got nan"),
    row("refresh-fresh", "demo refresh", 1, "no warehouse at", fresh=True),
    # -- warehouse check -------------------------------------------------------------------
    row("check-fresh", "warehouse check", 1, "no warehouse at", fresh=True),
    # -- warehouse migrate -----------------------------------------------------------------
    row("migrate-fresh", "warehouse migrate", 1, "no warehouse at", fresh=True),
    row("migrate-fresh-dry-run", "warehouse migrate --dry-run", 1, "no warehouse at", fresh=True),
]

# Click rejects these while parsing, before any bggscore code runs; its error is one line
# too, saying where the usage is.
CLICK_ROWS = [
    pytest.param(("score", "--batch-size", "0"), "'--batch-size'", id="score-batch-size"),
    pytest.param(("score", "--intervals", "-1"), "'--intervals'", id="score-intervals"),
    pytest.param(
        ("score", "--intervals", "99999999999"), "less than or equal to 10000", id="intervals-huge"
    ),
    pytest.param(
        ("score", "--batch-size", "99999999999999999999"),
        "less than or equal to 9223372036854775807",
        id="score-batch-size-huge",
    ),
    pytest.param(
        ("embed", "--batch-size", "99999999999999999999"), "'--batch-size'", id="embed-batch-huge"
    ),
    pytest.param(("score", "--home"), "option '--home' requires an argument", id="home-no-value"),
    pytest.param(("score", "--game-id", "abc"), "'--game-id'", id="score-game-id-text"),
    pytest.param(("detect-changes", "--start-year", "x"), "'--start-year'", id="detect-year"),
    pytest.param(("embed", "--batch-size", "0"), "'--batch-size'", id="embed-batch-size"),
    pytest.param(("similar", "--top", "0"), "'--top'", id="similar-top"),
    pytest.param(("similar", "abc"), "'game_id'", id="similar-id-text"),
    pytest.param(("compare", "a", "b", "--top", "-1"), "'--top'", id="compare-top"),
    pytest.param(("compare", "a"), "'B'", id="compare-one-side"),
    pytest.param(("models", "train", "--all", "--max-games", "0"), "'--max-games'", id="train"),
    pytest.param(("models", "train", "--all", "--dim", "1"), "'--dim'", id="train-dim"),
    pytest.param(("models", "register", "x.joblib"), "'--type'", id="register-no-type"),
    pytest.param((*DISPATCH, "--max-hops", "-1"), "'--max-hops'", id="dispatch-max-hops"),
    pytest.param((*DISPATCH, "--max-wait", "-1"), "'--max-wait'", id="dispatch-max-wait"),
    pytest.param(("dispatch", "e"), "'--repo'", id="dispatch-no-repo"),
    pytest.param(("run", "--bogus"), "--bogus", id="run-unknown-flag"),
    pytest.param(("demo", "--games", "0"), "'--games'", id="demo-games"),
    pytest.param(
        ("demo", "--games", "99999999999999"),
        "'--games': Input should be less than or equal to 5000000",
        id="demo-games-huge",
    ),
    pytest.param(("demo", "refresh", "--fraction", "x"), "'--fraction'", id="refresh-fraction"),
    pytest.param(("demo", "--seed", "-1"), "'--seed': Input should be greater", id="demo-seed"),
    pytest.param(("demo", "refresh", "--seed", "-1"), "'--seed'", id="refresh-seed"),
]


# -- state snapshots ---------------------------------------------------------------------------
@dataclass
class Where:
    home: Path
    work: Path
    outputs: tuple[Path, ...]

    def snapshot(self) -> dict[str, Any]:
        return {
            "tables": table_counts(self.home),
            "registry": files(self.home / "registry"),
            "work": files(self.work),
            "outputs": {p.name: p.read_text() if p.exists() else None for p in self.outputs},
        }


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    """One fake GitHub for the whole module (the shared fixture is per test)."""
    fake, stop = start_fake_github()
    yield fake
    stop()


@pytest.fixture(scope="module")
def shared_demo_home(demo_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the demo home for every row of this module (rows must not write)."""
    path = tmp_path_factory.mktemp("bad-inputs") / "home"
    shutil.copytree(demo_run.home, path)
    return path


@pytest.fixture
def setting(home: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch):
    """Point the test at a home, with a fake token, the fake API and GitHub output files."""
    outputs = (home.parent / "github_output", home.parent / "step_summary.md")

    def apply(path: Path, row_env: dict[str, str | None]) -> Where:
        monkeypatch.setenv("BGGSCORE_HOME", str(path))
        monkeypatch.setenv("BGGSCORE_GITHUB_TOKEN", FAKE_TOKEN)
        monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", github.url)
        monkeypatch.setenv("GITHUB_OUTPUT", str(outputs[0]))
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(outputs[1]))
        for key, value in row_env.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        return Where(path, Path.cwd(), outputs)

    return apply


# -- the matrix --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ROWS)
def test_bad_input(
    case: Row, cli, home: Path, request: pytest.FixtureRequest, github: FakeGitHub, setting
) -> None:
    path = home if case.fresh else request.getfixturevalue("shared_demo_home")
    where = setting(path, case.env)
    for name, content in case.files.items():
        target = where.work / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    github.requests.clear()
    before = where.snapshot()

    result = cli(*case.args)

    assert result.exit_code == case.code, (result.exit_code, result.stderr)
    assert_one_line_error(result.stderr, case.needle)
    assert "Traceback" not in result.stdout + result.stderr
    assert where.snapshot() == before, "a bad input changed the state"
    assert github.requests == [], "a bad input reached the GitHub API"


def command_of(args: tuple[str, ...]) -> tuple[str, ...]:
    """The command a row runs: ``("score",)``, ``("models", "show")``, ``("demo", "refresh")``."""
    rest = list(args)
    while rest[0] in ("--config", "--engine", "--home"):
        rest = rest[2:]
    if rest[0] in ("warehouse", "models", "config") or rest[1:2] == ["refresh"]:
        return (rest[0], rest[1])
    return (rest[0],)


def test_the_matrix_covers_every_command() -> None:
    from typer.main import get_command

    from bggscore.cli.main import app

    commands: set[tuple[str, ...]] = set()
    for name, command in get_command(app).commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):  # a group (Typer may vendor its own Click)
            commands |= {(name, sub) for sub in command.commands}
            if command.invoke_without_command and not command.no_args_is_help:
                commands.add((name,))
        else:
            commands.add((name,))
    covered = {command_of(param.values[0].args) for param in ROWS}
    assert commands - covered == set(), "commands without a bad-input row"
    assert covered - commands == set(), "rows naming no command"
    assert len(ROWS) >= 30


@pytest.mark.parametrize(("args", "needle"), CLICK_ROWS)
def test_flags_click_rejects(
    args: tuple[str, ...], needle: str, cli, home: Path, github: FakeGitHub, setting, request
) -> None:
    where = setting(request.getfixturevalue("shared_demo_home"), {})
    github.requests.clear()
    before = where.snapshot()

    result = cli(*args)

    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    (error,) = result.stderr.splitlines()
    assert error.startswith("error: ") and needle in error, result.stderr
    assert error.endswith(" --help'."), error
    assert where.snapshot() == before
    assert github.requests == []

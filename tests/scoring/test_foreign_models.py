"""Models that are not bggscore's own (production's pandas pipelines) scored through the
chain: production's frame, chain columns and point-path bounds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.support.production import (
    CHAIN_COLUMNS,
    production_frame,
    production_predict_games,
    signature,
)

from bggscore.errors import InputError, RegistryError, UsageError
from bggscore.modelset import GeekFormula, ModelSet
from bggscore.registry import LoadedModel
from bggscore.registry.registry import Registration
from bggscore.scoring.chain import RunInfo, score_complexity, score_main
from bggscore.scoring.frames import PandasFrames, chain_reads, is_own
from bggscore.scoring.upstream import TEXT_COLUMN, expand_embedding

RUN = RunInfo("job-test", datetime(2026, 1, 2, tzinfo=timezone.utc), "test", "fp", 2024)


def loaded(model_type: str, pipeline: Any, features: pl.DataFrame, dim: int) -> LoadedModel:
    registration = Registration(
        name=f"{model_type}-v2026",
        version=1,
        model_type=model_type,
        created_at=datetime(2026, 8, 4, tzinfo=timezone.utc),
        created_by="test",
        sha256="0" * 64,
        size_bytes=1,
        signature=signature(features.columns, dim, model_type),
        experiment=f"{model_type}-experiment",
    )
    return LoadedModel(registration, pipeline)


@pytest.fixture(scope="module")
def scored(production_models: Any) -> dict[str, Any]:
    features, embeddings, models = production_models[:3]
    dim = embeddings["embedding"].list.len().max()
    frame = features.join(
        embeddings.rename({"embedding": TEXT_COLUMN}), on="game_id", how="inner"
    ).filter(pl.col("year_published").is_not_null())
    frame = expand_embedding(frame).drop(TEXT_COLUMN).sort("game_id")
    modelset = ModelSet({t: loaded(t, m, features, dim) for t, m in models.items()}, None)
    complexity = score_complexity(frame, modelset, RUN)
    landing = score_main(frame, complexity["predicted_complexity_raw"].to_numpy(), modelset, RUN)
    expected = production_predict_games(production_frame(features, embeddings), models)
    return {
        "frame": frame,
        "models": modelset,
        "complexity": complexity,
        "landing": landing,
        "expected": pl.from_pandas(expected).sort("game_id"),
        "features": features,
        "dim": dim,
    }


def test_production_pipelines_are_not_own(production_models: Any) -> None:
    assert not any(is_own(m) for m in production_models.models.values())


def test_landing_equals_production_point_path(scored: dict[str, Any]) -> None:
    landing, expected = scored["landing"].sort("game_id"), scored["expected"]
    assert landing["game_id"].to_list() == expected["game_id"].to_list()
    for column in (
        "predicted_hurdle_prob",
        "predicted_complexity",
        "predicted_rating",
        "predicted_users_rated",
        "predicted_geek_rating",
    ):
        got, want = landing[column].to_numpy(), expected[column].to_numpy()
        assert np.max(np.abs(got - want)) <= 1e-9, column
    assert landing["complexity_experiment"].unique().to_list() == ["complexity-experiment"]


def test_complexity_table_is_clipped_and_keeps_the_raw_value(scored: dict[str, Any]) -> None:
    rows = scored["complexity"]
    raw = rows["predicted_complexity_raw"].to_numpy()
    assert np.array_equal(rows["predicted_complexity"].to_numpy(), np.clip(raw, 1, 5))
    # the fixture's ARD complexity strays past the bounds on some games: the landing row
    # keeps the raw value (production's /predict_games), the complexity table the clipped one
    assert np.allclose(
        scored["landing"].sort("game_id")["predicted_complexity"].to_numpy(),
        scored["expected"]["predicted_complexity"].to_numpy(),
        atol=1e-12,
    )


def test_clip_outputs_bounds_landing_values(scored: dict[str, Any]) -> None:
    clipped_run = RunInfo(RUN.job_id, RUN.score_ts, "test", "fp", 2024, clip_outputs=True)
    complexity = scored["complexity"]["predicted_complexity_raw"].to_numpy() * 3  # out of range
    landing = score_main(scored["frame"], complexity, scored["models"], clipped_run)
    assert landing["predicted_complexity"].is_between(1, 5).all()
    assert landing["predicted_rating"].is_between(1, 10).all()
    assert landing["predicted_geek_rating"].is_between(1, 10).all()


def test_formula_geek_rating_with_imported_rating(scored: dict[str, Any]) -> None:
    models = scored["models"]
    formula = ModelSet(
        {t: m for t, m in models.models.items() if t != "geek_rating"}, GeekFormula(5.5, 2000.0)
    )
    complexity = scored["complexity"]["predicted_complexity_raw"].to_numpy()
    landing = score_main(scored["frame"], complexity, formula, RUN)
    r, v = landing["predicted_rating"].to_numpy(), landing["predicted_users_rated"].to_numpy()
    expected = np.clip((r * v + 5.5 * 2000) / (v + 2000), 1, 10)
    assert np.allclose(landing["predicted_geek_rating"].to_numpy(), expected)
    assert landing["geek_rating_model_name"].unique().to_list() == ["bayesian"]


def test_frame_is_the_signature_in_order(scored: dict[str, Any]) -> None:
    model = scored["models"].models["geek_rating"]
    chain = {c: np.zeros(len(scored["frame"])) for c in CHAIN_COLUMNS}
    X = PandasFrames(scored["frame"]).for_model(model, chain)
    assert list(X.columns) == [c.name for c in model.registration.signature]
    assert "feature_hash" not in X.columns
    assert chain_reads(model) == list(CHAIN_COLUMNS)
    # the list columns keep the dtype polars' to_pandas gives them (object arrays)
    assert X["categories"].dtype == object


def test_a_missing_chain_input_is_named(scored: dict[str, Any]) -> None:
    model = scored["models"].models["geek_rating"]
    with pytest.raises(InputError, match="predicted_rating"):
        PandasFrames(scored["frame"]).for_model(model, {"predicted_complexity": np.zeros(1)})


def test_a_pipeline_failing_on_the_rows_is_one_error(scored: dict[str, Any]) -> None:
    frame = scored["frame"].drop("emb_0")
    with pytest.raises(InputError, match="emb_0"):
        score_complexity(frame, scored["models"], RUN)
    broken = LoadedModel(scored["models"].models["complexity"].registration, _Raises())
    with pytest.raises(RegistryError, match=r"complexity-v2026:1 failed to predict \(ValueError"):
        score_complexity(scored["frame"], ModelSet({"complexity": broken}, None), RUN)


class _Raises:
    def predict(self, X: Any) -> Any:
        raise ValueError("Feature names seen at fit time, yet now missing:\n- emb_0")


def _landing(frame: pl.DataFrame, models: ModelSet, draws: int) -> pl.DataFrame:
    from bggscore.scoring.batch import score_batch

    frame = frame.with_columns(pl.lit(0, pl.Int64).alias("feature_hash"))  # as read for scoring
    done = score_batch(None, frame, models, RUN, ["complexity", "main"], intervals=draws)
    assert done.landing is not None
    return done.landing.sort("game_id")


def test_intervals_for_imported_pipelines_are_seeded_per_game(scored: dict[str, Any]) -> None:
    frame, models = scored["frame"], scored["models"]
    landing = _landing(frame, models, 200)
    for outcome in ("complexity", "rating", "users_rated", "geek_rating"):
        lower, upper = landing[f"{outcome}_lower_90"], landing[f"{outcome}_upper_90"]
        assert lower.null_count() == 0 and (lower <= upper).all(), outcome
    median = landing["predicted_rating"]
    assert ((landing["rating_lower_90"] <= median) & (median <= landing["rating_upper_90"])).all()
    # the same game in a smaller batch draws the same numbers
    part = _landing(frame.tail(7), models, 200)
    whole = landing.filter(pl.col("game_id").is_in(part["game_id"].to_list()))
    for column in ("predicted_complexity", "rating_lower_90", "geek_rating_upper_90"):
        assert np.allclose(part[column].to_numpy(), whole[column].to_numpy(), atol=1e-9)


def test_intervals_refuse_mixed_model_kinds(
    scored: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bggscore.scoring.frames as frames

    rating = scored["models"].models["rating"].model
    monkeypatch.setattr(frames, "is_own", lambda model: model is rating)
    with pytest.raises(UsageError, match=r"cannot mix bggscore's own models \(rating\)"):
        _landing(scored["frame"], scored["models"], 50)


def test_a_pipeline_predicting_nan_writes_nothing(scored: dict[str, Any]) -> None:
    broken = LoadedModel(scored["models"].models["complexity"].registration, _NaN())
    with pytest.raises(RegistryError, match=r"predicted 1 non-finite value\(s\) \(games \d+\)"):
        score_complexity(scored["frame"], ModelSet({"complexity": broken}, None), RUN)


class _NaN:
    def predict(self, X: Any) -> Any:
        values = np.full(len(X), 2.5)
        values[0] = np.nan
        return values

"""FeatureBuilder: raw games_features columns -> the sparse matrix every model reads."""

from __future__ import annotations

import io
import math
from typing import Any

import joblib
import numpy as np
import polars as pl
import pytest

from bggscore.features import PLAYER_COUNTS, BaseCache, FeatureBuilder

LIST_COLUMNS = ("categories", "mechanics", "designers", "artists", "publishers", "families")
SCHEMA: dict[str, Any] = {
    "year_published": pl.Float64,
    "min_age": pl.Int64,
    "min_playtime": pl.Int64,
    "max_playtime": pl.Int64,
    "min_players": pl.Int64,
    "max_players": pl.Int64,
    "description": pl.String,
    **{column: pl.List(pl.String) for column in LIST_COLUMNS},
}
DEFAULTS: dict[str, Any] = {
    "year_published": 2015.0,
    "min_age": 10,
    "min_playtime": 30,
    "max_playtime": 60,
    "min_players": 2,
    "max_players": 4,
    "description": "A game.",
    **{column: [] for column in LIST_COLUMNS},
}


def make_feature_games(*rows: dict[str, Any], **columns: list[Any]) -> pl.DataFrame:
    """Feature input rows: each row overrides DEFAULTS; or whole columns as keyword lists."""
    if columns:
        n = len(next(iter(columns.values())))
        rows = tuple({name: values[i] for name, values in columns.items()} for i in range(n))
    return pl.DataFrame([{**DEFAULTS, **row} for row in rows], schema=SCHEMA)


def dense(builder: FeatureBuilder, frame: pl.DataFrame) -> np.ndarray:
    return builder.transform(frame).toarray()


def column(builder: FeatureBuilder, frame: pl.DataFrame, name: str) -> np.ndarray:
    names = list(builder.get_feature_names_out())
    return dense(builder, frame)[:, names.index(name)]


def vocabulary(builder: FeatureBuilder, list_column: str) -> list[str]:
    prefix = f"{list_column}::"
    return [n[len(prefix) :] for n in builder.get_feature_names_out() if n.startswith(prefix)]


@pytest.fixture(scope="module")
def demo_games() -> pl.DataFrame:
    from bggscore.demo.catalogue import generate_catalogue

    return generate_catalogue(400, 3)


# -- numeric features -------------------------------------------------------------------------


def test_zeros_are_missing_and_imputed_from_known_values() -> None:
    known = [
        {"min_age": 8, "min_playtime": 20, "max_playtime": 40, "min_players": 1, "max_players": 2},
        {
            "min_age": 12,
            "min_playtime": 60,
            "max_playtime": 120,
            "min_players": 3,
            "max_players": 6,
        },
    ]
    zeros = dict.fromkeys(("min_age", "min_playtime", "max_playtime", "min_players"), 0)
    zeros["max_players"] = 0
    nulls = dict.fromkeys(zeros, None)
    builder = FeatureBuilder().fit(make_feature_games(*known, zeros))
    frame = make_feature_games(zeros, nulls)
    # a zero is exactly "unknown": same row as nulls
    np.testing.assert_array_equal(dense(builder, frame)[0], dense(builder, frame)[1])
    # imputed with the median of the KNOWN values (zeros do not drag it down)
    assert column(builder, frame, "min_age").tolist() == [10.0, 10.0]
    assert column(builder, frame, "min_players").tolist() == [2.0, 2.0]
    for flag in ("min_age_missing", "playtime_missing", "players_missing"):
        assert column(builder, frame, flag).tolist() == [1.0, 1.0], flag
    assert column(builder, make_feature_games(*known), "min_age_missing").tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (2, 4, {2, 3, 4}),
        (1, 1, {1}),
        (3, 12, set(range(3, 11))),  # counts above 10 fold into the last dummy
        (0, 0, set()),  # unknown players: no dummy is set
        (None, 5, set()),
    ],
)
def test_player_count_dummies_cover_min_to_max(
    low: int | None, high: int | None, expected: set[int]
) -> None:
    builder = FeatureBuilder().fit(make_feature_games({}, {"min_players": 1, "max_players": 8}))
    frame = make_feature_games({"min_players": low, "max_players": high})
    on = {k for k in PLAYER_COUNTS if column(builder, frame, f"players_{k}")[0] == 1.0}
    assert on == expected


def test_time_per_player_is_max_playtime_over_max_players() -> None:
    frame = make_feature_games(
        {"max_playtime": 120, "max_players": 4},
        {"max_playtime": 45, "max_players": 1},
    )
    builder = FeatureBuilder().fit(frame)
    values = column(builder, frame, "log_time_per_player")
    np.testing.assert_allclose(values, [math.log1p(30.0), math.log1p(45.0)])


def test_time_per_player_with_unknown_players_is_imputed() -> None:
    fit = make_feature_games({"max_playtime": 60, "max_players": 2})
    builder = FeatureBuilder().fit(fit)
    value = column(
        builder, make_feature_games({"max_playtime": 90, "max_players": 0}), "log_time_per_player"
    )
    assert value.tolist() == [pytest.approx(math.log1p(30.0))]


def test_log_transforms_of_skewed_numerics() -> None:
    frame = make_feature_games({"min_playtime": 15, "max_playtime": 240, "description": "abcd"})
    builder = FeatureBuilder().fit(frame)
    assert column(builder, frame, "log_min_playtime")[0] == pytest.approx(math.log1p(15))
    assert column(builder, frame, "log_max_playtime")[0] == pytest.approx(math.log1p(240))
    assert column(builder, frame, "log_description_chars")[0] == pytest.approx(math.log1p(4))


def test_year_transforms_increase_with_the_year() -> None:
    years = [1950.0, 1990.0, 2000.0, 2015.0, 2022.0, 2024.0, 2026.0, 2030.0, 2034.0]
    frame = make_feature_games(year_published=years)
    builder = FeatureBuilder().fit(frame)
    for name in ("year_linear", "year_log"):
        values = column(builder, frame, name)
        assert np.isfinite(values).all(), name
        assert (np.diff(values) > 0).all(), (name, values)
    # far-future years stay finite and never turn the direction of time around
    far = column(builder, make_feature_games(year_published=[2034.0, 2100.0, 9999.0]), "year_log")
    assert np.isfinite(far).all() and (np.diff(far) >= 0).all()


def test_unknown_year_is_flagged_and_imputed() -> None:
    fit = make_feature_games(year_published=[2000.0, 2010.0, 2020.0])
    builder = FeatureBuilder().fit(fit)
    frame = make_feature_games(year_published=[None, float("nan"), 2020.0])
    assert column(builder, frame, "year_missing").tolist() == [1.0, 1.0, 0.0]
    assert column(builder, frame, "year_linear").tolist() == pytest.approx([1.0, 1.0, 2.0])


# -- one-hot vocabularies --------------------------------------------------------------------


def test_vocabulary_keeps_the_most_frequent_values_up_to_the_cap() -> None:
    categories = [["A", "B", "C"], ["A", "B"], ["A", "D"], ["C"], ["E"]]
    frame = make_feature_games(categories=categories)
    assert vocabulary(FeatureBuilder().fit(frame), "categories") == ["A", "B", "C", "D", "E"]
    capped = FeatureBuilder(max_categories=3).fit(frame)
    # ties (B and C: 2 each) break by name, so the vocabulary is deterministic
    assert vocabulary(capped, "categories") == ["A", "B", "C"]
    assert vocabulary(FeatureBuilder(max_mechanics=0).fit(frame), "mechanics") == []


def test_people_and_families_need_a_minimum_count() -> None:
    designers = [["Often"]] * 5 + [["Twice"]] * 2 + [["Once"]]
    families = [["Series: Big"]] * 5 + [["Series: Small"]] * 3
    families += [[]] * (len(designers) - len(families))
    frame = make_feature_games(designers=designers, families=families)
    default = FeatureBuilder().fit(frame)
    assert vocabulary(default, "designers") == ["Often"]  # min 5
    assert vocabulary(default, "families") == []  # min 10
    lenient = FeatureBuilder(min_designers=2, min_families=3).fit(frame)
    assert vocabulary(lenient, "designers") == ["Often", "Twice"]
    assert vocabulary(lenient, "families") == ["Series: Big", "Series: Small"]
    assert vocabulary(FeatureBuilder(min_designers=1, max_people=1).fit(frame), "designers") == [
        "Often"
    ]


def test_admin_and_misc_families_are_never_features() -> None:
    families = [["Admin: Better Description Needed!", "Misc: Promo", "Theme: Space"]] * 12
    frame = make_feature_games(families=families)
    builder = FeatureBuilder().fit(frame)
    assert vocabulary(builder, "families") == ["Theme: Space"]
    assert not any(
        n.startswith(("families::Admin", "families::Misc")) for n in builder.feature_names_out_
    )


def test_unseen_values_are_ignored_at_transform() -> None:
    fit = make_feature_games(categories=[["Fantasy"], ["Fantasy", "Economic"]])
    builder = FeatureBuilder().fit(fit)
    frame = make_feature_games(
        {"categories": ["Never Seen"]},
        {"categories": ["Fantasy", "Never Seen"]},
        {"categories": None},
    )
    assert dense(builder, frame).shape == (3, len(builder.get_feature_names_out()))
    assert column(builder, frame, "categories::Fantasy").tolist() == [0.0, 1.0, 0.0]
    assert column(builder, frame, "categories::Economic").tolist() == [0.0, 0.0, 0.0]


def test_a_value_listed_twice_counts_once_per_game() -> None:
    builder = FeatureBuilder().fit(make_feature_games(mechanics=[["Dice"]]))
    frame = make_feature_games(mechanics=[["Dice", "Dice"]])
    assert column(builder, frame, "mechanics::Dice").tolist() == [1.0]


def test_a_missing_input_column_is_named() -> None:
    builder = FeatureBuilder().fit(make_feature_games({}))
    with pytest.raises(KeyError, match="min_age"):
        builder.transform(make_feature_games({}).drop("min_age"))


# -- chain inputs and the shared base ---------------------------------------------------------


def test_chain_inputs_are_appended_after_the_base(demo_games: pl.DataFrame) -> None:
    base = FeatureBuilder().fit(demo_games)
    frame = demo_games.with_columns(
        predicted_complexity=pl.Series(np.linspace(1.0, 5.0, len(demo_games)))
    )
    chained = base.with_chain_inputs(("predicted_complexity",), frame)
    names = list(chained.get_feature_names_out())
    assert names[:-1] == list(base.get_feature_names_out())
    assert names[-1] == "predicted_complexity"
    matrix = chained.transform(frame).toarray()
    np.testing.assert_array_equal(matrix[:, :-1], base.transform(frame).toarray())
    np.testing.assert_array_equal(matrix[:, -1], frame["predicted_complexity"].to_numpy())
    assert chained.input_columns()[-1] == "predicted_complexity"
    # a missing chain value is imputed with the median seen when the chain was attached
    holes = frame.head(2).with_columns(predicted_complexity=pl.Series([None, float("nan")]))
    median = float(np.median(frame["predicted_complexity"].to_numpy()))
    assert chained.transform(holes).toarray()[:, -1].tolist() == [pytest.approx(median)] * 2


def test_with_chain_inputs_shares_the_base_fingerprint(demo_games: pl.DataFrame) -> None:
    base = FeatureBuilder().fit(demo_games)
    frame = demo_games.with_columns(predicted_complexity=pl.lit(2.5))
    chained = base.with_chain_inputs(("predicted_complexity",), frame)
    assert chained.base_fingerprint_ == base.base_fingerprint_
    assert base.chain_inputs == ()  # the original is untouched
    assert len(base.get_feature_names_out()) + 1 == len(chained.get_feature_names_out())
    other = FeatureBuilder().fit(demo_games.head(200))
    assert other.base_fingerprint_ != base.base_fingerprint_
    refit = FeatureBuilder().fit(demo_games)
    assert refit.base_fingerprint_ == base.base_fingerprint_  # deterministic


def test_with_chain_inputs_names_a_missing_chain_column(demo_games: pl.DataFrame) -> None:
    base = FeatureBuilder().fit(demo_games)
    with pytest.raises(KeyError, match="predicted_rating"):
        base.with_chain_inputs(("predicted_rating",), demo_games)


def test_base_cache_builds_the_base_once_for_models_sharing_it(
    demo_games: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = demo_games.with_columns(predicted_complexity=pl.lit(3.0))
    base = FeatureBuilder().fit(demo_games)
    plain = base.with_chain_inputs((), frame)
    chained = base.with_chain_inputs(("predicted_complexity",), frame)
    other = FeatureBuilder().fit(demo_games.head(300))
    expected = [b.transform(frame).toarray() for b in (plain, chained, other)]

    calls: list[str] = []
    original = FeatureBuilder.base_block

    def counting(self: FeatureBuilder, batch: pl.DataFrame) -> Any:
        calls.append(self.base_fingerprint_)
        return original(self, batch)

    monkeypatch.setattr(FeatureBuilder, "base_block", counting)
    cache = BaseCache()
    got = [cache.features(b, frame).toarray() for b in (plain, chained)]
    assert calls == [base.base_fingerprint_]  # once for both models
    got.append(cache.features(other, frame).toarray())
    assert calls == [base.base_fingerprint_, other.base_fingerprint_]
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_joblib_round_trip_gives_identical_output(demo_games: pl.DataFrame) -> None:
    frame = demo_games.with_columns(predicted_complexity=pl.lit(2.0))
    builder = FeatureBuilder().fit(demo_games).with_chain_inputs(("predicted_complexity",), frame)
    buffer = io.BytesIO()
    joblib.dump(builder, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert loaded.base_fingerprint_ == builder.base_fingerprint_
    assert list(loaded.get_feature_names_out()) == list(builder.get_feature_names_out())
    assert (loaded.transform(frame) != builder.transform(frame)).nnz == 0


def test_transform_is_sparse_and_finite_on_real_looking_games(demo_games: pl.DataFrame) -> None:
    builder = FeatureBuilder().fit(demo_games)
    matrix = builder.transform(demo_games)
    assert matrix.format == "csr"
    assert matrix.shape == (len(demo_games), len(builder.get_feature_names_out()))
    assert np.isfinite(matrix.data).all()
    assert len(vocabulary(builder, "categories")) > 0 and len(vocabulary(builder, "mechanics")) > 0

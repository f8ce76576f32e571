"""Tests of the synthetic catalogue: shape of the warehouse table, realism, signal, refresh."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bggscore.demo.catalogue import (
    DEFAULT_NOW,
    DEFAULT_REFRESH_NOW,
    GAMES_FEATURES_SCHEMA,
    LIST_COLUMNS,
    generate_catalogue,
    refresh_catalogue,
)
from bggscore.errors import InputError

SAMPLE = Path(__file__).parents[3] / "shared/data/sample_games.parquet"
# The columns of staging.game_features_hash: a change here is a "feature change".
FEATURE_COLUMNS = (
    "year_published", "categories", "mechanics", "designers", "artists", "publishers", "families",
    "min_age", "min_playtime", "max_playtime", "min_players", "max_players", "description",
)  # fmt: skip
STATS_COLUMNS = ("users_rated", "average_rating", "num_weights", "average_weight")


def make_catalogue(n: int = 3000, seed: int = 0) -> pl.DataFrame:
    return generate_catalogue(n, seed=seed)


def make_refresh(
    n: int = 2000, fraction: float = 0.1, seed: int = 7
) -> tuple[pl.DataFrame, pl.DataFrame]:
    before = make_catalogue(n, seed=3)
    return before, refresh_catalogue(before, fraction, seed=seed)


def make_comparison(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Old games side by side with their refreshed row: ``<col>`` and ``<col>_new``."""
    return before.join(after, on="game_id", how="inner", suffix="_new")


def differs(columns: tuple[str, ...], *, sort_lists: bool) -> pl.Expr:
    """True where any of ``columns`` differs from ``<col>_new`` (lists optionally sorted)."""
    checks = []
    for column in columns:
        old, new = pl.col(column), pl.col(f"{column}_new")
        if sort_lists and column in LIST_COLUMNS:
            old, new = old.list.sort(), new.list.sort()
        checks.append(~old.eq_missing(new))
    return pl.any_horizontal(checks)


# --- shape ------------------------------------------------------------------------------------


def test_schema_matches_the_real_sample() -> None:
    if not SAMPLE.exists():
        pytest.skip(f"real sample not found at {SAMPLE}")
    sample = pl.read_parquet(SAMPLE)
    assert make_catalogue(200).schema == sample.schema
    assert dict(sample.schema) == GAMES_FEATURES_SCHEMA


def test_schema_is_the_published_constant_in_order() -> None:
    frame = make_catalogue(200)
    assert list(frame.columns) == list(GAMES_FEATURES_SCHEMA)
    assert dict(frame.schema) == GAMES_FEATURES_SCHEMA
    assert len(GAMES_FEATURES_SCHEMA) == 28


def test_zero_games_is_an_empty_frame_with_the_schema() -> None:
    frame = generate_catalogue(0)
    assert frame.height == 0
    assert dict(frame.schema) == GAMES_FEATURES_SCHEMA


def test_negative_count_is_refused() -> None:
    with pytest.raises(InputError):
        generate_catalogue(-1)


def test_same_arguments_give_the_same_frame() -> None:
    assert make_catalogue(1500, seed=4).equals(make_catalogue(1500, seed=4))
    assert not make_catalogue(1500, seed=4).equals(make_catalogue(1500, seed=5))


def test_ids_are_unique_sorted_and_spread_like_bgg() -> None:
    ids = make_catalogue()["game_id"]
    assert ids.n_unique() == ids.len()
    assert ids.is_sorted()
    assert ids.min() >= 1
    assert 400_000 < ids.max() <= 500_000


def test_large_catalogues_extend_the_id_range(monkeypatch: pytest.MonkeyPatch) -> None:
    from bggscore.demo import catalogue

    monkeypatch.setattr(catalogue, "ID_SPAN", 1000)  # as if 1000 were BGG's id range
    ids = generate_catalogue(2000)["game_id"]
    assert ids.n_unique() == 2000
    assert ids.max() > 2000


# --- realism ----------------------------------------------------------------------------------


def test_values_stay_in_range_and_derived_columns_agree() -> None:
    frame = make_catalogue()
    rated = frame.filter(pl.col("users_rated") > 0)
    unrated = frame.filter(pl.col("users_rated") == 0)
    assert rated["average_rating"].min() >= 1 and rated["average_rating"].max() <= 10
    assert (unrated["average_rating"] == 0).all()
    weighted = frame.filter(pl.col("num_weights") > 0)
    assert weighted["average_weight"].min() >= 1 and weighted["average_weight"].max() <= 5
    assert (frame.filter(pl.col("num_weights") == 0)["average_weight"] == 0).all()
    assert (frame["num_weights"] <= frame["users_rated"]).all()
    assert frame["hurdle"].equals((frame["users_rated"] >= 25).cast(pl.Int64), check_names=False)
    expected_log = np.log1p(frame["users_rated"].to_numpy())
    assert np.allclose(frame["log_users_rated"].to_numpy(), expected_log)
    assert frame["geek_rating"].equals(frame["bayes_average"], check_names=False)
    assert frame["complexity"].equals(frame["average_weight"], check_names=False)
    assert frame["rating"].equals(frame["average_rating"], check_names=False)


def test_bayes_average_shrinks_toward_five_and_a_half() -> None:
    frame = make_catalogue()
    few = frame.filter(pl.col("users_rated") < 30)
    assert (few["bayes_average"] == 0).all()
    ranked = frame.filter(pl.col("users_rated") >= 30)
    low = pl.min_horizontal(pl.col("average_rating"), pl.lit(5.5)) - 1e-4
    high = pl.max_horizontal(pl.col("average_rating"), pl.lit(5.5)) + 1e-4
    assert ranked.select(pl.col("bayes_average").is_between(low, high).all()).item()


def test_counts_and_playtimes_look_like_bgg() -> None:
    frame = make_catalogue()
    known = frame.filter(pl.col("min_players") > 0)
    assert (known["min_players"] <= known["max_players"]).all()
    assert (frame["min_playtime"] <= frame["max_playtime"]).all()
    assert frame["min_age"].max() <= 18
    # zeros mean "missing", as in the warehouse, but only for a few games
    for column in ("min_players", "min_playtime", "min_age"):
        assert 0 < (frame[column] == 0).mean() < 0.1
    assert 0.01 < frame["year_published"].null_count() / frame.height < 0.05
    years = frame["year_published"].drop_nulls()
    assert years.median() > 2005
    assert years.min() < 1950
    assert years.max() <= DEFAULT_NOW.year + 1


def test_list_columns_are_never_null_and_sized_like_bgg() -> None:
    frame = make_catalogue()
    for column in LIST_COLUMNS:
        assert frame[column].null_count() == 0
    assert (frame["publishers"].list.len() >= 1).all()
    assert 1.5 < frame["categories"].list.len().mean() < 4
    assert 2 < frame["mechanics"].list.len().mean() < 5
    assert 0 < (frame["mechanics"].list.len() == 0).mean() < 0.15
    assert 0.1 < (frame["artists"].list.len() == 0).mean() < 0.3
    # no repeats inside a list
    for column in LIST_COLUMNS:
        assert frame[column].list.len().equals(frame[column].list.n_unique(), check_names=False)


def test_vocabularies_are_real_bgg_names_and_families_have_prefixes() -> None:
    frame = make_catalogue()
    mechanics = set(frame["mechanics"].explode().drop_nulls())
    assert {"Dice Rolling", "Hand Management", "Worker Placement"} <= mechanics
    assert {"Card Game", "Wargame", "Fantasy"} <= set(frame["categories"].explode().drop_nulls())
    families = frame["families"].explode().drop_nulls()
    prefixes = set(families.str.extract(r"^([^:]+): ").drop_nulls())
    assert {"Players", "Theme", "Mechanism", "Components", "Admin", "Misc", "Game"} <= prefixes
    assert "Crowdfunding: Kickstarter" in set(families)


def test_designers_are_heavy_tailed() -> None:
    counts = make_catalogue()["designers"].explode().drop_nulls().value_counts()["count"]
    assert counts.max() >= 20  # prolific designers
    assert (counts >= 5).sum() >= 20  # enough survive a min-frequency-5 one-hot
    assert (counts == 1).sum() > counts.len() / 3  # and a long tail of one-offs


def test_descriptions_are_text_with_bgg_entities_and_a_few_missing() -> None:
    text = make_catalogue()["description"]
    missing = text.is_null() | (text == "")
    assert 0 < missing.mean() < 0.03
    present = text.filter(~missing)
    assert present.str.len_chars().median() > 200
    assert present.str.contains("&#10;", literal=True).mean() > 0.3
    assert present.str.contains("&quot;", literal=True).any()


def test_images_point_at_the_demo_path() -> None:
    frame = make_catalogue(200).drop_nulls("image")
    expected = "https://cf.geekdo-images.com/demo/" + frame["game_id"].cast(pl.String) + ".jpg"
    assert frame["image"].equals(expected, check_names=False)


def test_last_updated_is_before_the_given_clock() -> None:
    now = datetime(2030, 6, 1, tzinfo=timezone.utc)
    frame = generate_catalogue(300, now=now)
    assert frame["last_updated"].max() <= now
    assert generate_catalogue(300)["last_updated"].max() <= DEFAULT_NOW
    assert frame["year_published"].max() > DEFAULT_NOW.year + 1  # years follow the clock


# --- signal -----------------------------------------------------------------------------------


def test_outcomes_depend_on_features() -> None:
    frame = make_catalogue(4000).filter(pl.col("num_weights") >= 3)
    weight = frame["average_weight"].to_numpy()
    placement = frame["mechanics"].list.contains("Worker Placement").to_numpy()
    party = frame["categories"].list.contains("Party Game").to_numpy()
    playtime = np.log1p(frame["max_playtime"].to_numpy())
    assert weight[placement].mean() - weight[~placement].mean() > 0.3
    assert weight[~party].mean() - weight[party].mean() > 0.3
    assert np.corrcoef(weight, playtime)[0, 1] > 0.3
    assert np.corrcoef(weight, frame["average_rating"].to_numpy())[0, 1] > 0.2


def test_description_words_follow_complexity() -> None:
    frame = make_catalogue(4000).filter(pl.col("num_weights") >= 3)
    heavy = frame["description"].fill_null("").str.contains("strategy game with deep", literal=True)
    weights = frame["average_weight"]
    assert weights.filter(heavy).mean() > weights.filter(~heavy).mean() + 0.8


# --- refresh ----------------------------------------------------------------------------------


def test_refresh_changes_the_expected_games() -> None:
    before, after = make_refresh(n=2000, fraction=0.1)
    both = make_comparison(before, after)
    assert both.height == before.height  # no game disappears
    feature_changed = both.filter(differs(FEATURE_COLUMNS, sort_lists=True))
    stats_changed = both.filter(differs(STATS_COLUMNS, sort_lists=False))
    assert feature_changed.height == 100  # half of round(0.1 * 2000)
    assert stats_changed.height == 100
    assert set(feature_changed["game_id"]).isdisjoint(set(stats_changed["game_id"]))
    assert (stats_changed["users_rated_new"] > stats_changed["users_rated"]).all()
    touched = set(feature_changed["game_id"]) | set(stats_changed["game_id"])
    stamped = both.filter(pl.col("last_updated_new") == DEFAULT_REFRESH_NOW)
    assert set(stamped["game_id"]) == touched


def test_refresh_leaves_other_games_equal_apart_from_array_order() -> None:
    before, after = make_refresh(n=2000, fraction=0.1)
    both = make_comparison(before, after)
    others = both.filter(~differs(FEATURE_COLUMNS + STATS_COLUMNS, sort_lists=True))
    columns = tuple(c for c in GAMES_FEATURES_SCHEMA if c != "game_id")
    assert others.filter(differs(columns, sort_lists=True)).height == 0
    reordered = others.filter(differs(LIST_COLUMNS, sort_lists=False))
    assert reordered.height > 0  # the warehouse does not keep array order


def test_refresh_appends_new_games_above_the_max_id() -> None:
    before, after = make_refresh(n=2000, fraction=0.1)
    new = after.filter(~pl.col("game_id").is_in(before["game_id"].implode()))
    assert new.height == 20  # round(0.1 / 10 * 2000)
    assert new["game_id"].min() > before["game_id"].max()
    assert (new["last_updated"] == DEFAULT_REFRESH_NOW).all()
    assert set(new["year_published"]) <= {2026.0, 2027.0}
    assert after["game_id"].is_sorted() and after["game_id"].n_unique() == after.height


def test_refresh_keeps_schema_and_derived_columns_consistent() -> None:
    _, after = make_refresh(n=1000, fraction=0.3)
    assert dict(after.schema) == GAMES_FEATURES_SCHEMA
    assert after["hurdle"].equals((after["users_rated"] >= 25).cast(pl.Int64), check_names=False)
    assert np.allclose(after["log_users_rated"], np.log1p(after["users_rated"].to_numpy()))
    assert after["geek_rating"].equals(after["bayes_average"], check_names=False)
    assert after["rating"].equals(after["average_rating"], check_names=False)


def test_refresh_is_deterministic_and_adds_at_least_one_game() -> None:
    before = make_catalogue(500, seed=1)
    assert refresh_catalogue(before, 0.2, seed=3).equals(refresh_catalogue(before, 0.2, seed=3))
    assert refresh_catalogue(before, 0.001).height == before.height + 1


def test_refresh_can_set_a_missing_year() -> None:
    before = make_catalogue(3000, seed=2)
    after = refresh_catalogue(before, 1.0, seed=2)
    both = make_comparison(before, after)
    filled = both.filter(
        pl.col("year_published").is_null() & pl.col("year_published_new").is_not_null()
    )
    assert filled.height > 0


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, math.nan])
def test_refresh_refuses_a_bad_fraction(fraction: float) -> None:
    with pytest.raises(InputError, match=r"--fraction must be in \(0, 1\], got"):
        refresh_catalogue(make_catalogue(50), fraction)

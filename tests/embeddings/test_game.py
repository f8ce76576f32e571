"""Game embeddings: features + predicted complexity + description vectors -> SVD."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest

from bggscore.embeddings.game import CHAIN_COLUMN, TEXT_COLUMN, GameEmbedder
from bggscore.embeddings.text import TextEmbedder
from bggscore.errors import InputError

SAMPLE = Path(__file__).resolve().parents[3] / "shared/data/sample_games.parquet"
WELL_KNOWN = ("Scythe", "Codenames: Pictures", "Undaunted: Normandy", "Railways of the World",
              "Skull King", "Century: Spice Road", "San Juan", "Tikal")  # fmt: skip


def make_embedding_frame(games: pl.DataFrame, text: TextEmbedder | None = None) -> pl.DataFrame:
    """Games with ``predicted_complexity`` (= average_weight as a stand-in) and, given a text
    embedder, ``description_embedding`` as ``List(Float64)``."""
    frame = games.with_columns(pl.col("average_weight").alias(CHAIN_COLUMN))
    if text is None:
        return frame
    vectors = pl.Series(TEXT_COLUMN, text.transform(games)).arr.to_list()
    return frame.with_columns(vectors)


@pytest.fixture(scope="module")
def demo_frame() -> pl.DataFrame:
    from bggscore.demo.catalogue import generate_catalogue

    games = generate_catalogue(1500, 0)
    return make_embedding_frame(games, TextEmbedder(dim=20).fit(games))


@pytest.fixture(scope="module")
def fitted(demo_frame: pl.DataFrame) -> GameEmbedder:
    return GameEmbedder(dim=16).fit(demo_frame)


def test_shape_dtype_and_unit_norm(fitted: GameEmbedder, demo_frame: pl.DataFrame) -> None:
    embeddings = fitted.transform(demo_frame)
    assert embeddings.shape == (1500, 16)
    assert embeddings.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0)
    assert fitted.dim_ == 16 and fitted.text_dim_ == 20
    assert fitted.builder_.chain_inputs == (CHAIN_COLUMN,)
    assert fitted.n_features_ == fitted.svd_.components_.shape[1]


def test_text_block_has_a_third_of_the_variance(
    fitted: GameEmbedder, demo_frame: pl.DataFrame
) -> None:
    matrix = fitted._matrix(demo_frame)
    text = matrix[:, -fitted.text_dim_ :].toarray()
    features = matrix[:, : -fitted.text_dim_].toarray()
    share = text.var(axis=0).sum() / (text.var(axis=0).sum() + features.var(axis=0).sum())
    assert share == pytest.approx(1 / 3, rel=1e-6)


def test_fit_is_deterministic(demo_frame: pl.DataFrame) -> None:
    frame = demo_frame.head(600)
    first = GameEmbedder(dim=8, random_state=5).fit(frame)
    second = GameEmbedder(dim=8, random_state=5).fit(frame)
    np.testing.assert_array_equal(first.transform(frame), second.transform(frame))
    np.testing.assert_array_equal(first.coordinates(frame), second.coordinates(frame))


def test_coordinates_shape(fitted: GameEmbedder, demo_frame: pl.DataFrame) -> None:
    coordinates = fitted.coordinates(demo_frame)
    assert coordinates.shape == (1500, 2)
    assert np.isfinite(coordinates).all()


def test_fit_with_a_shared_base(demo_frame: pl.DataFrame) -> None:
    from bggscore.training.train import fit_base

    base = fit_base(demo_frame)
    embedder = GameEmbedder(dim=8).fit(demo_frame, base=base)
    assert embedder.builder_.base_fingerprint_ == base.base_fingerprint_
    assert embedder.builder_.chain_inputs == (CHAIN_COLUMN,)
    assert base.chain_inputs == ()  # the given base is not modified
    assert embedder.transform(demo_frame).shape == (1500, 8)


def test_null_and_empty_description_embeddings_become_zeros(
    fitted: GameEmbedder, demo_frame: pl.DataFrame
) -> None:
    frame = demo_frame.head(10)
    missing = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(None)
        .when(pl.int_range(pl.len()) < 5)
        .then(pl.lit([], dtype=pl.List(pl.Float64)))
        .otherwise(pl.col(TEXT_COLUMN))
        .alias(TEXT_COLUMN)
    )
    zeros = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(pl.lit([0.0] * fitted.text_dim_, dtype=pl.List(pl.Float64)))
        .otherwise(pl.col(TEXT_COLUMN))
        .alias(TEXT_COLUMN)
    )
    embeddings = fitted.transform(missing)
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(embeddings, fitted.transform(zeros))
    np.testing.assert_allclose(embeddings[5:], fitted.transform(frame)[5:])
    all_null = frame.with_columns(pl.lit(None, dtype=pl.List(pl.Float64)).alias(TEXT_COLUMN))
    np.testing.assert_allclose(np.linalg.norm(fitted.transform(all_null), axis=1), 1.0)


def test_fit_with_some_null_description_embeddings(demo_frame: pl.DataFrame) -> None:
    frame = demo_frame.head(400).with_columns(
        pl.when(pl.col("game_id") % 4 == 0).then(None).otherwise(pl.col(TEXT_COLUMN))
        .alias(TEXT_COLUMN)
    )  # fmt: skip
    embedder = GameEmbedder(dim=8).fit(frame)
    assert embedder.text_dim_ == 20
    np.testing.assert_allclose(np.linalg.norm(embedder.transform(frame), axis=1), 1.0)


def test_array_typed_description_embeddings_are_accepted(
    fitted: GameEmbedder, demo_frame: pl.DataFrame
) -> None:
    frame = demo_frame.head(20)
    arrays = frame.with_columns(pl.col(TEXT_COLUMN).list.to_array(fitted.text_dim_))
    np.testing.assert_array_equal(fitted.transform(arrays), fitted.transform(frame))


def test_without_description_embeddings(demo_frame: pl.DataFrame) -> None:
    frame = demo_frame.head(400).drop(TEXT_COLUMN)
    embedder = GameEmbedder(dim=8).fit(frame)
    assert embedder.text_dim_ == 0
    assert embedder.transform(frame).shape == (400, 8)


def test_wrong_length_description_embeddings_raise(
    fitted: GameEmbedder, demo_frame: pl.DataFrame
) -> None:
    frame = demo_frame.head(5).with_columns(pl.col(TEXT_COLUMN).list.head(7))
    with pytest.raises(InputError, match="have 7 values, the game embedder expects 20"):
        fitted.transform(frame)


def test_missing_columns_raise(fitted: GameEmbedder, demo_frame: pl.DataFrame) -> None:
    with pytest.raises(InputError, match=CHAIN_COLUMN):
        GameEmbedder(dim=8).fit(demo_frame.drop(CHAIN_COLUMN))
    with pytest.raises(InputError, match=TEXT_COLUMN):
        fitted.transform(demo_frame.drop(TEXT_COLUMN))


def test_dim_too_large_raises(demo_frame: pl.DataFrame) -> None:
    frame = demo_frame.head(300)
    n_features = GameEmbedder(dim=4).fit(frame).n_features_
    with pytest.raises(InputError, match=rf"--dim {n_features + 1} is larger than the "
                       rf"{n_features} features the games give; use a smaller --dim"):  # fmt: skip
        GameEmbedder(dim=n_features + 1).fit(frame)


def test_dim_larger_than_games_raises(demo_frame: pl.DataFrame) -> None:
    with pytest.raises(InputError, match="larger than the 30 games"):
        GameEmbedder(dim=40).fit(demo_frame.head(30))


def test_joblib_round_trip(fitted: GameEmbedder, demo_frame: pl.DataFrame, tmp_path) -> None:
    path = tmp_path / "game.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.transform(demo_frame), fitted.transform(demo_frame))
    np.testing.assert_array_equal(loaded.coordinates(demo_frame), fitted.coordinates(demo_frame))


# -- the real sample ---------------------------------------------------------------------------
def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(len(a | b), 1)


def test_neighbours_on_the_real_sample_share_mechanics_and_categories() -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE}")
    games = pl.read_parquet(SAMPLE)
    frame = make_embedding_frame(games, TextEmbedder(min_count=2, dim=50).fit(games))
    embeddings = GameEmbedder().fit(frame).transform(frame)
    names = frame["name"].to_list()
    tags = [set(m) | set(c) for m, c in zip(frame["mechanics"], frame["categories"], strict=True)]
    rng = np.random.default_rng(0)
    near, far = [], []
    for name in WELL_KNOWN:
        i = names.index(name)
        similarity = embeddings @ embeddings[i]
        similarity[i] = -np.inf
        neighbours = np.argsort(-similarity)[:5]
        near.append(np.mean([jaccard(tags[i], tags[j]) for j in neighbours]))
        others = rng.choice(np.delete(np.arange(len(names)), i), 50, replace=False)
        far.append(np.mean([jaccard(tags[i], tags[j]) for j in others]))
    assert np.mean(near) > 3 * np.mean(far)
    assert np.mean(near) > 0.2

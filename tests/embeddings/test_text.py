"""Description embeddings: tokens, PPMI + SVD word vectors, SIF document vectors."""

from __future__ import annotations

import joblib
import numpy as np
import polars as pl
import pytest

from bggscore.embeddings.text import MIN_DOCUMENTS, TextEmbedder, tokenize
from bggscore.errors import InputError

WORDS = [f"word{i}" for i in range(60)]


def make_descriptions(n: int, *, words_per_doc: int = 12, seed: int = 0) -> pl.DataFrame:
    """``n`` descriptions of random words from a 60-word vocabulary."""
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(WORDS, words_per_doc)) for _ in range(n)]
    return pl.DataFrame({"description": docs})


@pytest.fixture(scope="module")
def demo_games() -> pl.DataFrame:
    from bggscore.demo.catalogue import generate_catalogue

    return generate_catalogue(2000, 0)


@pytest.fixture(scope="module")
def fitted(demo_games: pl.DataFrame) -> TextEmbedder:
    return TextEmbedder(dim=50).fit(demo_games)


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


# -- tokenize ---------------------------------------------------------------------------------
def test_tokenize_decodes_entities_and_strips_tags() -> None:
    text = pl.Series(
        "description",
        [
            "It&rsquo;s &quot;Caf&eacute;&quot;&#10;<b>Bold</b> Rock &amp; Roll"
            "<br/>end &#x27;q&#039;"
        ],
    )
    assert tokenize(text).to_list() == [["it's", "café", "bold", "rock", "roll", "end", "q"]]


def test_tokenize_decodes_double_escaped_html() -> None:
    text = pl.Series(["&amp;quot;Hi&amp;quot; &amp;lt;i&amp;gt;there&amp;lt;/i&amp;gt;"])
    assert tokenize(text).to_list() == [["hi", "there"]]


def test_tokenize_keeps_words_digits_and_inner_apostrophes() -> None:
    text = pl.Series(["2-4 players' DON'T stop: 'Quoted' x_y 1944"])
    assert tokenize(text).to_list() == [
        ["2", "4", "players", "don't", "stop", "quoted", "x", "y", "1944"]
    ]


def test_tokenize_none_empty_and_markup_only_give_empty_lists() -> None:
    tokens = tokenize(pl.Series("description", [None, "", "<p></p>", "&#10;&nbsp;", "a"]))
    assert tokens.dtype == pl.List(pl.String)
    assert tokens.to_list() == [[], [], [], [], ["a"]]
    assert tokens.name == "description"


# -- fit / transform ---------------------------------------------------------------------------
def test_fitted_attributes_have_consistent_shapes(fitted: TextEmbedder) -> None:
    n_words = len(fitted.vocabulary_)
    assert fitted.dim_ == 50
    assert fitted.word_vectors_.shape == (n_words, 50)
    assert fitted.word_probability_.shape == (n_words,)
    assert np.all(np.diff(fitted.word_probability_) <= 0)  # most frequent first
    assert np.isclose(np.linalg.norm(fitted.principal_component_), 1.0)
    assert fitted.n_documents_ == 2000


def test_transform_shape_dtype_and_no_nan(fitted: TextEmbedder, demo_games: pl.DataFrame) -> None:
    vectors = fitted.transform(demo_games)
    assert vectors.shape == (2000, 50)
    assert vectors.dtype == np.float64
    assert np.isfinite(vectors).all()


def test_fit_is_deterministic(demo_games: pl.DataFrame) -> None:
    games = demo_games.head(500)
    first = TextEmbedder(dim=20, random_state=3).fit(games).transform(games)
    second = TextEmbedder(dim=20, random_state=3).fit(games).transform(games)
    np.testing.assert_array_equal(first, second)


def test_principal_component_is_removed(fitted: TextEmbedder, demo_games: pl.DataFrame) -> None:
    vectors = fitted.transform(demo_games)
    assert np.abs(vectors @ fitted.principal_component_).max() < 1e-10


def test_empty_and_html_only_descriptions_get_zero_vectors_and_are_counted(
    fitted: TextEmbedder, demo_games: pl.DataFrame
) -> None:
    described = demo_games["description"].drop_nulls()
    real = described.filter(described.str.len_chars() > 50)[:3].to_list()
    frame = pl.DataFrame(
        {"description": [None, "", "<p><br/></p>", "&#10;&quot;", "zzyzx qwxz", *real]}
    )
    vectors, empty = fitted.embed(frame)
    assert empty.tolist() == [True] * 5 + [False] * 3
    assert np.all(vectors[:5] == 0.0)
    assert np.all(np.linalg.norm(vectors[5:], axis=1) > 0)
    assert fitted.count_empty(frame) == 5
    np.testing.assert_array_equal(fitted.transform(frame), vectors)


def test_demo_empty_descriptions_are_counted_at_fit(
    fitted: TextEmbedder, demo_games: pl.DataFrame
) -> None:
    blank = demo_games["description"].fill_null("").str.strip_chars().eq("").sum()
    assert blank > 0  # the demo catalogue has some null or empty descriptions
    assert fitted.n_empty_documents_ == fitted.count_empty(demo_games) >= blank


def test_documents_sharing_categories_are_more_similar(
    fitted: TextEmbedder, demo_games: pl.DataFrame
) -> None:
    vectors = unit(fitted.transform(demo_games))
    categories = [set(c) for c in demo_games["categories"].to_list()]
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(vectors), (2, 5000))
    keep = left != right
    left, right = left[keep], right[keep]
    similarity = np.einsum("ij,ij->i", vectors[left], vectors[right])
    shared = np.array(
        [bool(categories[a] & categories[b]) for a, b in zip(left, right, strict=True)]
    )
    assert shared.sum() > 200 and (~shared).sum() > 200
    assert similarity[shared].mean() > similarity.mean() + 0.03
    assert similarity[shared].mean() > similarity[~shared].mean() + 0.05


def test_similar_words_are_close(fitted: TextEmbedder) -> None:
    # the demo describes wargames with their settings: war words share contexts
    words = {w: i for i, w in enumerate(fitted.vocabulary_)}
    vectors = unit(fitted.word_vectors_)
    assert {"dice", "rolling", "war", "world"} <= words.keys()
    war = vectors[words["war"]] @ vectors[words["world"]]
    assert war > np.median(vectors @ vectors[words["war"]])


def test_unseen_words_are_ignored(fitted: TextEmbedder, demo_games: pl.DataFrame) -> None:
    description = demo_games["description"].drop_nulls()[0]
    frame = pl.DataFrame({"description": [description, description + " qqqq zzzz"]})
    vectors = fitted.transform(frame)
    np.testing.assert_allclose(vectors[0], vectors[1])


def test_min_count_and_max_vocab_bound_the_vocabulary() -> None:
    frame = make_descriptions(200).with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("description") + " rareword")
        .otherwise(pl.col("description"))
        .alias("description")
    )
    assert "rareword" not in TextEmbedder(dim=5).fit(frame).vocabulary_
    assert len(TextEmbedder(dim=5, max_vocab=30).fit(frame).vocabulary_) == 30


def test_dim_too_large_raises() -> None:
    with pytest.raises(InputError, match=r"--dim 60 is larger than the 60 words"):
        TextEmbedder(dim=60).fit(make_descriptions(100))


def test_too_few_documents_raise() -> None:
    frame = make_descriptions(MIN_DOCUMENTS - 1, words_per_doc=200)
    frame = pl.concat([frame, pl.DataFrame({"description": [None, "", "<p></p>"]})])
    with pytest.raises(InputError, match=rf"19 with words \(needs at least {MIN_DOCUMENTS}\)"):
        TextEmbedder(dim=5, min_count=1).fit(frame)


def test_missing_description_column_raises() -> None:
    with pytest.raises(InputError, match="description"):
        TextEmbedder().fit(pl.DataFrame({"name": ["a"]}))


def test_joblib_round_trip_gives_identical_output(
    fitted: TextEmbedder, demo_games: pl.DataFrame, tmp_path
) -> None:
    path = tmp_path / "text.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.transform(demo_games), fitted.transform(demo_games))
    assert loaded.vocabulary_ == fitted.vocabulary_

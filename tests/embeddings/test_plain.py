"""Embedders registered as plain arrays: the same numbers as the fitted estimators, bit for
bit, and loading one imports no scikit-learn."""

from __future__ import annotations

import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest

from bggscore.embeddings.game import CHAIN_COLUMN, TEXT_COLUMN, GameEmbedder
from bggscore.embeddings.plain import PlainGameEmbedder, PlainTextEmbedder
from bggscore.embeddings.text import TextEmbedder
from bggscore.features import DESCRIPTION_CHARS
from bggscore.training.compile import compile_embedder


@pytest.fixture(scope="module")
def games() -> pl.DataFrame:
    from bggscore.demo.catalogue import generate_catalogue

    return generate_catalogue(1200, 3)


@pytest.fixture(scope="module")
def text(games: pl.DataFrame) -> TextEmbedder:
    return TextEmbedder(dim=16).fit(games)


@pytest.fixture(scope="module")
def inputs(games: pl.DataFrame, text: TextEmbedder) -> pl.DataFrame:
    vectors = pl.Series(TEXT_COLUMN, text.transform(games)).cast(pl.List(pl.Float64))
    return games.with_columns(pl.col("average_weight").alias(CHAIN_COLUMN), vectors)


@pytest.fixture(scope="module")
def game(inputs: pl.DataFrame) -> GameEmbedder:
    return GameEmbedder(dim=12).fit(inputs)


def test_the_plain_text_embedder_gives_the_same_vectors(
    games: pl.DataFrame, text: TextEmbedder
) -> None:
    plain = compile_embedder(text)
    assert isinstance(plain, PlainTextEmbedder)
    blank = games.head(5).with_columns(pl.lit(None, pl.String).alias("description"))
    for frame in (games, blank):
        vectors, empty = plain.embed(frame)
        expected, expected_empty = text.embed(frame)
        assert np.array_equal(vectors, expected)  # bit for bit
        assert np.array_equal(empty, expected_empty)
        assert plain.count_empty(frame) == text.count_empty(frame)
    assert plain.dim_ == text.dim_ and plain.vocabulary_ == text.vocabulary_


def test_the_plain_game_embedder_gives_the_same_embeddings_and_coordinates(
    inputs: pl.DataFrame, game: GameEmbedder
) -> None:
    plain = compile_embedder(game)
    assert isinstance(plain, PlainGameEmbedder)
    vectors = plain.transform(inputs)
    assert np.array_equal(vectors, game.transform(inputs))
    assert np.array_equal(plain.pca_.transform(vectors), game.pca_.transform(vectors))
    assert np.array_equal(plain.coordinates(inputs), game.coordinates(inputs))


def test_both_read_the_description_length_instead_of_the_text(
    inputs: pl.DataFrame, game: GameEmbedder
) -> None:
    plain = compile_embedder(game)
    assert DESCRIPTION_CHARS in plain.read_columns()
    assert "description" not in plain.read_columns() and CHAIN_COLUMN not in plain.read_columns()
    length = inputs.with_columns(
        pl.col("description").str.len_chars().alias(DESCRIPTION_CHARS)
    ).drop("description")
    assert np.array_equal(plain.transform(length), game.transform(inputs))
    assert np.array_equal(game.transform(length), game.transform(inputs))  # old pickles too


def test_a_plain_embedder_loads_without_scikit_learn(
    tmp_path: Path, inputs: pl.DataFrame, text: TextEmbedder, game: GameEmbedder
) -> None:
    paths = {}
    for name, model in (("text", text), ("game", game)):
        paths[name] = tmp_path / f"{name}.joblib"
        joblib.dump(compile_embedder(model), paths[name])
        named = {  # the module paths the pickle names
            str(arg)
            for op, arg, _ in pickletools.genops(pickle.dumps(compile_embedder(model)))
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE")
        }
        assert "bggscore.embeddings.plain" in named
        assert not any(part.startswith("sklearn") for part in named), name
    inputs.write_parquet(tmp_path / "inputs.parquet")
    script = f"""
import sys
import joblib
import polars as pl
frame = pl.read_parquet({str(tmp_path / "inputs.parquet")!r})
text = joblib.load({str(paths["text"])!r})
game = joblib.load({str(paths["game"])!r})
assert text.transform(frame).shape == (len(frame), 16)
assert game.pca_.transform(game.transform(frame)).shape == (len(frame), 2)
print(sorted(m for m in sys.modules if m.split(".")[0] == "sklearn"))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_anything_else_is_registered_as_it_is(game: GameEmbedder) -> None:
    other = object()
    assert compile_embedder(other) is other
    plain = compile_embedder(game)
    assert compile_embedder(plain) is plain

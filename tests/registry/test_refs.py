"""Model references: parsing, validation and round trips."""

from __future__ import annotations

import pytest

from bggscore.errors import UsageError
from bggscore.registry import ModelRef, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rating", ModelRef("rating")),
        ("complexity-v2026", ModelRef("complexity-v2026")),
        ("0model", ModelRef("0model")),
        ("rating_ard.v2", ModelRef("rating_ard.v2")),
        ("rating@champion", ModelRef("rating", alias="champion")),
        ("rating@prod-2026_a", ModelRef("rating", alias="prod-2026_a")),
        ("rating:3", ModelRef("rating", version=3)),
        ("rating:120", ModelRef("rating", version=120)),
        ("a" * 63, ModelRef("a" * 63)),
    ],
)
def test_parse_ref_accepts_the_three_forms_and_round_trips(text: str, expected: ModelRef) -> None:
    ref = parse_ref(text)
    assert ref == expected
    assert str(ref) == text
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Rating",
        "-rating",
        ".rating",
        "rat ing",
        "rating/x",
        "a" * 64,
        "rating:",
        "rating:0",
        "rating:-1",
        "rating:03",
        "rating:1.5",
        "rating:x",
        "rating@",
        "rating@Champion",
        "rating@1st",
        "rating@has space",
        "rating@" + "a" * 33,
        "rating@champion:3",
        "rating:3@champion",
        "@champion",
        ":3",
    ],
)
def test_parse_ref_rejects_malformed_references_with_one_line(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_ref(text)
    assert "\n" not in str(info.value)
    assert "use" in info.value.message


def test_model_ref_refuses_both_version_and_alias() -> None:
    with pytest.raises(UsageError, match="both a version and an alias"):
        ModelRef("rating", version=2, alias="champion")


@pytest.mark.parametrize("version", [0, -3, True])
def test_model_ref_refuses_bad_versions(version: int) -> None:
    with pytest.raises(UsageError):
        ModelRef("rating", version=version)


def test_model_refs_are_frozen_and_hashable() -> None:
    ref = ModelRef("rating", version=2)
    assert {ref, parse_ref("rating:2")} == {ref}
    with pytest.raises(AttributeError):
        setattr(ref, "version", 3)  # noqa: B010 (frozen: assignment must fail)

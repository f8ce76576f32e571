"""Property tests for the parsers users type into: game ids and id files, KEY=VALUE payloads,
model references, year ranges and ``--model TYPE=REF``.

Every parser either returns the value the text describes or raises the one error type its
command turns into exit 2 (``UsageError`` / ``InputError``); no other exception escapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bggscore.cli.selection import build_selection, read_ids_file
from bggscore.dispatch import parse_pairs, parse_payload_json
from bggscore.errors import InputError, UsageError
from bggscore.modelset import SCORING_TYPES, parse_model_overrides
from bggscore.registry import parse_ref
from bggscore.registry.refs import ModelRef
from bggscore.warehouse.queries import Selection

# modest and deterministic enough for CI: no deadlines, no example database in the repo
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# characters str.splitlines() breaks on: a token never contains one (it would be two lines)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
TOKEN_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="#" + LINE_BREAKS)

game_ids = st.integers(min_value=1, max_value=10**12)
blank = st.sampled_from(["", " ", "\t", "  \t "])
comment = st.one_of(st.just(""), st.text(TOKEN_CHARS, max_size=20).map(lambda text: " # " + text))


def _is_game_id(token: str) -> bool:
    text = token.strip()
    return text.isascii() and text.isdigit() and int(text) > 0


# -- game ids and --game-ids-file -------------------------------------------------------------
@st.composite
def ids_file_lines(draw: st.DrawFn) -> tuple[list[int], list[str]]:
    """Ids and the lines of a file holding them: padded, commented, with blank and comment
    lines between them."""
    ids = draw(st.lists(game_ids, max_size=20))
    lines: list[str] = []
    for game_id in ids:
        lines += draw(st.lists(st.one_of(blank, comment.filter(bool)), max_size=2))
        lines.append(f"{draw(blank)}{game_id}{draw(blank)}{draw(comment)}")
    return ids, lines


@PROPERTY
@given(ids_file_lines())
def test_an_ids_file_reads_back_every_id_in_order(tmp_path: Path, case: tuple) -> None:
    ids, lines = case
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_ids_file(path) == ids


@PROPERTY
@given(ids_file_lines(), st.lists(game_ids, max_size=10))
def test_selection_ids_are_sorted_and_unique(tmp_path: Path, case: tuple, flags: list) -> None:
    ids, lines = case
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    selection = build_selection(2024, 2029, False, flags, path)
    expected = tuple(sorted(set(ids) | set(flags)))
    if expected:
        assert selection.game_ids == expected
        assert selection.params()["all_ids"] is False
    else:  # an empty file selects no ids at all rather than silently meaning "everything"
        assert selection.game_ids == ()


@PROPERTY
@given(st.lists(game_ids, min_size=1, max_size=30))
def test_game_id_flags_alone_are_normalised(ids: list[int]) -> None:
    selection = build_selection(2024, 2029, False, ids + ids[::-1], None)
    assert selection.game_ids == tuple(sorted(set(ids)))


@PROPERTY
@given(st.lists(game_ids, max_size=5), st.integers(max_value=0))
def test_a_non_positive_game_id_flag_is_an_input_error(ids: list[int], bad: int) -> None:
    with pytest.raises(InputError, match=f"--game-id {bad} is not a game id"):
        build_selection(2024, 2029, False, [*ids, bad], None)


bad_tokens = st.one_of(
    st.sampled_from(["0", "00", "-1", "+3", "1.5", "1e3", "12a", "0x10", "²", "١٢", "1 2", "½"]),
    st.text(TOKEN_CHARS, min_size=1, max_size=12),
).filter(lambda token: bool(token.strip()) and not _is_game_id(token))


@PROPERTY
@given(ids_file_lines(), bad_tokens, st.data())
def test_a_bad_token_names_its_line(tmp_path: Path, case: tuple, token: str, data) -> None:
    _, lines = case
    at = data.draw(st.integers(min_value=0, max_value=len(lines)), label="line index")
    lines = [*lines[:at], f"{token}{data.draw(comment)}", *lines[at:]]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_ids_file(path)
    assert caught.value.message.startswith(f"{path}:{at + 1}: {token.strip()!r} is not a game id")
    with pytest.raises(InputError):  # the commands' own path: the same error, exit 2
        build_selection(2024, 2029, False, None, path)


def test_a_missing_ids_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_ids_file(tmp_path / "nope.txt")


def test_an_ids_file_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("12\r\n34\r\n", encoding="utf-8-sig")  # as Windows editors save it
    assert read_ids_file(path) == [12, 34]


def test_an_ids_file_that_is_not_text_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    path.write_bytes(b"PAR1\xda\xff\x00")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        read_ids_file(path)


# -- KEY=VALUE pairs and --payload-json ---------------------------------------------------------
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,99}", fullmatch=True)
values = st.text(max_size=40)


@PROPERTY
@given(st.dictionaries(keys, values, max_size=12))
def test_pairs_round_trip(payload: dict[str, str]) -> None:
    assert parse_pairs([f"{k}={v}" for k, v in payload.items()], "--payload") == payload


@PROPERTY
@given(st.lists(st.tuples(keys, values), max_size=12))
def test_later_pairs_win(pairs: list[tuple[str, str]]) -> None:
    assert parse_pairs([f"{k}={v}" for k, v in pairs], "--input") == dict(pairs)


@PROPERTY
@given(keys, st.lists(values, min_size=2, max_size=4))
def test_equals_signs_stay_in_the_value(key: str, parts: list[str]) -> None:
    value = "=".join(parts)
    assert parse_pairs([f"{key}={value}"], "--payload") == {key: value}


@PROPERTY
@given(values)
def test_an_empty_key_is_rejected(value: str) -> None:
    with pytest.raises(UsageError, match="is not KEY=VALUE"):
        parse_pairs([f"={value}"], "--payload")


@PROPERTY
@given(st.text(max_size=30).filter(lambda text: "=" not in text))
def test_a_pair_without_equals_is_rejected(text: str) -> None:
    with pytest.raises(UsageError, match=r"--input .* is not KEY=VALUE"):
        parse_pairs([text], "--input")


@PROPERTY
@given(st.text(max_size=30), values)
def test_a_key_is_accepted_only_if_it_is_a_key(key: str, value: str) -> None:
    assume("=" not in key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,99}", key):
        assert parse_pairs([f"{key}={value}"], "--payload") == {key: value}
    else:
        with pytest.raises(UsageError, match="is not KEY=VALUE"):
            parse_pairs([f"{key}={value}"], "--payload")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@PROPERTY
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_payload_json_objects_round_trip(payload: dict) -> None:
    assert parse_payload_json(json.dumps(payload)) == payload


@PROPERTY
@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_payload_json_must_be_an_object(value: object) -> None:
    with pytest.raises(UsageError, match="must be a JSON object"):
        parse_payload_json(json.dumps(value))


@PROPERTY
@given(st.text(max_size=40))
def test_payload_json_text_is_an_object_or_a_usage_error(text: str) -> None:
    try:
        assert isinstance(parse_payload_json(text), dict)
    except UsageError as exc:
        assert "\n" not in exc.message


def test_payload_json_with_a_huge_integer_is_a_usage_error() -> None:
    # json.loads raises a plain ValueError (not JSONDecodeError) past 4,300 digits
    with pytest.raises(UsageError, match="--payload-json is not valid JSON"):
        parse_payload_json('{"n": ' + "1" * 5000 + "}")


# -- model references ------------------------------------------------------------------------
names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,62}", fullmatch=True)
aliases = st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True)
versions = st.integers(min_value=1, max_value=999_999_999)


@PROPERTY
@given(names)
def test_a_name_round_trips(name: str) -> None:
    ref = parse_ref(name)
    assert (ref.name, ref.version, ref.alias) == (name, None, None)
    assert str(ref) == name


@PROPERTY
@given(names, aliases)
def test_an_alias_reference_round_trips(name: str, alias: str) -> None:
    ref = parse_ref(f"{name}@{alias}")
    assert (ref.name, ref.version, ref.alias) == (name, None, alias)
    assert str(ref) == f"{name}@{alias}"
    assert parse_ref(str(ModelRef(name, alias=alias))) == ref


@PROPERTY
@given(names, versions)
def test_a_version_reference_round_trips(name: str, version: int) -> None:
    ref = parse_ref(f"{name}:{version}")
    assert (ref.name, ref.version, ref.alias) == (name, version, None)
    assert str(ref) == f"{name}:{version}"
    assert parse_ref(str(ModelRef(name, version=version))) == ref


@PROPERTY
@given(st.text(max_size=40))
def test_any_text_is_a_canonical_reference_or_a_usage_error(text: str) -> None:
    try:
        ref = parse_ref(text)
    except UsageError as exc:
        assert exc.exit_code == 2
        return
    assert str(ref) == text  # whatever is accepted is already in its one spelling


@PROPERTY
@given(
    st.one_of(
        names.map(lambda n: n + "\n"),  # `$` alone would let a trailing newline through
        names.map(lambda n: n.upper()).filter(lambda n: n != n.lower()),
        st.tuples(names, st.sampled_from([" ", "/", "\\", ";", "'", "`", "\x00"]), names).map(
            "".join
        ),
        st.tuples(names, aliases, versions).map(lambda t: f"{t[0]}@{t[1]}:{t[2]}"),
        names.map(lambda n: n + "@"),
        names.map(lambda n: n + ":"),
        st.tuples(names, st.sampled_from(["0", "-1", "01", "1.0", "x", "1\n", "9999999999"])).map(
            ":".join
        ),
        aliases.map(lambda a: "@" + a),
        st.just(""),
    )
)
def test_malformed_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_ref(text)


# -- year ranges -----------------------------------------------------------------------------
years = st.integers(min_value=-5000, max_value=5000)


@PROPERTY
@given(years, years)
def test_a_year_range_needs_start_before_end(start: int, end: int) -> None:
    if start < end:
        selection = Selection(start_year=start, end_year=end)
        params = selection.params()
        assert (params["start_year"], params["end_year"]) == (float(start), float(end))
        assert selection.describe() == f"years {start}-{end - 1}"
    else:
        with pytest.raises(UsageError, match=f"--start-year {start} must be before"):
            Selection(start_year=start, end_year=end)
        with pytest.raises(UsageError):  # the commands build it through build_selection
            build_selection(start, end, False, None, None)


@PROPERTY
@given(years, years)
def test_all_years_ignores_the_range(start: int, end: int) -> None:
    assert Selection(start_year=start, end_year=end, all_years=True).params()["all_years"]


@PROPERTY
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_min_users_rated_is_a_non_negative_int64(minimum: int) -> None:
    if 0 <= minimum < 2**63:
        params = Selection(min_users_rated=minimum).params()
        assert (params["any_users_rated"], params["min_users_rated"]) == (False, minimum)
    else:
        with pytest.raises(UsageError, match=f"--min-users-rated {minimum} must be"):
            Selection(min_users_rated=minimum)


# -- --model TYPE=REF ------------------------------------------------------------------------
refs = st.text(max_size=20).filter(lambda text: bool(text.strip()))
types = st.sampled_from(SCORING_TYPES)


@PROPERTY
@given(st.lists(st.tuples(types, refs), max_size=8), blank, blank)
def test_model_overrides_round_trip(pairs: list, before: str, after: str) -> None:
    flags = [f"{before}{t}{after}={r}" for t, r in pairs]
    assert parse_model_overrides(flags) == {t: r.strip() for t, r in dict(pairs).items()}


@PROPERTY
@given(st.text(max_size=30))
def test_any_override_is_parsed_or_a_usage_error(text: str) -> None:
    try:
        parsed = parse_model_overrides([text])
    except UsageError as exc:
        assert "--model" in exc.message
        return
    model_type, _, ref = text.partition("=")
    assert parsed == {model_type.strip(): ref.strip()}
    assert model_type.strip() in SCORING_TYPES


@PROPERTY
@given(
    st.one_of(
        types,  # no '='
        refs.map(lambda r: "=" + r),  # no type
        types.map(lambda t: t + "="),  # no ref
        types.map(lambda t: t + "=   "),
        st.tuples(st.text(max_size=10), refs)
        .filter(lambda t: "=" not in t[0] and t[0].strip() and t[0].strip() not in SCORING_TYPES)
        .map(lambda t: f"{t[0]}={t[1]}"),
        st.sampled_from(["text_embeddings=x", "game_embeddings=x", "Rating=rating"]),
    )
)
def test_malformed_overrides_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--model"):
        parse_model_overrides([text])

"""Which models a scoring run uses: overrides, resolution, signatures, lineage keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from bggscore.errors import InputError, IntegrityError, RegistryError, UsageError
from bggscore.modelset import ModelSet, parse_model_overrides, resolve_models


def _resolve(stages: list[str], overrides: dict[str, str] | None = None, **settings_overrides):
    from bggscore.modelset import open_settings_registry
    from bggscore.settings import load_settings

    settings = load_settings(overrides=settings_overrides)
    return resolve_models(settings, open_settings_registry(settings), stages, overrides or {})


# -- --model TYPE=REF -----------------------------------------------------------------------


def test_parse_model_overrides() -> None:
    assert parse_model_overrides([]) == {}
    assert parse_model_overrides(["rating=rating@champion", " hurdle = hurdle:2 "]) == {
        "rating": "rating@champion",
        "hurdle": "hurdle:2",
    }
    # the last flag for a type wins
    assert parse_model_overrides(["rating=a", "rating=b"]) == {"rating": "b"}


@pytest.mark.parametrize("value", ["rating", "rating=", "=rating", "embedding=x"])
def test_parse_model_overrides_rejects(value: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_model_overrides([value])
    assert value in str(info.value)


# -- resolution -----------------------------------------------------------------------------


def test_stages_load_what_they_need(demo_home: Path) -> None:
    complexity_only = _resolve(["complexity"])
    assert set(complexity_only.models) == {"complexity"}
    assert complexity_only.geek_formula is None

    main = _resolve(["main"])
    # main reads predicted complexity, so its lineage names the complexity model too
    assert set(main.models) == {"complexity", "hurdle", "rating", "users_rated"}
    assert main.geek_formula is not None
    assert (main.geek_formula.prior_rating, main.geek_formula.prior_weight) == (5.5, 2000.0)
    assert main.label("geek_rating") == "bayesian(prior_rating=5.5,prior_weight=2000)"
    assert main.stage_key("main") == (
        "hurdle=hurdle:1;rating=rating:1;users_rated=users_rated:1;"
        "geek_rating=bayesian(prior_rating=5.5,prior_weight=2000)"
    )
    assert main.stage_key("complexity") == "complexity=complexity:1"
    assert main.training_cutoff_year() == 2024


def test_prior_settings_and_direct_geek_model(demo_home: Path) -> None:
    priors = _resolve(["main"], scoring={"prior_rating": 6.0, "prior_weight": 500})
    assert priors.label("geek_rating") == "bayesian(prior_rating=6,prior_weight=500)"
    direct = _resolve(["main"], models={"geek_rating": "geek_rating"})
    assert direct.geek_formula is None
    assert direct.label("geek_rating") == "geek_rating:1"
    assert "geek_rating=geek_rating:1" in direct.stage_key("main")


def test_fingerprint_changes_with_any_model(demo_home: Path) -> None:
    base = _resolve(["complexity", "main"])
    assert base.fingerprint() == _resolve(["complexity", "main"]).fingerprint()
    priors = _resolve(["complexity", "main"], scoring={"prior_weight": 100})
    direct = _resolve(["complexity", "main"], models={"geek_rating": "geek_rating"})
    fingerprints = {base.fingerprint(), priors.fingerprint(), direct.fingerprint()}
    assert len(fingerprints) == 3


def test_unknown_reference_names_the_registered_models(demo_home: Path) -> None:
    with pytest.raises(RegistryError) as info:
        _resolve(["main"], {"rating": "no_such_model"})
    message = str(info.value)
    assert "no_such_model" in message
    assert "rating" in message.split("no_such_model", 1)[1]
    # the hint names what exists instead of repeating the flag the user just passed
    assert "registered rating models: rating" in message
    assert "bggscore models list --type rating" in message
    assert info.value.exit_code == 2


def test_reference_of_the_wrong_type_is_refused(demo_home: Path) -> None:
    with pytest.raises(RegistryError) as info:
        _resolve(["main"], {"rating": "complexity"})
    assert "complexity" in str(info.value)


def test_tampered_artifact_is_never_loaded(demo_home: Path) -> None:
    artifact = demo_home / "registry" / "hurdle" / "hurdle" / "v1" / "artifact.joblib"
    data = bytearray(artifact.read_bytes())
    data[-10] ^= 0x01
    artifact.write_bytes(bytes(data))
    assert set(_resolve(["complexity"]).models) == {"complexity"}  # not needed: not read
    with pytest.raises(IntegrityError) as info:
        _resolve(["main"])
    assert "hurdle:1" in str(info.value)


# -- signatures against the warehouse -------------------------------------------------------


def test_check_columns_lists_every_missing_column_and_who_needs_it(demo_home: Path) -> None:
    from bggscore.warehouse.schemas import GAMES_FEATURES

    models: ModelSet = _resolve(["complexity", "main"])
    available = dict(GAMES_FEATURES.columns)
    models.check_columns(available)  # everything there: no error
    # chain inputs (predicted_complexity) are produced in-process, not read
    assert "predicted_complexity" not in models.read_columns()
    assert "min_age" in models.read_columns()

    del available["min_age"], available["mechanics"]
    with pytest.raises(InputError) as info:
        models.check_columns(available)
    message = str(info.value)
    assert "min_age (needed by" in message
    assert "mechanics (needed by" in message
    for label in ("complexity:1", "hurdle:1", "rating:1", "users_rated:1"):
        assert label in message
    assert "predicted_complexity" not in message

from __future__ import annotations

from pathlib import Path

import pytest

from bggscore.cli.common import flag_overrides
from bggscore.errors import ConfigError
from bggscore.settings import load_settings, unknown_variables


def test_defaults_are_the_production_names(home: Path) -> None:
    settings = load_settings()
    assert settings.warehouse.engine == "duckdb"
    assert settings.home == home
    assert settings.warehouse_path == home / "warehouse.duckdb"
    assert settings.warehouse.features_dataset == "analytics"
    assert settings.warehouse.hash_dataset == "staging"
    assert settings.warehouse.ml_dataset == "raw"
    assert settings.warehouse.tables.ml_predictions_landing == "ml_predictions_landing"


def test_precedence_flag_over_env_over_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("bggscore.toml").write_text(
        'source_environment = "file"\n[scoring]\nbatch_size = 10\nprior_weight = 100\n'
        '[warehouse.tables]\nruns = "file_runs"\n'
    )
    monkeypatch.setenv("BGGSCORE_SCORING__BATCH_SIZE", "20")
    monkeypatch.setenv("BGGSCORE_SOURCE_ENVIRONMENT", "env")
    settings = load_settings(overrides=flag_overrides(**{"source_environment": "flag"}))
    assert settings.source_environment == "flag"
    assert settings.scoring.batch_size == 20
    assert settings.scoring.prior_weight == 100
    assert settings.warehouse.tables.runs == "file_runs"


def test_explicit_config_path(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('[warehouse]\nml_dataset = "scratch"\n')
    assert load_settings(config).warehouse.ml_dataset == "scratch"
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("BGGSCORE_WAREHOUSE__ENGINE", "postgres", "warehouse.engine"),
        ("BGGSCORE_WAREHOUSE__ENGINE", "bigquery", "features_project is not set"),
        ("BGGSCORE_WAREHOUSE__ML_DATASET", "raw; DROP TABLE x", "not a valid identifier"),
        ("BGGSCORE_WAREHOUSE__TABLES__RUNS", "runs`--", "not a valid identifier"),
        ("BGGSCORE_WAREHOUSE__ML_PROJECT", "Bad_Project", "not a valid identifier"),
        ("BGGSCORE_SCORING__BATCH_SIZE", "0", "scoring.batch_size"),
    ],
)
def test_bad_settings_are_one_clear_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_toml_is_a_config_error(home: Path) -> None:
    Path("bggscore.toml").write_text("[warehouse\nengine=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_unknown_key_in_file_is_rejected(home: Path) -> None:
    Path("bggscore.toml").write_text("[warehouse]\nengin = 'duckdb'\n")
    with pytest.raises(ConfigError, match=r"warehouse\.engin"):
        load_settings()


def test_unknown_variables_are_typos_but_the_github_aliases_are_settings() -> None:
    env = {
        "BGGSCORE_GITHUB_TOKEN": "x",
        "BGGSCORE_GITHUB_API_URL": "https://x",
        "BGGSCORE_GITHUB__TOKEN": "x",
        "BGGSCORE_GITHUB__API_URL": "https://x",
        "GITHUB_TOKEN": "x",
        "BGGSCORE_LINT_TOOLS": "1",
        "BGGSCORE_GITHUB_TOKN": "x",
        "BGGSCORE_WAREHOUSE_ENGINE": "duckdb",
    }
    assert unknown_variables(env) == ["BGGSCORE_GITHUB_TOKN", "BGGSCORE_WAREHOUSE_ENGINE"]

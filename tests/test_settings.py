from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.support.output import assert_one_line_error, parse_json

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


# -- every float setting is finite; errors say where a value came from -------------------------
def _float_settings() -> list[str]:
    """The variable of every float setting, found by walking the settings tree."""
    from pydantic import BaseModel

    from bggscore.settings import Settings

    found = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")
            elif annotation is float or annotation == float | None:
                found.append(f"{prefix}{name.upper()}")

    walk(Settings, "BGGSCORE_")
    return found


def test_there_are_float_settings_to_check() -> None:
    assert {"BGGSCORE_SCORING__PRIOR_RATING", "BGGSCORE_WAREHOUSE__LOCK_TIMEOUT"} <= set(
        _float_settings()
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "Infinity"])
@pytest.mark.parametrize("variable", _float_settings())
def test_every_float_setting_refuses_what_is_not_finite(
    cli, home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("config", "show")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "Input should be a finite number", f"from {variable}")
    assert not home.exists()


def test_a_float_from_the_config_file_is_checked_too(cli, home: Path) -> None:
    Path("bggscore.toml").write_text("[warehouse]\nlock_timeout = nan\n")
    result = cli("config", "show")
    assert result.exit_code == 2
    assert_one_line_error(
        result.stderr, "warehouse.lock_timeout: Input should be a finite number", "bggscore.toml"
    )


# -- `bggscore config show`: each effective setting and where it came from ---------------------
def shown(cli, *args: str) -> dict[str, Any]:
    result = cli("config", "show", "--json", *args)
    assert result.exit_code == 0, result.stderr
    document = parse_json(result.stdout)
    assert document["schema_version"] == 1 and document["command"] == "config show"
    return document


def test_config_show_names_the_source_of_every_setting(
    cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("bggscore.toml").write_text(
        'source_environment = "file"\n[scoring]\nbatch_size = 10\nprior_weight = 100\n'
        '[warehouse.tables]\nruns = "file_runs"\n'
    )
    monkeypatch.setenv("BGGSCORE_SCORING__BATCH_SIZE", "20")
    monkeypatch.setenv("BGGSCORE_SOURCE_ENVIRONMENT", "env")
    monkeypatch.setenv("BGGSCORE_WAREHOUSE", '{"ml_dataset": "scratch"}')
    other = tmp_path / "other-home"

    document = shown(cli, "--home", str(other), "--engine", "duckdb")  # flags after the command

    assert document["config_file"] == str(Path.cwd() / "bggscore.toml")
    settings = document["settings"]

    def source(key: str) -> tuple[Any, str, str | None]:
        item = settings[key]
        return item["value"], item["source"], item["from"]

    assert source("home") == (str(other), "flag", "--home")
    assert source("warehouse.engine") == ("duckdb", "flag", "--engine")
    assert source("source_environment") == ("env", "env", "BGGSCORE_SOURCE_ENVIRONMENT")
    assert source("scoring.batch_size") == (20, "env", "BGGSCORE_SCORING__BATCH_SIZE")
    assert source("warehouse.ml_dataset") == ("scratch", "env", "BGGSCORE_WAREHOUSE")
    toml = str(Path.cwd() / "bggscore.toml")
    assert source("scoring.prior_weight") == (100.0, "file", toml)
    assert source("warehouse.tables.runs") == ("file_runs", "file", toml)
    assert source("scoring.prior_rating") == (5.5, "default", None)
    # an unset path shows the default it stands for
    assert source("warehouse.path") == (str(other / "warehouse.duckdb"), "default", None)
    assert source("registry.uri") == (str(other / "registry"), "default", None)
    # every setting is listed, and nothing was written
    assert len(settings) == len(_setting_keys())
    assert not other.exists() and not home.exists()


def _setting_keys() -> list[str]:
    from bggscore.settings import explain_settings, load_settings

    return [e.key for e in explain_settings(load_settings())[1]]


def test_config_show_precedence_flag_over_env_over_file(
    cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("bggscore.toml").write_text('[warehouse]\nengine = "bigquery"\n')
    monkeypatch.setenv("BGGSCORE_WAREHOUSE__ENGINE", "duckdb")
    assert shown(cli)["settings"]["warehouse.engine"]["source"] == "env"
    monkeypatch.delenv("BGGSCORE_WAREHOUSE__ENGINE")
    Path("bggscore.toml").write_text(
        '[warehouse]\nengine = "bigquery"\nfeatures_project = "my-features"\n'
        'ml_project = "my-models"\n'
    )
    assert shown(cli)["settings"]["warehouse.engine"] == {
        "value": "bigquery",
        "source": "file",
        "from": str(Path.cwd() / "bggscore.toml"),
    }
    engine = shown(cli, "--engine", "duckdb")["settings"]["warehouse.engine"]
    assert (engine["value"], engine["source"]) == ("duckdb", "flag")


def test_config_show_hides_secrets(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghp_ConfigShow0123456789abcdefABCDEF0123"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", "https://someone:hunter2@github.example")
    settings = shown(cli)["settings"]
    assert settings["github.token"] == {"value": "***", "source": "env", "from": "GITHUB_TOKEN"}
    assert settings["github.api_url"]["value"] == "https://***@github.example"
    assert settings["github.api_url"]["from"] == "BGGSCORE_GITHUB_API_URL"
    table = cli("config", "show")
    assert table.exit_code == 0
    for text in (table.stdout, table.stderr, cli("config", "show", "--json").stdout):
        assert token not in text and "hunter2" not in text
    assert "env GITHUB_TOKEN" in table.stdout


def test_config_show_prints_one_whole_line_per_setting(cli, home: Path) -> None:
    Path("bggscore.toml").write_text('[warehouse.tables]\nml_predictions_landing = "landing"\n')
    result = cli("config", "show")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {Path.cwd() / 'bggscore.toml'}"
    by_key = {line.split(" = ")[0].strip(): line for line in lines[1:]}
    assert list(by_key) == _setting_keys()  # every setting, in order, never cut
    landing = by_key["warehouse.tables.ml_predictions_landing"]
    assert landing.endswith(f"= landing  (file {Path.cwd() / 'bggscore.toml'})")
    assert by_key["scoring.prior_rating"].endswith("= 5.5  (default)")


def test_an_unknown_top_level_variable_warns_once(
    cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGGSCORE_CI_BUILD", "1")  # CI systems set variables of their own
    result = cli("config", "show", "--json")
    assert result.exit_code == 0
    assert result.stderr.count("BGGSCORE_CI_BUILD is not a bggscore setting") == 1
    assert parse_json(result.stdout)["ignored_variables"] == ["BGGSCORE_CI_BUILD"]


def test_an_unknown_nested_variable_is_an_error(
    cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGGSCORE_SCORNG__BATCH_SIZE", "1")
    result = cli("config", "show")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "BGGSCORE_SCORNG__BATCH_SIZE is not a bggscore setting")


def test_config_show_with_an_explicit_config_file(cli, home: Path, tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text('[models]\nrating = "rating@champion"\n')
    document = shown(cli, "--config", str(config))
    assert document["config_file"] == str(config)
    assert document["settings"]["models.rating"] == {
        "value": "rating@champion",
        "source": "file",
        "from": str(config),
    }

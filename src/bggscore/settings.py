"""Settings: one pydantic-settings root with nested groups.

Precedence, highest first: command-line flags > ``BGGSCORE_*`` environment
variables (``__`` separates nesting, e.g. ``BGGSCORE_WAREHOUSE__ENGINE``) > the
config file (``--config PATH`` or ``./bggscore.toml``) > defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bggscore.errors import ConfigError
from bggscore.stages import DEFAULT_BATCH_SIZE, DEFAULT_EMBED_BATCH_SIZE

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
DATASET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
CONFIG_FILE = "bggscore.toml"


def check_identifier(value: str, pattern: re.Pattern[str], what: str) -> str:
    """Reject anything that is not a plain identifier; identifiers are never parameters."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid identifier")
    return value


class Group(BaseModel):
    """A nested settings group; unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid")


class TableNames(Group):
    """Table names, without dataset; defaults are the production names."""

    games_features: str = "games_features"
    game_features_hash: str = "game_features_hash"
    ml_predictions_landing: str = "ml_predictions_landing"
    complexity_predictions: str = "complexity_predictions"
    game_embeddings: str = "game_embeddings"
    description_embeddings: str = "description_embeddings"
    scoring_state: str = "bggscore_scoring_state"
    runs: str = "bggscore_runs"

    @field_validator("*")
    @classmethod
    def _table(cls, value: str) -> str:
        return check_identifier(value, TABLE_RE, "table name")


class WarehouseSettings(Group):
    engine: Literal["duckdb", "bigquery"] = "duckdb"
    path: Path | None = Field(None, description="DuckDB file; default <home>/warehouse.duckdb")
    features_project: str | None = Field(None, description="BigQuery project of the features")
    features_dataset: str = "analytics"
    hash_dataset: str = "staging"
    ml_project: str | None = Field(None, description="BigQuery project of the landing tables")
    ml_dataset: str = "raw"
    location: str | None = None
    lock_timeout: float = Field(5.0, ge=0, description="seconds to wait for a locked DuckDB file")
    memory_limit_mb: int = Field(
        384, ge=64, description="DuckDB buffer pool in MiB (it spills to disk beyond this)"
    )
    tables: TableNames = TableNames()

    @field_validator("features_project", "ml_project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value, PROJECT_RE, "project")

    @field_validator("features_dataset", "hash_dataset", "ml_dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return check_identifier(value, DATASET_RE, "dataset")

    @model_validator(mode="after")
    def _bigquery_needs_projects(self) -> WarehouseSettings:
        if self.engine == "bigquery":
            for field in ("features_project", "ml_project"):
                if getattr(self, field) is None:
                    raise ValueError(
                        f"engine is bigquery but {field} is not set "
                        f"(set BGGSCORE_WAREHOUSE__{field.upper()} or warehouse.{field})"
                    )
        return self


class RegistrySettings(Group):
    uri: str | None = Field(
        None, description="folder or gs://bucket/prefix; default <home>/registry"
    )


class ModelSettings(Group):
    """The model reference each stage uses (name, name@alias or name:version)."""

    complexity: str = "complexity"
    hurdle: str = "hurdle"
    rating: str = "rating"
    users_rated: str = "users_rated"
    geek_rating: str | None = Field(None, description="a direct model; unset = bayesian formula")
    text_embeddings: str = "text_embeddings"
    game_embeddings: str = "game_embeddings"


class ScoringSettings(Group):
    prior_rating: float = 5.5
    prior_weight: float = Field(2000.0, gt=0)
    batch_size: int = Field(DEFAULT_BATCH_SIZE, gt=0)
    embed_batch_size: int = Field(DEFAULT_EMBED_BATCH_SIZE, gt=0)


class GitHubSettings(Group):
    token: SecretStr | None = None
    api_url: str = "https://api.github.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BGGSCORE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        Path(".bggscore"), description="local state: warehouse file, registry, locks"
    )
    source_environment: str = "dev"
    warehouse: WarehouseSettings = WarehouseSettings()
    registry: RegistrySettings = RegistrySettings()
    models: ModelSettings = ModelSettings()
    scoring: ScoringSettings = ScoringSettings()
    github: GitHubSettings = GitHubSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("home")
    @classmethod
    def _home_is_a_folder(cls, value: Path) -> Path:
        # a folder that does not exist yet is made on first use; a file never can be
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a folder; point it at a folder")
        return value

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse.path or self.home / "warehouse.duckdb"

    @property
    def registry_uri(self) -> str:
        return self.registry.uri or str(self.home / "registry")


# read by other parts of bggscore (dispatch, the workflow lint script), not by Settings
OTHER_VARIABLES = {"BGGSCORE_GITHUB_TOKEN", "BGGSCORE_GITHUB_API_URL", "BGGSCORE_LINT_TOOLS"}


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """BGGSCORE_* variables no setting reads: most likely typos (e.g. one underscore)."""
    groups = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if isinstance(field.default, BaseModel)
    }
    plain = {name.upper() for name in Settings.model_fields} - groups
    unknown = []
    for key in environ:
        if not key.startswith("BGGSCORE_") or key in OTHER_VARIABLES:
            continue
        rest = key.removeprefix("BGGSCORE_")
        head, sep, _ = rest.partition("__")
        if (sep and head in groups) or (not sep and rest in plain):
            continue
        unknown.append(key)
    return sorted(unknown)


def load_settings(config: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from flags (``overrides``, nested dicts), env, the config file, defaults."""
    if config is not None and not config.is_file():
        raise ConfigError(f"config file {config} not found", "check --config")
    path = config if config is not None else Path.cwd() / CONFIG_FILE
    toml_file = path if path.is_file() else None

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

    try:
        settings = _FileSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except Exception as exc:  # a TOML syntax error surfaces as a decoder error
        if type(exc).__name__ == "TOMLDecodeError":
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        raise
    return settings


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    quiet = isinstance(value, dict) or value is None or str(value) in message
    shown = "" if quiet else f" (got {value!r})"
    extra = f"; {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"invalid setting {where}: {message}{shown}{extra}"

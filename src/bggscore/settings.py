"""Settings: one pydantic-settings root with nested groups.

Precedence, highest first: command-line flags > ``BGGSCORE_*`` environment
variables (``__`` separates nesting, e.g. ``BGGSCORE_WAREHOUSE__ENGINE``) > the
config file (``--config PATH`` or ``./bggscore.toml``) > defaults.

The GitHub settings also read aliases (:data:`GITHUB_VARIABLES`), as environment
variables of the same rank: ``github.token`` from ``BGGSCORE_GITHUB__TOKEN``, else
``BGGSCORE_GITHUB_TOKEN``, else ``GITHUB_TOKEN``; ``github.api_url`` from
``BGGSCORE_GITHUB__API_URL``, else ``BGGSCORE_GITHUB_API_URL``. A blank one counts as unset.
"""

from __future__ import annotations

import os
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
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
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
    token: SecretStr | None = None  # a SecretStr: repr and str show **********
    api_url: str = "https://api.github.com"


# every environment variable of a GitHub setting, the one that wins when several are set first
GITHUB_VARIABLES = {
    "token": ("BGGSCORE_GITHUB__TOKEN", "BGGSCORE_GITHUB_TOKEN", "GITHUB_TOKEN"),
    "api_url": ("BGGSCORE_GITHUB__API_URL", "BGGSCORE_GITHUB_API_URL"),
}
GITHUB_ALIASES = {name for names in GITHUB_VARIABLES.values() for name in names[1:]}


class EnvWithGitHubAliases(PydanticBaseSettingsSource):
    """The ``BGGSCORE_*`` variables, with the GitHub aliases filled in at the same rank.

    pydantic-settings reads ``validation_alias`` only on the root's own fields, not inside a
    nested group, so the aliases are applied here: for each GitHub field the first non-blank
    of its variables wins; when all are blank or unset the field is left to the file and the
    default (a blank ``BGGSCORE_GITHUB__TOKEN`` does not hide ``github.token`` in the file).
    """

    def __init__(self, settings_cls: type[BaseSettings], env: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ does the work

    def _variable(self, name: str) -> str | None:
        variables = self.env.env_vars
        return variables.get(name if self.env.case_sensitive else name.lower())

    def __call__(self) -> dict[str, Any]:
        data = self.env()
        github = data.get("github", {})
        if not isinstance(github, dict):  # not a group: leave it to validation to refuse
            return data
        github = dict(github)
        for field, (_, *aliases) in GITHUB_VARIABLES.items():
            candidates = [github.get(field), *(self._variable(name) for name in aliases)]
            value = next((c for c in candidates if isinstance(c, str) and c.strip()), None)
            if value is not None:
                github[field] = value
            elif isinstance(github.get(field), str):  # blank
                del github[field]
        if github:
            data["github"] = github
        else:
            data.pop("github", None)
        return data


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
        assert isinstance(env_settings, EnvSettingsSource)
        env = EnvWithGitHubAliases(settings_cls, env_settings)
        return (init_settings, env, TomlConfigSettingsSource(settings_cls))

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


# read by another part of bggscore (the workflow lint script), not by Settings
OTHER_VARIABLES = {"BGGSCORE_LINT_TOOLS"}


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
        if not key.startswith("BGGSCORE_") or key in OTHER_VARIABLES | GITHUB_ALIASES:
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


def setting_origin(settings: Settings, group: str, key: str) -> str | None:
    """Which setting gave ``group.key`` its value, for messages: its environment variable,
    ``group.key in FILE`` for the config file, or None when it is the default."""
    variable = f"BGGSCORE_{group}__{key}".upper()
    if any(name.upper() == variable for name in os.environ):  # names are case-insensitive
        return variable
    path = type(settings).model_config.get("toml_file")
    if isinstance(path, (str, Path)):
        try:
            data = TomlConfigSettingsSource(Settings, toml_file=Path(path))()
        except (OSError, ValueError):  # read once already; gone or changed since
            return None
        if isinstance(data.get(group), dict) and key in data[group]:
            return f"{group}.{key} in {path}"
    return None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    secret = first["loc"][:1] == ("github",)  # a misspelt key may still hold the token
    quiet = secret or isinstance(value, dict) or value is None or str(value) in message
    shown = "" if quiet else f" (got {value!r})"
    extra = f"; {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"invalid setting {where}: {message}{shown}{extra}"

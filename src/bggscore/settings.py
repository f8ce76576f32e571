"""Settings: one pydantic-settings root with nested groups.

Precedence, highest first: command-line flags > ``BGGSCORE_*`` environment
variables (``__`` separates nesting, e.g. ``BGGSCORE_WAREHOUSE__ENGINE``) > the
config file (``--config PATH`` or ``./bggscore.toml``) > defaults.

The GitHub settings also read aliases (:data:`GITHUB_VARIABLES`), as environment
variables of the same rank: ``github.token`` from ``BGGSCORE_GITHUB__TOKEN``, else
``BGGSCORE_GITHUB_TOKEN``, else ``GITHUB_TOKEN``; ``github.api_url`` from
``BGGSCORE_GITHUB__API_URL``, else ``BGGSCORE_GITHUB_API_URL``. A blank one counts as unset.

What is refused, as one :class:`ConfigError` naming the setting and where its value came
from: an unknown key in the config file, an unknown ``BGGSCORE_A__B`` variable (an unknown
``BGGSCORE_X`` is only warned about, by the CLI: CI systems set variables of their own), a
config file or ``BGGSCORE_<GROUP>`` JSON value that cannot be parsed, a number that is not
finite (every float setting), a count past :data:`~bggscore.stages.MAX_COUNT`, and an empty
path (it would mean the current folder). :func:`explain_settings` says where each effective
setting came from (``bggscore config show``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

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
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bggscore.errors import ConfigError
from bggscore.stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBED_BATCH_SIZE,
    MAX_COUNT,
    MAX_WORKERS,
    OWN_EMBEDDINGS,
)

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
DATASET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
CONFIG_FILE = "bggscore.toml"
# BigQuery bills at least 10 MiB for each table a query reads: a lower cap fails every query
MINIMUM_BYTES_BILLED = 10 * 2**20


def check_identifier(value: str, pattern: re.Pattern[str], what: str) -> str:
    """Reject anything that is not a plain identifier; identifiers are never parameters."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid identifier")
    return value


def non_empty_path(value: Any) -> Any:
    """An empty path would silently mean the current folder: refuse it."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("an empty path would mean the current folder; give a path")
    return value


class Group(BaseModel):
    """A nested settings group; unknown keys are typos, so they are errors.

    ``allow_inf_nan=False``: every float setting must be a finite number (a NaN prior
    would write NaN predictions, an infinite timeout never ends)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    leases: str = "bggscore_leases"

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
        384,
        ge=64,
        le=2**44 - 1,  # DuckDB counts the limit in bytes, in 64 bits
        description="DuckDB buffer pool in MiB (it spills to disk beyond this)",
    )
    lease_minutes: float = Field(
        30.0,
        ge=1,
        le=10080,
        description="BigQuery: how long a run's stage lease lasts unrenewed (a stopped "
        "run's stages are free again after this)",
    )
    maximum_bytes_billed: int | None = Field(
        None,
        ge=MINIMUM_BYTES_BILLED,
        le=2**63 - 1,
        description="BigQuery: the most bytes one query job may bill (it fails, billing "
        "nothing, beyond); default 4x the catalogue's size, at least 1 GiB",
    )
    tables: TableNames = TableNames()

    @field_validator("path", mode="before")
    @classmethod
    def _path_not_empty(cls, value: Any) -> Any:
        return non_empty_path(value)

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
    # NoDecode: the environment variable may be a JSON list or os.pathsep-separated paths
    code_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="folders put on the import path to unpickle imported models' own code",
    )
    allow_version_mismatch: bool = Field(
        False, description="load an imported pickle made with another scikit-learn anyway"
    )

    @field_validator("code_paths", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    raise ValueError(f"not a JSON list of folders ({exc})") from None
            else:
                value = [part for part in text.split(os.pathsep) if part.strip()]
        if isinstance(value, list):
            for item in value:
                non_empty_path(item)
        return value


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
    batch_size: int = Field(DEFAULT_BATCH_SIZE, gt=0, le=MAX_COUNT)
    embed_batch_size: int = Field(DEFAULT_EMBED_BATCH_SIZE, gt=0, le=MAX_COUNT)
    # processes computing `score` batches' predictions (the parent reads and writes)
    workers: int = Field(1, gt=0, le=MAX_WORKERS)
    # imported models' landing complexity and rating go out unclipped, as production's do;
    # true bounds them to [1, 5] and [1, 10]
    clip_outputs: bool = False


# production's table of description embeddings (game_id, embedding ARRAY<FLOAT64>)
DEFAULT_EMBEDDINGS_TABLE = "predictions.bgg_description_embeddings"


class FeaturesSettings(Group):
    """Inputs the models read that no bggscore stage computes."""

    embeddings_table: str = Field(
        DEFAULT_EMBEDDINGS_TABLE,
        description="the (game_id, embedding) table emb_* models read: dataset.table or "
        f'project.dataset.table (features project by default), or "{OWN_EMBEDDINGS}" for '
        "bggscore's own description embeddings",
    )

    @field_validator("embeddings_table")
    @classmethod
    def _embeddings_table(cls, value: str) -> str:
        if value != OWN_EMBEDDINGS:
            table_parts(value)
        return value

    def embeddings_parts(self) -> tuple[str | None, str, str]:
        """(project or None, dataset, table) of the embeddings table; with the opt-in word,
        the default table's (the name `warehouse load --embeddings` would fill)."""
        if self.embeddings_table == OWN_EMBEDDINGS:
            return table_parts(DEFAULT_EMBEDDINGS_TABLE)
        return table_parts(self.embeddings_table)


def table_parts(value: str) -> tuple[str | None, str, str]:
    """``dataset.table`` or ``project.dataset.table``, each part a valid identifier."""
    parts = value.split(".")
    if len(parts) not in (2, 3):
        raise ValueError(
            f"table {value!r} must be dataset.table or project.dataset.table "
            f'(or "{OWN_EMBEDDINGS}")'
        )
    *project, dataset, table = parts
    if project:
        check_identifier(project[0], PROJECT_RE, "project")
    check_identifier(dataset, DATASET_RE, "dataset")
    check_identifier(table, TABLE_RE, "table name")
    return (project[0] if project else None), dataset, table


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
        allow_inf_nan=False,
    )

    # the config file's contents and path (load_settings fills them in on a subclass)
    file_data: ClassVar[dict[str, Any]] = {}
    file_path: ClassVar[Path | None] = None

    home: Path = Field(
        Path(".bggscore"), description="local state: warehouse file, registry, locks"
    )
    source_environment: str = "dev"
    warehouse: WarehouseSettings = WarehouseSettings()
    registry: RegistrySettings = RegistrySettings()
    models: ModelSettings = ModelSettings()
    scoring: ScoringSettings = ScoringSettings()
    features: FeaturesSettings = FeaturesSettings()
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
        assert issubclass(settings_cls, Settings)
        file = InitSettingsSource(settings_cls, settings_cls.file_data)
        return (init_settings, env, file)

    @field_validator("home", mode="before")
    @classmethod
    def _home_not_empty(cls, value: Any) -> Any:
        return non_empty_path(value)

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


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
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


def is_nested(variable: str) -> bool:
    """``BGGSCORE_A__B``: a variable that names a key inside a group."""
    return "__" in variable.removeprefix("BGGSCORE_")


def check_nested_variables(environ: Mapping[str, str]) -> None:
    """An unknown ``BGGSCORE_A__B`` is a typo of a setting: an error, like an unknown key in
    the config file. (Unknown keys inside a known group are refused by validation.)"""
    nested = [name for name in unknown_variables(environ) if is_nested(name)]
    if nested:
        group = nested[0].removeprefix("BGGSCORE_").partition("__")[0].lower()
        groups = [n for n, f in Settings.model_fields.items() if isinstance(f.default, BaseModel)]
        more = f"; {len(nested) - 1} more" if len(nested) > 1 else ""
        raise ConfigError(
            f"{nested[0]} is not a bggscore setting: {group!r} is not a settings group "
            f"(groups: {', '.join(groups)}){more}"
        )


def _config_path(config: Path | None) -> Path | None:
    """The config file the settings read: ``--config``, else ./bggscore.toml when present."""
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"config file {config} not found", "check --config")
        return config
    path = Path.cwd() / CONFIG_FILE
    return path if path.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The config file's TOML, or one ConfigError saying why it cannot be read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # editors on Windows start a file with a byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); it must be TOML"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _settings_class(config: Path | None) -> tuple[type[Settings], Path | None]:
    path = _config_path(config)
    data = read_config_file(path) if path is not None else {}

    class _FileSettings(Settings):
        file_data: ClassVar[dict[str, Any]] = data
        file_path: ClassVar[Path | None] = path

    return _FileSettings, path


def load_settings(config: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from flags (``overrides``, nested dicts), env, the config file, defaults."""
    environ = dict(os.environ)
    check_nested_variables(environ)
    settings_cls, _ = _settings_class(config)
    try:
        return settings_cls(**(overrides or {}))
    except ValidationError as exc:
        origins = _origins(settings_cls, overrides or {}, environ)
        raise ConfigError(describe_validation_error(exc, origins)) from None
    except SettingsError as exc:  # a BGGSCORE_<GROUP> variable that is not JSON
        raise ConfigError(describe_unparsable_variable(exc, environ)) from None


def setting_origin(settings: Settings, group: str, key: str) -> str | None:
    """Which setting gave ``group.key`` its value, for messages: its environment variable,
    ``group.key in FILE`` for the config file, or None when it is the default."""
    variable = f"BGGSCORE_{group}__{key}".upper()
    if any(name.upper() == variable for name in os.environ):  # names are case-insensitive
        return variable
    data = getattr(type(settings), "file_data", None) or {}
    path = getattr(type(settings), "file_path", None)
    if path is not None and isinstance(data.get(group), dict) and key in data[group]:
        return f"{group}.{key} in {path}"
    return None


def describe_validation_error(
    exc: ValidationError, origins: Mapping[tuple[str, ...], Origin] | None = None
) -> str:
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    where = ".".join(loc) or "settings"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "no such setting"
    value = first.get("input")
    secret = loc[:1] == ("github",)  # a misspelt key may still hold the token
    quiet = secret or isinstance(value, dict) or value is None or str(value) in message
    details = [] if quiet else [f"got {value!r}"]
    origin = origin_of(origins or {}, loc)
    if origin.name is not None:
        details.append(f"from {origin.name}")
    shown = f" ({'; '.join(details)})" if details else ""
    extra = f"; {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"invalid setting {where}: {message}{shown}{extra}"


def _group_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The settings group at ``path`` (``()`` is the root), or None when it is no group."""
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def describe_unparsable_variable(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """pydantic-settings reads a group's variable (``BGGSCORE_WAREHOUSE``) as JSON; say which
    variable is not JSON (never its value: it may hold the token)."""
    found = re.search(r'field "(\w+)"', str(exc))
    field = found.group(1) if found else ""
    prefix = f"BGGSCORE_{field.upper()}"
    for name in sorted(environ):
        upper = name.upper()
        if not (upper == prefix or upper.startswith(prefix + "__")):
            continue
        path = tuple(upper.removeprefix("BGGSCORE_").lower().split("__"))
        group = _group_at(path)
        if group is None:
            continue
        try:
            json.loads(environ[name])
        except ValueError as error:
            example = f"{upper}__{next(iter(group.model_fields)).upper()}"
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            return (
                f"{name} is not valid JSON ({reason}); it sets the {'.'.join(path)} group as "
                f"one JSON object: set one key per variable instead, e.g. {example}"
            )
    return f"cannot read the {field or 'settings'} settings from the environment: {exc}"


# -- where each setting came from (`bggscore config show`, error messages) -----------------
SOURCES = ("flag", "env", "file", "default")  # highest precedence first


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from: its source and the flag, variable or file."""

    source: Literal["flag", "env", "file", "default"]
    name: str | None = None


DEFAULT = Origin("default")


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _variable(path: tuple[str, ...], environ: Mapping[str, str]) -> str:
    """The variable a value read from the environment came from."""
    upper = {name.upper(): value for name, value in environ.items()}
    if path[:1] == ("github",) and len(path) == 2 and path[1] in GITHUB_VARIABLES:
        for name in GITHUB_VARIABLES[path[1]]:  # the first non-blank one wins
            if (upper.get(name) or "").strip():
                return name
    for end in range(len(path), 0, -1):  # BGGSCORE_A__B, else a JSON BGGSCORE_A
        name = "BGGSCORE_" + "__".join(path[:end]).upper()
        if name in upper:
            return name
    return "BGGSCORE_" + "__".join(path).upper()


def _origins(
    settings_cls: type[Settings], overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], Origin]:
    """Each key a source gave, with the source that won (flag > env > file)."""
    origins: dict[tuple[str, ...], Origin] = {}
    for leaf in _leaves(settings_cls.file_data):
        origins[leaf] = Origin("file", str(settings_cls.file_path))
    try:
        env = EnvWithGitHubAliases(settings_cls, EnvSettingsSource(settings_cls))()
    except SettingsError:
        env = {}
    for leaf in _leaves(env):
        origins[leaf] = Origin("env", _variable(leaf, environ))
    for leaf in _leaves(overrides):
        origins[leaf] = Origin("flag", "--" + leaf[-1].replace("_", "-"))
    return origins


def origin_of(origins: Mapping[tuple[str, ...], Origin], path: tuple[str, ...]) -> Origin:
    """Where the value at ``path`` came from (a group: where its first given key did)."""
    if path in origins:
        return origins[path]
    inside = [origin for leaf, origin in origins.items() if leaf[: len(path)] == path]
    return min(inside, key=lambda o: SOURCES.index(o.source)) if inside else DEFAULT


@dataclass(frozen=True)
class Effective:
    """One effective setting as `bggscore config show` prints it (secrets as ***)."""

    key: str
    value: Any
    origin: Origin


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:  # credentials in a URL
            return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    return value


def explain_settings(
    settings: Settings, config: Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Path | None, list[Effective]]:
    """The config file read, and every effective setting with where it came from.

    ``settings`` is what :func:`load_settings` built from the same ``config`` and
    ``overrides``; unset paths show the default they stand for (``<home>/warehouse.duckdb``).
    """
    settings_cls, path = _settings_class(config)
    origins = _origins(settings_cls, overrides or {}, dict(os.environ))
    derived = {
        ("warehouse", "path"): settings.warehouse_path,
        ("registry", "uri"): settings.registry_uri,
    }

    def walk(model: BaseModel, prefix: tuple[str, ...]) -> list[Effective]:
        out = []
        for name in type(model).model_fields:
            value = getattr(model, name)
            key = (*prefix, name)
            if isinstance(value, BaseModel):
                out += walk(value, key)
            else:
                value = derived[key] if value is None and key in derived else value
                out.append(Effective(".".join(key), _shown(value), origin_of(origins, key)))
        return out

    return path, walk(settings, ())

"""The stage graph: bggscore's stages as data, and the defaults every command shares.

Each stage says which command runs it, the model types it loads, the tables it writes,
what it provides to other stages' models (columns such as ``predicted_complexity`` or
``emb_*``) and which stages it always reads. Everything else (the order of `score`,
`embed` and `run`, detection's ``upstream`` reason, the ``--stage`` choices, ``--help``
and the stage lists in ``--json``) reads the graph, so adding a stage is one entry here
plus the task that runs it (docs/architecture.md).

Edges are of two kinds. Static ones come from ``Stage.reads``. Model-derived ones are
resolved once the registry is known: a model whose signature names a column another
stage provides makes its stage read that stage (``StageGraph.with_model_inputs``).

An *input* (``Input``) is a table of per-game values no command computes: the warehouse
fills it (``features.embeddings_table``). A graph that has one (``with_input``) takes the
columns it provides from it before any stage, so a model reading them makes its stage read
the input: its upstream key records a hash of each game's value, and a game without one
is reported, never scored.

Standard library only: the CLI reads this module while building ``--help``.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from bggscore.errors import ConfigError, UsageError

# -- shared defaults ---------------------------------------------------------------------
DEFAULT_START_YEAR = 2024  # inclusive
DEFAULT_END_YEAR = 2029  # exclusive
DEFAULT_MAX_GAMES = 50_000  # per stage and run, with change detection
# the vectors of the embeddings table detection carries to a pass, per stage (more are
# read with the features instead: a detection result of bounded size)
CARRY_LIMIT = 50_000
# One DuckDB row group: a transaction appending at least this many rows to a table has
# them written straight to the database file, not to the log and again at a checkpoint.
DEFAULT_BATCH_SIZE = 122_880
# Embedding a game holds its dense description vector and several matrices: smaller
# batches keep `embed` under 1.5 GiB at the same speed (measured at 500k games).
DEFAULT_EMBED_BATCH_SIZE = 50_000
# The default batch instead for a model that is not bggscore's own: production's pandas
# pipelines copy a batch several times (~1.7 GB at 122,880 games, ~1 GB at 20,000, and
# faster); with `score --workers N` each worker holds its own (~0.5 GB at 10,000).
PANDAS_BATCH_SIZE = 20_000
WORKER_BATCH_SIZE = 10_000
# training splits (production's convention): fit through 2022, tune on 2023, test on 2024
DEFAULT_TRAIN_THROUGH = 2022
DEFAULT_TUNE_YEAR = 2023
DEFAULT_TEST_YEAR = DEFAULT_START_YEAR

# -- limits on sizes a user gives: past them a command is refused before it starts ---------
# Game counts and batch sizes end up in SQL LIMITs, int64 columns and DuckDB's fetch size, so
# the largest int64 is the largest that can work; as --max-games it means "no cap" (a batch
# larger than the selection is simply one batch).
MAX_COUNT = 2**63 - 1
# Interval draws: each Bayesian model holds draws x coefficients (~600) float64 per batch,
# twice, so memory and time grow with the draws whatever the selection (~100 MB per model at
# 10,000, where scoring runs at ~2,000 games/s against ~36,000 at 500). 10,000 draws already
# put the 5th/95th percentiles within ~2% of the outcome's spread of their exact values.
MAX_INTERVAL_DRAWS = 10_000
# `demo --games`: the synthetic catalogue is generated in memory (~1 KB a game before it is
# loaded, ~5 GB here); BGG has ~150k games and the benchmarks go up to 2M.
MAX_DEMO_GAMES = 5_000_000
# `score --workers`: each worker is a process holding its own copy of the models and batches.
MAX_WORKERS = 64

# -- the scoring chain's named columns ---------------------------------------------------
# What an earlier model of the chain gives later ones, by name and meaning; each model reads
# the ones its signature (or its feature builder) names. Production's names and meanings
# first; the last is what bggscore's own direct geek rating model reads.
CHAIN_COLUMNS: dict[str, str] = {
    "predicted_complexity": "the complexity model's prediction",
    "predicted_rating": "the rating model's prediction",
    "predicted_users_rated_log": "log1p of the reported users_rated count "
    "(max(round(expm1(p)/50)*50, 25))",
    "predicted_log_users_rated": "the users_rated model's raw log1p prediction",
}

# -- the stages --------------------------------------------------------------------------
COMPLEXITY = "complexity"
MAIN = "main"
TEXT_EMBEDDINGS = "text-embeddings"
GAME_EMBEDDINGS = "game-embeddings"
STATE_TABLE = "scoring_state"  # one latest-state row per game and stage, for every stage
INPUT_TABLES = ("games_features", "game_features_hash")  # what every stage reads
RUNS_TABLE = "runs"  # one row per job
# the input `features.embeddings_table` names (production's description embeddings), and
# the setting's word for "bggscore's own description embeddings" (the text stage) instead
EMBEDDINGS_TABLE = "embeddings-table"
OWN_EMBEDDINGS = "bggscore"


@dataclass(frozen=True)
class Stage:
    """One stage: what runs it, what it loads, writes and provides, what it reads."""

    name: str
    command: str  # the command that runs it: "score" or "embed"
    model_types: tuple[str, ...]  # in the order the stage applies them
    writes: tuple[str, ...]  # logical tables, besides the state table
    provides: tuple[str, ...] = ()  # columns other stages' models may read (glob patterns)
    reads: tuple[str, ...] = ()  # stages whose outputs it always reads (static edges)
    # what the `features` reason compares: the feature hash, or the md5 of one column
    input_column: str | None = None
    help: str = ""
    # model types the stage scores without when their reference is the default and no
    # such model is registered (their output columns are left NULL)
    optional: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The name without its command's suffix, as `embed --kind` takes it."""
        return self.name.removesuffix("-embeddings")


STAGES: tuple[Stage, ...] = (
    Stage(
        COMPLEXITY,
        "score",
        ("complexity",),
        ("complexity_predictions",),
        provides=("predicted_complexity",),
        help="predicted complexity (average weight)",
    ),
    Stage(
        MAIN,
        "score",
        ("hurdle", "rating", "users_rated", "geek_rating"),
        ("ml_predictions_landing",),
        reads=(COMPLEXITY,),
        help="hurdle, rating, users_rated and geek rating",
        optional=("hurdle",),  # an export of popular games has nothing to learn it from
    ),
    Stage(
        TEXT_EMBEDDINGS,
        "embed",
        ("text_embeddings",),
        ("description_embeddings",),
        provides=("emb_*", "description_embedding"),
        input_column="description",
        help="description embeddings",
    ),
    Stage(
        GAME_EMBEDDINGS,
        "embed",
        ("game_embeddings",),
        ("game_embeddings",),
        reads=(COMPLEXITY, TEXT_EMBEDDINGS),
        help="game embeddings",
    ),
)


@dataclass(frozen=True)
class Input:
    """Per-game values a model may read that no bggscore command computes: a table of
    (game_id, embedding ARRAY<FLOAT64>) the warehouse fills. Never run, never ordered."""

    name: str  # as upstream keys (`<name>:<hash>`) and `missing_inputs` name it
    table: str  # its logical table (warehouse/schemas.py)
    provides: tuple[str, ...]  # the columns (glob patterns) models read from it
    setting: str  # the setting that names the table, for messages
    load: str  # what fills it in the embedded warehouse, for messages


EMBEDDINGS_INPUT = Input(
    EMBEDDINGS_TABLE,
    "embeddings_input",
    ("emb_*",),
    "features.embeddings_table",
    "bggscore warehouse load --embeddings FILE.parquet",
)


class StageCycleError(ConfigError):
    """The configured models' inputs make a stage read its own output, directly or through
    others: a choice of models that cannot run together (exit 2, nothing is done)."""


@dataclass(frozen=True)
class StageGraph:
    """The stages and, for each, the stages it reads (in the order they are declared)."""

    stages: tuple[Stage, ...]
    # model-derived edges: stage -> {upstream stage or input: the models that read it}
    derived: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    inputs: tuple[Input, ...] = ()  # they provide their columns before any stage does

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages] + [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        for stage in self.stages:
            unknown = [r for r in stage.reads if r not in names]
            if unknown:
                raise ValueError(f"stage {stage.name} reads unknown stage(s) {unknown}")
            if not set(stage.optional) <= set(stage.model_types):
                raise ValueError(f"stage {stage.name}'s optional models are not among its own")
        self.order()  # a cycle is an error as soon as the graph exists

    # -- lookups -------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Every stage, in graph order."""
        return tuple(self.order())

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def for_command(self, command: str) -> tuple[str, ...]:
        """The stages a command runs, in graph order."""
        return tuple(s for s in self.order() if self.get(s).command == command)

    def model_types(self, stages: Iterable[str] | None = None) -> tuple[str, ...]:
        chosen = self.names if stages is None else tuple(stages)
        return tuple(t for s in chosen for t in self.get(s).model_types)

    def stage_of(self, model_type: str) -> str:
        for stage in self.stages:
            if model_type in stage.model_types:
                return stage.name
        raise KeyError(model_type)

    def upstream(self, name: str) -> tuple[str, ...]:
        """The stages whose outputs ``name`` reads, static and model-derived, in
        declaration order (the order their job ids are recorded in)."""
        stage = self.get(name)
        wanted = set(stage.reads) | set(self.derived.get(name, {}))
        return tuple(s.name for s in self.stages if s.name in wanted)

    def input(self, name: str) -> Input:
        for found in self.inputs:
            if found.name == name:
                return found
        raise KeyError(name)

    def inputs_of(self, name: str) -> tuple[str, ...]:
        """The inputs ``name``'s models read themselves (after its upstream stages, the
        parts of its upstream key)."""
        edges = self.derived.get(name, {})
        return tuple(i.name for i in self.inputs if i.name in edges)

    def inputs_needed(self, name: str) -> tuple[str, ...]:
        """The inputs a game must have for ``name`` to score it: its own and those of
        the stages it reads, directly or through others."""
        needed = set(self.inputs_of(name))
        for upstream in self.upstream(name):
            needed |= set(self.inputs_needed(upstream))
        return tuple(i.name for i in self.inputs if i.name in needed)

    def input_readers(self, name: str) -> dict[str, tuple[str, ...]]:
        """For an input, each stage whose models read it -> those models."""
        return {stage: edges[name] for stage, edges in self.derived.items() if name in edges}

    def tables(self, stages: Iterable[str]) -> list[str]:
        """The tables a command running ``stages`` needs: the inputs, what the stages and
        the stages they read write, the state table and the runs table."""
        chosen = set(stages)
        wanted = chosen | {u for s in chosen for u in self.upstream(s)}
        writes = [t for s in self.order(wanted) for t in self.get(s).writes]
        return [*INPUT_TABLES, *dict.fromkeys(writes), STATE_TABLE, RUNS_TABLE]

    def provider(self, column: str) -> str | None:
        """The input or stage that provides ``column`` to other stages' models, if any
        (an input first: with one, ``emb_*`` comes from its table, not the text stage)."""
        sources: tuple[Input | Stage, ...] = (*self.inputs, *self.stages)
        for source in sources:
            if any(fnmatch.fnmatchcase(column, pattern) for pattern in source.provides):
                return source.name
        return None

    # -- order ---------------------------------------------------------------------------
    def order(self, chosen: Iterable[str] | None = None) -> list[str]:
        """Stages in dependency order (declaration order among the ready ones); with
        ``chosen``, only those. A cycle is a StageCycleError naming the models."""
        pending = [s.name for s in self.stages]
        done: list[str] = []
        while pending:
            ready = [s for s in pending if all(u in done for u in self.upstream(s))]
            if not ready:
                raise self._cycle_error(pending)
            done.append(ready[0])
            pending.remove(ready[0])
        if chosen is None:
            return done
        wanted = set(chosen)
        return [s for s in done if s in wanted]

    def _cycle_error(self, pending: list[str]) -> StageCycleError:
        """Name the models along one cycle among the stages that could not be ordered."""
        # every pending stage has a pending upstream: walk them until a stage repeats
        path = [pending[0]]
        while True:
            step = next(u for u in self.upstream(path[-1]) if u in pending)
            if step in path:
                cycle = [*path[path.index(step) :], step]
                break
            path.append(step)
        parts = []
        for stage, upstream in itertools.pairwise(cycle):
            models = self.derived.get(stage, {}).get(upstream)
            who = ", ".join(models) if models else f"stage {stage}"
            parts.append(f"{who} ({stage}) read(s) {upstream}'s output")
        detail = "; ".join(parts)
        return StageCycleError(
            f"the models' inputs make stages read their own output: {detail}",
            "register or configure models that do not read the output of their own stage",
        )

    # -- model-derived edges -------------------------------------------------------------
    def with_model_inputs(self, inputs: Mapping[str, Iterable[str]]) -> StageGraph:
        """The graph once the models are known: ``inputs`` maps a model (its type, or a
        label ``type name:version``) to the columns its signature names. A column that
        another stage (or an input) provides adds an edge from it; one its own stage
        provides is a cycle."""
        derived: dict[str, dict[str, tuple[str, ...]]] = {
            stage: dict(edges) for stage, edges in self.derived.items()
        }
        for model, columns in inputs.items():
            stage = self.stage_of(model.split(" ", 1)[0])
            for column in columns:
                upstream = self.provider(column)
                if upstream is None:
                    continue
                edges = derived.setdefault(stage, {})
                if model not in edges.get(upstream, ()):
                    edges[upstream] = (*edges.get(upstream, ()), model)
        for stage, edges in derived.items():
            if stage in edges:
                raise StageCycleError(
                    f"{', '.join(edges[stage])} ({stage}) read(s) the output of its own stage",
                    "register or configure models that do not read the output of their own stage",
                )
        return replace(self, derived=derived)

    def with_stage(self, stage: Stage) -> StageGraph:
        """A copy with one more stage (declared last)."""
        return replace(self, stages=(*self.stages, stage))

    def with_input(self, source: Input) -> StageGraph:
        """A copy where ``source`` provides its columns (before any stage that does)."""
        return replace(self, inputs=(*self.inputs, source))


GRAPH = StageGraph(STAGES)

# Derived names the rest of bggscore reads (never re-typed elsewhere)
STAGE_NAMES = GRAPH.names
MODEL_TYPES = GRAPH.model_types()
SCORE_STAGES = GRAPH.for_command("score")
EMBED_STAGES = GRAPH.for_command("embed")


def stage_choices(command: str | None = None, *, all_word: bool = True) -> str:
    """``complexity, main or all``: the choices a ``--stage`` help text lists."""
    names = list(GRAPH.for_command(command) if command else GRAPH.names)
    if all_word:
        return f"{', '.join(names)} or all"
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def chosen_stages(value: str, names: Iterable[str], choices: str) -> list[str]:
    """A ``--stage`` value: one of ``names``, several with commas, or all; the stages in
    ``names``' order. A stray comma is a usage error, not a silent "all" (``choices``: what
    to choose from, for the messages)."""
    names = list(names)
    parts = [part.strip() for part in value.split(",")]
    if "" in parts:
        raise UsageError(f"--stage {value!r} names an empty stage; choose {choices}")
    for part in parts:
        if part != "all" and part not in names:
            raise UsageError(f"unknown --stage {part!r}; choose {choices}")
    return names if "all" in parts else [name for name in names if name in parts]


def model_setting(model_type: str) -> str:
    """The environment variable that names a type's model."""
    return f"BGGSCORE_MODELS__{model_type.upper()}"

"""The models a command uses: resolved from settings and the registry, verified,
checked against the warehouse, and the stage graph their signatures make."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bggscore.errors import BggscoreError, InputError, RegistryError, UnknownModelError, UsageError
from bggscore.stages import (
    CHAIN_COLUMNS,
    COMPLEXITY,
    EMBED_STAGES,
    EMBEDDINGS_INPUT,
    GRAPH,
    MAIN,
    OWN_EMBEDDINGS,
    SCORE_STAGES,
    StageGraph,
    model_setting,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from bggscore.console import Console
    from bggscore.registry import LoadedModel, Registry
    from bggscore.settings import Settings

SCORING_TYPES = GRAPH.model_types(SCORE_STAGES)


def parse_model_overrides(values: list[str]) -> dict[str, str]:
    """``--model TYPE=REF`` flags -> {type: ref}."""
    out: dict[str, str] = {}
    for value in values:
        model_type, sep, ref = value.partition("=")
        model_type, ref = model_type.strip(), ref.strip()
        if not sep or not model_type or not ref:
            raise UsageError(
                f"--model {value!r} must look like TYPE=REF, e.g. rating=rating@champion"
            )
        if model_type not in SCORING_TYPES:
            raise UsageError(
                f"--model {value!r}: unknown model type {model_type!r}; "
                f"choose from {', '.join(SCORING_TYPES)}"
            )
        out[model_type] = ref
    return out


@dataclass(frozen=True)
class GeekFormula:
    """The bayesian geek rating: (R*v + prior_rating*prior_weight) / (v + prior_weight)."""

    prior_rating: float
    prior_weight: float

    @property
    def key(self) -> str:
        return f"bayesian(prior_rating={self.prior_rating:g},prior_weight={self.prior_weight:g})"


@dataclass
class ModelSet:
    """Loaded models by type; ``geek_formula`` is set when no direct geek model is used;
    ``absent``: optional types (``Stage.optional``) scored without, none being registered."""

    models: dict[str, LoadedModel]
    geek_formula: GeekFormula | None
    absent: tuple[str, ...] = ()

    def label(self, model_type: str) -> str:
        if model_type == "geek_rating" and self.geek_formula is not None:
            return self.geek_formula.key
        return self.models[model_type].registration.label

    def labels(self) -> dict[str, str]:
        """Model type -> what scored it (name:version, or the geek formula)."""
        out = {t: self.label(t) for t in self.models}
        if self.geek_formula is not None:
            out["geek_rating"] = self.geek_formula.key
        return out

    def stage_key(self, stage: str) -> str:
        """Names and versions a stage uses: a change of either means rescoring."""
        return ";".join(
            f"{t}={self.label(t)}"
            for t in GRAPH.get(stage).model_types
            if t in self.models or (t == "geek_rating" and self.geek_formula)
        )

    def fingerprint(self) -> str:
        parts = [
            f"{t}={m.registration.label}:{m.registration.sha256}"
            for t, m in sorted(self.models.items())
        ]
        if self.geek_formula:
            parts.append(self.geek_formula.key)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def training_cutoff_year(self) -> int | None:
        years: list[Any] = [
            m.registration.training.get("test_through")
            for m in self.models.values()
            if m.registration.training.get("test_through") is not None
        ]
        return int(min(years)) if years else None

    def reads_embeddings(self, stage: str) -> bool:
        """Whether a model of the stage reads description embeddings as ``emb_*`` columns."""
        return any(
            column.name.startswith("emb_")
            for t in GRAPH.get(stage).model_types
            if t in self.models
            for column in self.models[t].registration.signature
        )

    def embedding_width(self, stage: str) -> int | None:
        """How many ``emb_*`` columns the stage's models read (``emb_0 .. emb_{n-1}``: the
        widest), or None when none does."""
        widths = [
            _embedding_index(column.name) + 1
            for t in GRAPH.get(stage).model_types
            if t in self.models
            for column in self.models[t].registration.signature
            if _embedding_index(column.name) >= 0
        ]
        return max(widths) if widths else None

    def read_columns(self) -> list[str]:
        """Warehouse columns a scoring pass reads (chain inputs are produced in-process):
        what a model's feature builder reads (a description's length, not its text),
        else the warehouse columns of its signature."""
        needed: list[str] = []
        for loaded in self.models.values():
            columns = builder_reads(loaded.model)
            if columns is None:
                columns = [c.name for c in loaded.registration.signature if _read(c)]
            needed += [c for c in columns if c not in needed]
        return needed

    def declared_reads(self) -> list[str] | None:
        """``read_columns`` from the registrations alone, before any model is loaded: an
        import reads its signature's warehouse columns, bggscore's own training records
        what its model reads (``Registration.reads``); None when a registration says
        neither (a model registered from a file: known once loaded) or names a column a
        features read does not have. A hint: the pass reads again should the loaded models
        read more (a registration edited, or older than the builder it names)."""
        from bggscore.warehouse.queries import DERIVED_COLUMNS
        from bggscore.warehouse.schemas import GAMES_FEATURES

        known = {*GAMES_FEATURES.names, *DERIVED_COLUMNS}
        needed: list[str] = []
        for loaded in self.models.values():
            registration = loaded.registration
            if registration.imported is not None:
                columns = [c.name for c in registration.signature if _read(c)]
            elif registration.reads is not None:
                columns = registration.reads
            else:
                return None
            needed += [c for c in columns if c not in needed]
        return needed if self.models and known.issuperset(needed) else None

    def signature_columns(self) -> list[str]:
        """The games_features columns the models' signatures name (a superset of what
        they read: ``description`` where a builder reads only its length)."""
        names = [
            column.name
            for loaded in self.models.values()
            for column in loaded.registration.signature
            if _read(column)
        ]
        return list(dict.fromkeys(names))

    def check_columns(self, available: dict[str, str]) -> None:
        missing: dict[str, list[str]] = {}
        for loaded in self.models.values():
            for column in loaded.registration.signature:
                if not _read(column):
                    continue  # produced by the chain or another stage, not read
                if column.name not in available:
                    missing.setdefault(column.name, []).append(loaded.registration.label)
        if missing:
            listing = ", ".join(f"{c} (needed by {', '.join(m)})" for c, m in missing.items())
            raise InputError(
                f"the warehouse's games_features lacks column(s) the models need: {listing}",
                "add them to the table or score with models that do not use them",
            )


def builder_reads(model: Any) -> list[str] | None:
    """What a model's own feature builder reads from the warehouse, its chain inputs
    left out; None for a model without one (it reads its signature's columns)."""
    steps = getattr(model, "steps", None)
    builder: Any = steps[0][1] if steps else None
    if not hasattr(builder, "read_columns"):
        return None
    chain = set(builder.chain_inputs)
    return [c for c in builder.read_columns() if c not in chain]


def _read(column: Any) -> bool:
    """Whether a signature column is read from the warehouse's games_features: not a chain
    column (an earlier model's prediction) nor another stage's output."""
    if (column.model_extra or {}).get("source") == "chain" or column.name in CHAIN_COLUMNS:
        return False
    return GRAPH.provider(column.name) is None


def _embedding_index(column: str) -> int:
    """``emb_7`` -> 7; -1 for any other column."""
    index = column.removeprefix("emb_")
    return int(index) if column.startswith("emb_") and index.isdigit() else -1


def resolve_models(
    settings: Settings,
    registry: Registry,
    stages: list[str],
    overrides: dict[str, str],
    load: bool = True,
) -> ModelSet:
    """Resolve every model the stages need and, with ``load``, unpickle it (sha256 first).

    Without ``load`` only registrations are read: enough for stage keys, which is all
    change detection needs, so a no-op run never unpickles a model.

    An optional model type (the hurdle) whose reference is the default, with no model of
    that name registered, is left out (``ModelSet.absent``): its stage key then names the
    other models only, so registering one later is a ``model`` change. A reference the
    user set that does not resolve is an error.
    """
    wanted = list(GRAPH.model_types(stages))
    refs: dict[str, tuple[Any, str | None]] = {
        t: _reference(settings, overrides, t) for t in wanted
    }
    formula = None
    if "geek_rating" in refs and refs["geek_rating"][0] is None:
        formula = GeekFormula(settings.scoring.prior_rating, settings.scoring.prior_weight)
        del refs["geek_rating"]
    if MAIN in stages and COMPLEXITY not in refs:
        # the main stage reads predicted complexity, so its lineage includes the model
        refs[COMPLEXITY] = _reference(settings, overrides, COMPLEXITY)
    optional = {
        t
        for stage in stages
        for t in GRAPH.get(stage).optional
        if t not in overrides and t not in settings.models.model_fields_set
    }
    models, absent = {}, []
    for model_type, (ref, origin) in refs.items():
        try:
            models[model_type] = _load(registry, model_type, ref, origin, load)
        except BggscoreError:
            if model_type not in optional or ref in registry.names(model_type):
                raise
            absent.append(model_type)
    return ModelSet(models, formula, tuple(absent))


def base_graph(settings: Settings) -> StageGraph:
    """The stage graph before the models are known: with the embeddings input unless
    ``features.embeddings_table`` opts into bggscore's own description embeddings (then
    ``emb_*`` comes from the text stage)."""
    if settings.features.embeddings_table == OWN_EMBEDDINGS:
        return GRAPH
    return GRAPH.with_input(EMBEDDINGS_INPUT)


def model_graph(settings: Settings, registry: Registry, overrides: dict[str, str]) -> StageGraph:
    """The stage graph with the edges the models' signatures add (registrations only).

    Every stage's models are read, whichever stages a command runs: whether an upstream
    stage is behind depends on its own upstream, and a cycle is an error for every
    command alike. A model that is not registered adds no edge; the command that needs
    it says so where it resolves the stage's models.
    """
    inputs: dict[str, list[str]] = {}
    for model_type in GRAPH.model_types():
        ref, origin = _reference(settings, overrides, model_type)
        if ref is None:  # the geek rating's formula reads nothing of other stages
            continue
        try:
            registration = _load(registry, model_type, ref, origin, False).registration
        except RegistryError:
            continue
        inputs[f"{model_type} {registration.label}"] = [c.name for c in registration.signature]
    return base_graph(settings).with_model_inputs(inputs)


def _reference(
    settings: Settings, overrides: dict[str, str], model_type: str
) -> tuple[str | None, str | None]:
    """The reference for `model_type` and where it came from: ``--model TYPE=REF``, the
    setting that named it (an environment variable or the config file), or None for the
    default."""
    from bggscore.settings import setting_origin

    if model_type in overrides:
        return overrides[model_type], f"--model {model_type}={overrides[model_type]}"
    return getattr(settings.models, model_type), setting_origin(settings, "models", model_type)


def _load(
    registry: Registry, model_type: str, ref: str, origin: str | None, load: bool
) -> LoadedModel:
    """Resolve (and with `load`, unpickle) one reference; a reference that is malformed or
    names nothing registered says where it came from (`origin`)."""
    from bggscore.registry import LoadedModel

    try:
        if not load:
            return LoadedModel(registry.resolve(ref, model_type), None)
        return registry.load(ref, model_type)
    except UnknownModelError as exc:
        where = f"{origin}: " if origin else ""
        raise UnknownModelError(
            where + exc.message, _unknown_hint(registry, model_type, origin)
        ) from None
    except UsageError as exc:  # a malformed reference
        if origin is None:
            raise
        raise UsageError(f"{origin}: {exc.message}", exc.hint) from None


def _unknown_hint(registry: Registry, model_type: str, origin: str | None) -> str:
    """What to do about a reference naming nothing registered (the message already lists
    the names, versions or aliases that exist), never what the user just did."""
    if registry.names(model_type):
        fix = f"`bggscore models list --type {model_type}` shows every version and alias"
    else:
        fix = f"train one with `bggscore models train --outcome {model_type}`"
    if origin is None:  # the default reference: say how to name another
        # embedding models have no --model flag: their reference is a setting
        setting = model_setting(model_type)
        flag = f"--model {model_type}=REF or " if model_type in SCORING_TYPES else ""
        fix += f", or name one with {flag}{setting}=REF"
    return fix


def open_settings_registry(settings: Settings) -> Registry:
    from bggscore.registry import open_registry

    return open_registry(
        settings.registry.uri,
        settings.home,
        code_paths=settings.registry.code_paths,
        allow_version_mismatch=settings.registry.allow_version_mismatch,
    )


def configured_ref(settings: Settings, model_type: str) -> str | None:
    return getattr(settings.models, model_type)


def default_name(settings: Settings, model_type: str) -> str:
    from bggscore.registry import parse_ref

    ref = configured_ref(settings, model_type)
    return parse_ref(ref).name if ref else model_type


def stage_keys(
    settings: Settings, stages: list[str], overrides: dict[str, str], explicit: bool
) -> dict[str, str]:
    """The model key each stage would record now (see ``stage_plan``)."""
    return stage_plan(settings, stages, overrides, explicit)[1]


def stage_plan(
    settings: Settings, stages: list[str], overrides: dict[str, str], explicit: bool
) -> tuple[StageGraph, dict[str, str]]:
    """The stage graph the models make, and the model key each stage would record now,
    in graph order (registrations only, nothing unpickled).

    With ``--stage all`` an embedding stage without a registered model is left out;
    asked for by name, it is an error that says how to train one.
    """
    registry = open_settings_registry(settings)
    graph = model_graph(settings, registry, overrides)
    keys = {}
    for stage in graph.order(stages):
        try:
            plan = resolve_models(settings, registry, [stage], overrides, load=False)
        except RegistryError:
            if stage in EMBED_STAGES and not explicit:
                continue
            raise
        keys[stage] = plan.stage_key(stage)
    return graph, keys


def warn_left_out(console: Console, wanted: list[str], kept: Collection[str]) -> None:
    """Say which embedding stages `stage_keys` left out for want of a model, and the fix."""
    for stage in [s for s in wanted if s not in kept]:
        [model_type] = GRAPH.get(stage).model_types
        console.warn(
            f"{stage}: no {model_type} model registered, stage skipped "
            f"(train one with `bggscore models train --outcome {model_type}`)"
        )


def outside_keys(
    settings: Settings,
    registry: Registry,
    graph: StageGraph,
    stage: str,
    running: list[str] | tuple[str, ...],
    overrides: dict[str, str],
) -> dict[str, str]:
    """The model keys of the stages ``stage`` reads that this command does not run (for
    `detection.behind`); a stage with no registered model is left out."""
    keys = {}
    for upstream in graph.upstream(stage):
        if upstream in running:
            continue
        try:
            plan = resolve_models(settings, registry, [upstream], overrides, load=False)
        except RegistryError:
            continue
        keys[upstream] = plan.stage_key(upstream)
    return keys

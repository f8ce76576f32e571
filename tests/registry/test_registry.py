"""The Registry: register, resolve, aliases, archive, verified loading, verify."""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest

from bggscore.errors import (
    InputError,
    IntegrityError,
    RegistryError,
    UnknownModelError,
    UsageError,
)
from bggscore.registry import (
    LocalStore,
    ModelRef,
    Registration,
    Registry,
    RegistryWarning,
    clear_cache,
    open_registry,
    read_signature_file,
)

MakeModel = Callable[..., Any]
MakeFields = Callable[..., dict[str, Any]]

# Records every time a Tripwire is unpickled: the proof that tampered bytes never are.
UNPICKLED: list[str] = []


class Tripwire:
    """A model whose unpickling leaves a trace."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __setstate__(self, state: dict[str, Any]) -> None:
        UNPICKLED.append(state["tag"])
        self.__dict__.update(state)

    def predict(self, rows: list[float]) -> list[float]:
        return rows


def register(registry: Registry, name: str, model: Any, model_type: str = "rating") -> Registration:
    return registry.register(model_type, name, model, signature=["a", "b"])


def make_classifier() -> Any:
    """A LogisticRegression fitted on named columns `a` and `b`: a model the hurdle can be."""
    import polars as pl
    from sklearn.linear_model import LogisticRegression

    frame = pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    return LogisticRegression().fit(frame, [0, 0, 1, 1])


def artifact_key(registration: Registration) -> str:
    folder = f"{registration.model_type}/{registration.name}/v{registration.version}"
    return f"{folder}/{registration.artifact}"


def registration_key(registration: Registration) -> str:
    folder = f"{registration.model_type}/{registration.name}/v{registration.version}"
    return f"{folder}/registration.json"


# -- register, resolve, load ------------------------------------------------------------------


def test_register_then_load_round_trips(
    registry: Registry,
    make_model: MakeModel,
    make_frame: Callable[[], Any],
    make_fields: MakeFields,
) -> None:
    model = make_model()
    registration = registry.register("rating", "rating-v2026", model, **make_fields())
    assert (registration.name, registration.version, registration.status) == (
        "rating-v2026",
        1,
        "active",
    )
    assert [(c.name, c.dtype) for c in registration.signature] == [("a", "any"), ("b", "any")]
    assert registration.training["test_year"] == 2024
    assert registration.versions["sklearn"]
    assert registration.created_at.tzinfo is not None

    stored = json.loads(registry.store.read_bytes(registration_key(registration)))
    assert stored["sha256"] == registration.sha256
    assert stored["size_bytes"] == len(registry.store.read_bytes(artifact_key(registration)))
    assert Registration.model_validate(stored) == registration

    loaded = registry.load("rating-v2026")
    assert loaded.registration == registration
    assert loaded.ref == ModelRef("rating-v2026", version=1)
    assert list(loaded.model.predict(make_frame())) == pytest.approx(
        list(model.predict(make_frame()))
    )


def test_versions_increment_and_plain_name_is_the_newest(
    registry: Registry, make_model: MakeModel
) -> None:
    versions = [register(registry, "rating", make_model(slope)).version for slope in (1, 2, 3)]
    assert versions == [1, 2, 3]
    assert registry.resolve("rating").version == 3
    assert registry.resolve("rating:1").version == 1
    assert [r.version for r in registry.list()] == [1, 2, 3]


def test_created_by_defaults_to_the_github_actor(
    registry: Registry, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert register(registry, "rating", make_model()).created_by == "octocat"
    explicit = registry.register("rating", "rating", make_model(), created_by="ci")
    assert explicit.created_by == "ci"


def test_metrics_with_numpy_values_are_stored_as_plain_json(
    registry: Registry, make_model: MakeModel
) -> None:
    import numpy as np

    registration = registry.register(
        "rating", "rating", make_model(), metrics={"rmse": np.float32(0.5), "n": np.int64(7)}
    )
    assert registry.resolve("rating:1").metrics == {"rmse": 0.5, "n": 7}
    assert registration.metrics == {"rmse": 0.5, "n": 7}


def test_unserialisable_metadata_is_an_input_error_and_burns_no_version(
    registry: Registry, make_model: MakeModel
) -> None:
    with pytest.raises(InputError, match="cannot register rating"):
        registry.register("rating", "rating", make_model(), training={"fold": object()})
    assert register(registry, "rating", make_model()).version == 1


def test_names_that_share_a_prefix_never_collide(registry: Registry, make_model: MakeModel) -> None:
    register(registry, "rating", make_model(1))
    register(registry, "rating2", make_model(2))
    register(registry, "rating2", make_model(3))
    register(registry, "rating.x", make_model(4))
    assert registry.resolve("rating").version == 1
    assert registry.resolve("rating2").version == 2
    assert registry.resolve("rating.x").version == 1
    assert registry.names() == {"rating": "rating", "rating.x": "rating", "rating2": "rating"}


def test_a_name_belongs_to_one_model_type(registry: Registry, make_model: MakeModel) -> None:
    register(registry, "shared", make_model(), model_type="complexity")
    with pytest.raises(RegistryError, match="already a complexity model"):
        register(registry, "shared", make_model(), model_type="rating")
    assert registry.resolve("shared", "complexity").model_type == "complexity"
    with pytest.raises(RegistryError, match="is a complexity model, not rating"):
        registry.resolve("shared", "rating")
    with pytest.raises(RegistryError, match="is a complexity model, not rating"):
        registry.load("shared", model_type="rating")


def test_unknown_model_type_is_a_usage_error(registry: Registry, make_model: MakeModel) -> None:
    with pytest.raises(UsageError, match="unknown model type 'ratings'; use one of: complexity"):
        register(registry, "rating", make_model(), model_type="ratings")


# -- races ------------------------------------------------------------------------------------


def test_a_claimed_but_unfinished_version_is_skipped_not_reused(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model())
    # A writer that crashed after claiming v2: readers ignore it, writers never reuse it.
    assert registry.store.create_exclusive("rating/rating/v2/.claim", b"{}")
    assert registry.resolve("rating").version == 1
    assert register(registry, "rating", make_model()).version == 3
    with pytest.raises(RegistryError, match="no version 2; versions: 1, 3"):
        registry.resolve("rating:2")


def test_losing_a_claim_race_moves_to_the_next_version(
    registry: Registry, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = registry.store
    real_create = store.create_exclusive
    raced: list[str] = []

    def rival_claims_first(key: str, data: bytes) -> bool:
        if key.endswith("/.claim") and not raced:
            raced.append(key)
            real_create(key, b"rival")  # another process claims this version in between
        return real_create(key, data)

    monkeypatch.setattr(store, "create_exclusive", rival_claims_first)
    assert register(registry, "rating", make_model()).version == 2
    assert raced == ["rating/rating/v1/.claim"]


CONCURRENT_SCRIPT = """
import operator, sys, time
from pathlib import Path
from types import SimpleNamespace
import joblib  # imported before the start line, so every process races from the same moment
from bggscore.registry import open_registry

root, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
registry = open_registry(root, Path(root))
model = SimpleNamespace(predict=operator.neg)
while time.time() < start:
    time.sleep(0.001)
for _ in range(count):
    print(registry.register("rating", "rating", model, signature=["a"]).version, flush=True)
"""


def test_concurrent_processes_get_distinct_versions(tmp_path: Path) -> None:
    import bggscore

    root = tmp_path / "registry"
    env = {**os.environ, "PYTHONPATH": str(Path(bggscore.__file__).resolve().parents[1])}
    start = time.time() + 1.5  # all processes are imported and waiting before anyone registers
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(root), str(start), "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    versions = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        versions += [int(line) for line in out.split()]
    assert sorted(versions) == list(range(1, 13))
    registry = open_registry(str(root), tmp_path)
    assert [r.version for r in registry.list()] == list(range(1, 13))
    assert all(result.ok for result in registry.verify())


# -- aliases and archiving --------------------------------------------------------------------


def test_aliases_set_move_and_remove(registry: Registry, make_model: MakeModel) -> None:
    for slope in (1, 2, 3):
        register(registry, "rating", make_model(slope))
    assert registry.aliases("rating") == {}
    registry.set_alias("rating:1", "champion")
    registry.set_alias("rating:2", "challenger")
    assert registry.aliases("rating") == {"challenger": 2, "champion": 1}
    assert registry.resolve("rating@challenger").version == 2

    # The champion wins over the newest version for a plain name.
    assert registry.resolve("rating").version == 1
    registry.set_alias("rating:2", "champion")
    assert registry.resolve("rating").version == 2
    registry.remove_alias("rating", "champion")
    assert registry.resolve("rating").version == 3
    assert registry.aliases("rating") == {"challenger": 2}


def test_alias_errors(registry: Registry, make_model: MakeModel) -> None:
    register(registry, "rating", make_model())
    with pytest.raises(UsageError, match="invalid alias 'Champion!'"):
        registry.set_alias("rating:1", "Champion!")
    with pytest.raises(RegistryError, match="rating has no alias 'prod'; it has no aliases yet"):
        registry.resolve("rating@prod")
    registry.set_alias("rating:1", "champion")
    with pytest.raises(RegistryError, match=r"no alias 'prod'; aliases: champion \(v1\)"):
        registry.resolve("rating@prod")
    with pytest.raises(UnknownModelError, match=r"aliases: champion \(v1\)"):
        registry.remove_alias("rating", "prod")


def test_archived_versions_are_skipped_by_name_but_load_by_number(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model(1))
    register(registry, "rating", make_model(2))
    registry.set_alias("rating:2", "champion")
    archived = registry.archive("rating:2")
    assert archived.status == "archived"
    assert registry.aliases("rating") == {}  # archiving drops the aliases that pointed at it
    assert registry.resolve("rating").version == 1
    assert registry.load("rating:2").registration.status == "archived"
    with pytest.raises(RegistryError, match="is archived"):
        registry.set_alias("rating:2", "champion")

    registry.archive("rating:1")
    with pytest.raises(RegistryError, match=r"every version of rating is archived.*rating:2"):
        registry.resolve("rating")
    assert registry.unarchive("rating:1").status == "active"
    assert registry.resolve("rating").version == 1
    assert [r.status for r in registry.list()] == ["active", "archived"]


def test_remove_alias_returns_its_version_and_keeps_the_version(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model(1))
    register(registry, "rating", make_model(2))
    registry.set_alias("rating:1", "champion")
    assert registry.remove_alias("rating", "champion") == 1
    assert registry.aliases("rating") == {}
    with pytest.raises(UnknownModelError, match="rating has no alias 'champion'; aliases: none"):
        registry.remove_alias("rating", "champion")
    assert registry.resolve("rating:1").status == "active"
    assert registry.resolve("rating").version == 2


def test_unarchive_makes_a_version_active_without_its_aliases(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model())
    registry.set_alias("rating:1", "champion")
    registry.archive("rating@champion")
    with pytest.raises(RegistryError, match=r"unarchive it first \(`bggscore models unarchive"):
        registry.set_alias("rating:1", "champion")
    assert registry.unarchive("rating:1").status == "active"
    assert registry.unarchive("rating:1").status == "active"  # again: nothing to do
    assert registry.aliases("rating") == {}
    assert registry.resolve("rating").version == 1
    with pytest.raises(UsageError, match="unarchive needs a version: use rating:N"):
        registry.unarchive("rating")


@pytest.mark.parametrize(
    ("ref", "model_type", "message"),
    [
        ("nope", None, "unknown model 'nope'"),
        ("nope", "rating", "unknown rating model 'nope'"),
        ("rating:9", None, "rating has no version 9; versions: 1, 2"),
        ("rating@gold", None, r"rating has no alias 'gold'; aliases: champion \(v1\)"),
        ("rating", "hurdle", "model 'rating' is a rating model, not hurdle"),
        ("old", None, r"every version of old is archived \(1\)"),
    ],
)
def test_references_to_nothing_registered_exit_2(
    registry: Registry, make_model: MakeModel, ref: str, model_type: str | None, message: str
) -> None:
    register(registry, "rating", make_model(1))
    register(registry, "rating", make_model(2))
    registry.set_alias("rating:1", "champion")
    register(registry, "old", make_model())
    registry.archive("old:1")
    with pytest.raises(UnknownModelError, match=message) as info:
        registry.resolve(ref, model_type)
    assert info.value.exit_code == 2
    with pytest.raises(UnknownModelError, match=message):
        registry.load(ref, model_type)


def test_a_dangling_alias_is_a_broken_registry_not_an_unknown_reference(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model())
    registry.set_alias("rating:1", "champion")
    registry.store.delete("rating/rating/v1/registration.json")
    register(registry, "rating", make_model())  # v2: the name still resolves
    with pytest.raises(RegistryError, match="points to missing version 1") as info:
        registry.resolve("rating@champion")
    assert not isinstance(info.value, UnknownModelError) and info.value.exit_code == 1
    assert registry.remove_alias("rating", "champion") == 1  # what verify says to do
    assert registry.resolve("rating").version == 2


def test_archive_needs_a_version_or_alias(registry: Registry, make_model: MakeModel) -> None:
    register(registry, "rating", make_model())
    with pytest.raises(UsageError, match="archive needs a version"):
        registry.archive("rating")


def test_unknown_keys_in_registration_json_survive_a_rewrite(
    registry: Registry, make_model: MakeModel
) -> None:
    registration = register(registry, "rating", make_model())
    key = registration_key(registration)
    stored = json.loads(registry.store.read_bytes(key))
    stored["lineage"] = {"from": "a newer bggscore"}
    registry.store.write_bytes(key, json.dumps(stored).encode())
    registry.archive("rating:1")
    assert json.loads(registry.store.read_bytes(key))["lineage"] == {"from": "a newer bggscore"}


# -- messages that list what exists -----------------------------------------------------------


def test_unknown_name_version_and_type_messages_list_what_exists(
    registry: Registry, make_model: MakeModel
) -> None:
    with pytest.raises(RegistryError, match=r"unknown model 'rating'.*no models yet"):
        registry.resolve("rating")
    register(registry, "rating-a", make_model())
    register(registry, "rating-b", make_model())
    register(registry, "hurdle-a", make_classifier(), model_type="hurdle")
    with pytest.raises(RegistryError) as info:
        registry.resolve("rating-c")
    assert "registered models: hurdle-a (hurdle), rating-a (rating), rating-b (rating)" in str(
        info.value
    )
    with pytest.raises(RegistryError, match=r"registered rating models: rating-a, rating-b$"):
        registry.resolve("rating-c", "rating")
    with pytest.raises(RegistryError, match=r"rating-a has no version 4; versions: 1$"):
        registry.resolve("rating-a:4")


# -- integrity --------------------------------------------------------------------------------


def test_a_flipped_byte_is_refused_before_unpickling(registry: Registry) -> None:
    UNPICKLED.clear()
    registration = register(registry, "rating", Tripwire("genuine"))
    key = artifact_key(registration)
    data = bytearray(registry.store.read_bytes(key))
    data[len(data) // 2] ^= 0x01
    registry.store.write_bytes(key, bytes(data))

    with pytest.raises(IntegrityError) as info:
        registry.load("rating")
    message = str(info.value)
    assert message.startswith("artifact for rating:1 failed its sha256 check (expected ")
    assert f"expected {registration.sha256[:12]}…, got " in message
    assert message.endswith("re-register the model or restore the file")
    assert UNPICKLED == []


def test_check_verifies_an_artifact_without_unpickling_it(registry: Registry) -> None:
    UNPICKLED.clear()
    clear_cache()
    registration = register(registry, "rating", Tripwire("genuine"))
    registry.check(registration)  # intact: passes, and nothing ran
    assert UNPICKLED == []
    key = artifact_key(registration)
    data = bytearray(registry.store.read_bytes(key))
    data[len(data) // 2] ^= 0x01
    registry.store.write_bytes(key, bytes(data))
    with pytest.raises(IntegrityError, match="failed its sha256 check"):
        registry.check(registration)
    assert UNPICKLED == []


def test_a_substituted_valid_pickle_is_never_unpickled(registry: Registry, tmp_path: Path) -> None:
    UNPICKLED.clear()
    first = register(registry, "rating", Tripwire("genuine"))
    # A perfectly loadable artifact, but not the registered one: must not run.
    joblib.dump(Tripwire("intruder"), tmp_path / "intruder.joblib")
    registry.store.write_bytes(artifact_key(first), (tmp_path / "intruder.joblib").read_bytes())
    with pytest.raises(IntegrityError):
        registry.load("rating:1")
    assert UNPICKLED == []

    # Control: an intact artifact does unpickle (the tripwire works), and only once per run.
    register(registry, "rating", Tripwire("genuine"))
    assert registry.load("rating:2").model.tag == "genuine"
    registry.load("rating:2")
    Registry(registry.store).load("rating:2")
    assert UNPICKLED == ["genuine"]
    clear_cache()
    registry.load("rating:2")
    assert UNPICKLED == ["genuine", "genuine"]


def test_verify_reports_the_tampered_artifact(registry: Registry, make_model: MakeModel) -> None:
    UNPICKLED.clear()
    register(registry, "rating", make_model())
    tampered = register(registry, "rating", Tripwire("x"))
    register(registry, "hurdle", make_classifier(), model_type="hurdle")
    registry.store.write_bytes(artifact_key(tampered), b"not the artifact")

    results = {result.label: result for result in registry.verify()}
    assert set(results) == {"rating:1", "rating:2", "hurdle:1"}
    assert results["rating:1"].ok and results["hurdle:1"].ok
    assert not results["rating:2"].ok
    assert results["rating:2"].expected_sha256 == tampered.sha256
    assert "sha256 mismatch" in (results["rating:2"].problem or "")
    assert [r.ok for r in registry.verify("rating:2")] == [False]
    assert UNPICKLED == []


def test_verify_reports_dangling_aliases_and_folders_without_a_registration(
    registry: Registry, make_model: MakeModel
) -> None:
    register(registry, "rating", make_model(1))
    register(registry, "rating", make_model(2))
    register(registry, "complexity", make_model(), model_type="complexity")
    registry.set_alias("rating:2", "champion")
    registry.set_alias("rating:1", "challenger")
    registry.store.delete("rating/rating/v2/registration.json")  # the case
    # a claim alone is a registration that crashed before writing anything: not a problem
    assert registry.store.create_exclusive("rating/rating/v3/.claim", b"{}")
    registry.store.write_bytes("complexity/complexity/aliases/prod.json", b"{not json")
    assert registry.store.create_exclusive("complexity/lost/v1/.claim", b"{}")
    registry.store.write_bytes("complexity/lost/v1/artifact.joblib", b"bytes")

    results = registry.verify()
    assert [(r.label, r.ok) for r in results] == [
        ("complexity:1", True),
        ("rating:1", True),
        ("lost:1", False),
        ("complexity@prod", False),
        ("rating:2", False),
        ("rating@champion", False),
    ]
    problems = {r.label: r.problem or "" for r in results}
    assert "has artifact.joblib but no registration.json" in problems["rating:2"]
    assert problems["rating@champion"].startswith(
        "points to rating:2, which has no registration.json"
    )
    assert "models alias --remove rating@champion" in problems["rating@champion"]
    assert "not valid JSON" in problems["complexity@prod"]
    # the fixes it names clear it
    registry.remove_alias("rating", "champion")
    registry.store.delete("rating/rating/v2/artifact.joblib")
    registry.store.delete("rating/rating/v2/.claim")
    registry.store.delete("complexity/complexity/aliases/prod.json")
    registry.store.delete("complexity/lost/v1/artifact.joblib")
    assert all(r.ok for r in registry.verify())


def test_a_missing_artifact_is_explained(registry: Registry, make_model: MakeModel) -> None:
    registration = register(registry, "rating", make_model())
    registry.store.delete(artifact_key(registration))
    with pytest.raises(RegistryError, match=r"artifact for rating:1 is missing at .*; restore"):
        registry.load("rating")
    problem = registry.verify()[0].problem
    assert problem is not None
    assert problem.startswith("artifact for rating:1 is missing")


def test_a_different_sklearn_version_warns(registry: Registry, make_model: MakeModel) -> None:
    registration = register(registry, "rating", make_model())
    key = registration_key(registration)
    stored = json.loads(registry.store.read_bytes(key))
    stored["versions"]["sklearn"] = "0.24.2"
    registry.store.write_bytes(key, json.dumps(stored).encode())
    with pytest.warns(RegistryWarning, match="registered with scikit-learn 0.24.2"):
        registry.load("rating")


# -- what can be registered -------------------------------------------------------------------


def test_an_object_without_predict_or_transform_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="neither predict nor transform"):
        registry.register("rating", "rating", {"coef": [1, 2]}, signature=["a"])
    with pytest.raises(UsageError, match="is a path; use register_file"):
        registry.register("rating", "rating", tmp_path / "model.joblib")
    assert registry.list() == []


def test_a_loaded_artifact_must_still_be_a_model(registry: Registry, make_model: MakeModel) -> None:
    registration = register(registry, "rating", make_model())
    # Forge a consistent registration for a non-model (as a hand-edited registry might).
    import hashlib
    import io

    buffer = io.BytesIO()
    joblib.dump({"not": "a model"}, buffer)
    data = buffer.getvalue()
    registry.store.write_bytes(artifact_key(registration), data)
    forged = registration.model_copy(
        update={"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    )
    registry.store.write_bytes(registration_key(registration), forged.to_json())
    with pytest.raises(RegistryError, match="neither predict nor transform"):
        registry.load("rating")


def test_a_regressor_cannot_be_the_hurdle_model(registry: Registry, make_model: MakeModel) -> None:
    with pytest.raises(InputError, match=r"LinearRegression without predict_proba.*hurdle"):
        registry.register("hurdle", "hurdle", make_model(), signature=["a", "b"])
    assert registry.store.list_prefix("") == []  # nothing written, no version burnt
    assert register(registry, "hurdle", make_classifier(), model_type="hurdle").version == 1
    transform_only = SimpleNamespace(transform=operator.neg)
    with pytest.raises(InputError, match="without predict, so it cannot be a rating model"):
        registry.register("rating", "rating", transform_only, signature=["a"])


def test_the_classifier_types_are_the_classification_outcomes() -> None:
    from bggscore.registry.integrity import CLASSIFIERS, REGRESSORS
    from bggscore.scoring.outcomes import OUTCOMES

    kinds = {name: outcome.kind for name, outcome in OUTCOMES.items()}
    assert {t: kinds[t] for t in CLASSIFIERS + REGRESSORS} == kinds
    assert {kinds[t] for t in CLASSIFIERS} == {"classification"}
    assert {kinds[t] for t in REGRESSORS} == {"regression"}


def test_transform_only_models_register(registry: Registry) -> None:
    embedder = SimpleNamespace(transform=operator.neg)
    registration = registry.register(
        "text_embeddings", "sif-100", embedder, signature=[{"name": "description", "dtype": "str"}]
    )
    assert registration.signature[0].dtype == "str"
    assert registry.load("sif-100").model.transform(2) == -2


@pytest.mark.parametrize(
    ("payload", "compressed"),
    [
        # a posterior covariance: zlib saves ~4%, and inflating it cost 40 ms per load
        (np.random.default_rng(0).normal(size=(400, 400)), False),
        (np.zeros((400, 400)), True),
    ],
    ids=["incompressible", "compressible"],
)
def test_artifacts_are_compressed_only_where_that_pays(
    registry: Registry, payload: Any, compressed: bool
) -> None:
    model = SimpleNamespace(transform=operator.neg, payload=payload)
    registration = registry.register("text_embeddings", "sif", model, signature=["description"])
    data = registry.store.read_bytes(artifact_key(registration))
    # an uncompressed joblib file is a plain pickle: it opens with the PROTO opcode
    assert (data[:1] != b"\x80") is compressed
    assert (len(data) < payload.nbytes / 5) is compressed
    assert np.array_equal(registry.load("sif").model.payload, payload)


def test_a_signature_is_required_when_the_model_has_no_feature_names(
    registry: Registry,
) -> None:
    with pytest.raises(InputError, match=r"no feature_names_in_ .*; give them with --signature"):
        registry.register("rating", "rating", Tripwire("x"))
    with pytest.raises(InputError, match="repeats a column"):
        registry.register("rating", "rating", Tripwire("x"), signature=["a", "a"])


def test_register_file_takes_the_users_joblib(
    local_registry: Registry, make_model: MakeModel, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.joblib"
    joblib.dump(make_model(), path)
    registration = local_registry.register_file(path, "complexity", "complexity-v2026")
    assert [c.name for c in registration.signature] == ["a", "b"]
    assert local_registry.load("complexity-v2026").model.coef_[0] == pytest.approx(2.0)


def test_register_file_refuses_what_is_not_a_model(
    local_registry: Registry, tmp_path: Path
) -> None:
    text = tmp_path / "notes.joblib"
    text.write_text("this is not a pickle\n")
    with pytest.raises(InputError, match=r"notes.joblib is not a joblib file \(.*\); save the"):
        local_registry.register_file(text, "rating", "rating")
    with pytest.raises(InputError, match="does not exist"):
        local_registry.register_file(tmp_path / "absent.joblib", "rating", "rating")
    plain = tmp_path / "dict.joblib"
    joblib.dump({"coef": [1.0]}, plain)
    with pytest.raises(InputError, match=r"the model in .*dict.joblib is a dict with neither"):
        local_registry.register_file(plain, "rating", "rating")
    assert local_registry.list() == []


def test_a_signature_file_gives_the_input_columns(local_registry: Registry, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "signature.json"
    columns = [
        {"name": "min_age", "dtype": "INT64", "source": "warehouse"},
        {"name": "predicted_complexity", "dtype": "FLOAT64", "source": "chain"},
        {"name": "max_players"},
    ]
    path.write_text(json.dumps(columns))
    unnamed = LinearRegression().fit([[1.0, 2.0, 3.0], [2.0, 1.0, 0.0]], [1.0, 2.0])
    registration = local_registry.register(
        "rating", "rating", unnamed, signature=read_signature_file(path)
    )
    assert [c.model_dump() for c in registration.signature] == [
        {"name": "min_age", "dtype": "INT64", "source": "warehouse"},
        {"name": "predicted_complexity", "dtype": "FLOAT64", "source": "chain"},
        {"name": "max_players", "dtype": "any"},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "signature file .* does not exist"),
        (b"[{", r"is not valid JSON \(line 1: "),
        (b"\xff\xfe\x00garbage", "is not"),
        (b'{"name": "a"}', "must hold a JSON list"),
        (b"[]", "must hold a JSON list"),
        (b'["a", "b"]', r"entry 1 is 'a'; give an object with a \"name\" string"),
        (b'[{"dtype": "INT64"}]', "entry 1 is .* give an object with a"),
        (b'[{"name": "a"}, {"name": 3}]', "entry 2 is"),
        (b'[{"name": "a", "dtpye": "INT64"}]', "unknown key\\(s\\) dtpye; use name, dtype, source"),
        (b'[{"name": "a", "dtype": 5}]', "dtype 5 is not a string"),
        (b'[{"name": "a", "source": "chian"}]', "source 'chian' is not one of warehouse, chain"),
    ],
)
def test_a_bad_signature_file_is_one_input_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "signature.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_signature_file(path)
    assert "\n" not in str(info.value)


def test_open_registry_defaults_to_home(tmp_path: Path) -> None:
    registry = open_registry(None, tmp_path)
    assert isinstance(registry.store, LocalStore)
    assert registry.uri == str((tmp_path / "registry").resolve())

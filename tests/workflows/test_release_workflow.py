"""The project's .github/workflows/release.yml, parsed: what publishes, with which rights.

Nothing is built or uploaded here: CI builds and checks the distributions on every
submission (dev.py test runs scripts/check-dist), and PyPI trusted publishing can only be
exercised by a tag on GitHub. This checks the parts a mistake would turn into a leaked token
or an unchecked upload.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse release.yml")

REPO = Path(__file__).resolve().parents[2]
RELEASE = REPO / ".github" / "workflows" / "release.yml"
PUBLISH_ACTION = re.compile(r"^pypa/gh-action-pypi-publish@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(RELEASE.read_text(encoding="utf-8"))


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def test_only_a_version_tag_starts_it(doc: dict[str, Any]) -> None:
    on = doc["on"] if "on" in doc else doc[True]
    assert on == {"push": {"tags": ["v[0-9]*"]}}
    assert doc["permissions"] == {"contents": "read"}


def test_the_publish_job_uses_trusted_publishing_only(doc: dict[str, Any]) -> None:
    publish = doc["jobs"]["publish"]
    assert publish["needs"] == ["build"]
    assert publish["permissions"] == {"id-token": "write"}  # and nothing else
    environment = publish["environment"]
    assert environment["name"] == "pypi" and environment["url"].startswith("https://pypi.org/")
    (upload,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert PUBLISH_ACTION.match(upload["uses"]), upload["uses"]
    line = next(
        raw for raw in RELEASE.read_text(encoding="utf-8").splitlines() if upload["uses"] in raw
    )
    assert re.search(r"# v\d+\.\d+\.\d+$", line), line
    given = upload.get("with", {})
    assert not {"password", "user", "api-token"} & set(given), given
    text = yaml.safe_dump(publish)
    assert "secrets." not in text and "github.token" not in text
    # it uploads what the build job made, and builds nothing itself
    assert not scripts(publish).strip()
    assert any("download-artifact" in s.get("uses", "") for s in publish["steps"])


def test_no_secret_anywhere_in_the_release(doc: dict[str, Any]) -> None:
    assert "secrets." not in RELEASE.read_text(encoding="utf-8")


def test_it_builds_once_and_checks_what_it_built(doc: dict[str, Any]) -> None:
    builds = [
        (job_id, line)
        for job_id, job in doc["jobs"].items()
        for line in scripts(job).splitlines()
        if re.search(r"python -m build\b", line)
    ]
    assert builds == [("build", "python -m build --no-isolation --outdir dist .")]
    build = scripts(doc["jobs"]["build"])
    assert "python -m twine check --strict dist/*" in build
    assert 'python scripts/lock-requirements --check --wheel "${wheels[0]}"' in build
    assert "--require-hashes" in build and "requirements/release.txt" in build
    assert '[[ "$TAG" == "v$version" ]]' in build
    uses = [s.get("uses", "") for s in doc["jobs"]["build"]["steps"]]
    assert any(u.startswith("actions/attest-build-provenance@") for u in uses)
    assert doc["jobs"]["build"]["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "attestations": "write",
    }


def test_the_github_release_carries_the_files_and_their_sha256(doc: dict[str, Any]) -> None:
    release = doc["jobs"]["github-release"]
    assert release["needs"] == ["build", "publish"]
    assert release["permissions"] == {"contents": "write"}
    text = scripts(release)
    assert "sha256sum --check --strict" in text
    assert re.search(
        r"gh release create \"\$TAG\" --verify-tag .*\n\s*dist/\* assets/requirements-ci.txt "
        r"assets/SHA256SUMS",
        text,
    )
    for pin in ("PIN_WHEEL_URL", "PIN_WHEEL_SHA256", "PIN_LOCK_URL", "PIN_LOCK_SHA256"):
        assert pin in text  # the release notes give the four template inputs


def test_every_job_has_a_timeout_and_job_permissions(doc: dict[str, Any]) -> None:
    for job_id, job in doc["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, job_id
        assert isinstance(job.get("permissions"), dict), job_id
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False

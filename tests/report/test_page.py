"""The page's pieces: vl-convert's bundle, kept in the user's cache only when it is ours,
and the JSON inlined where a game's name cannot end the script. (vl-convert's real bundle is
made, inlined and run by tests/report/test_browser.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bggscore.report import page

FAKE = "window.vegaEmbed = function () {}; /* a bundle */"


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The calls to vl-convert's javascript_bundle (a fake), with an empty cache folder."""
    import vl_convert

    calls: list[tuple] = []

    def bundle(snippet: str, vl_version: str | None = None) -> str:
        calls.append((snippet, vl_version))
        return FAKE

    monkeypatch.setattr(vl_convert, "javascript_bundle", bundle)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    page.bundle.cache_clear()
    yield calls
    page.bundle.cache_clear()


def kept(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "bggscore" / "report").glob("vega-bundle-*.js")
    return found


def test_the_bundle_is_made_once_and_kept_privately(made: list, tmp_path: Path) -> None:
    version = page.vega_lite_version()
    assert page.bundle(version) == FAKE
    assert made == [(page.GLOBALS, version)]  # altair's Vega-Lite version, when vl-convert has it
    assert kept(tmp_path).stat().st_mode & 0o777 == 0o600
    page.bundle.cache_clear()
    assert page.bundle(version) == FAKE
    assert len(made) == 1  # read back, not made again


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file modes")
@pytest.mark.parametrize("spoil", ["others may write", "cut short", "renamed"])
def test_a_kept_bundle_that_may_not_be_ours_is_made_again(
    made: list, tmp_path: Path, spoil: str
) -> None:
    page.bundle(page.vega_lite_version())
    path = kept(tmp_path)
    if spoil == "others may write":
        path.write_text(path.read_text().replace("a bundle", "stolen"))
        path.chmod(0o666)
    elif spoil == "cut short":
        path.write_text(path.read_text()[:-5])
    else:  # another key's file under this name: its header names the other key
        path.write_text(path.read_text().replace(path.stem, "vega-bundle-000"))
    page.bundle.cache_clear()
    assert page.bundle(page.vega_lite_version()) == FAKE
    assert len(made) == 2


def test_a_version_vl_convert_lacks_gets_its_newest(made: list) -> None:
    page.bundle("0.1")
    assert made == [(page.GLOBALS, None)]


def test_inlined_json_cannot_end_its_script() -> None:
    value = {"name": "</script><script>alert(1)</script> & <!--"}
    text = page._json_script(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value

"""The documentation stays true to the CLI.

* docs/commands.md, the command reference, is what `scripts/gen-command-reference` generates
  from the commands' --help (run the script after changing a command), and README.md's short
  "Commands" table lists every top-level command and group, linking into it;
* every `bggscore ...` line in a shell block of README.md or docs/*.md names a real command,
  only real options, and values the options accept;
* relative links between the documents point at files (and headings) that exist.

Help texts themselves are checked in tests/cli/test_help.py.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main

from bggscore.cli.main import app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gen-command-reference"
README = REPO / "README.md"
REFERENCE = REPO / "docs" / "commands.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console", "zsh"}
# words that may come before the command itself: `sudo -u bggscore env X=1 bggscore run`
WRAPPERS = {"sudo", "env", "exec", "time", "nohup", "command"}
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}


def load_generator() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_command_reference", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


# -- the command reference -----------------------------------------------------------------
def test_command_reference_is_up_to_date(
    generator: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generator.OUTPUT == REFERENCE
    code = generator.main(["--check"])
    assert code == 0, (
        "docs/commands.md differs from the commands' --help; run "
        "`.venv/bin/python scripts/gen-command-reference`\n" + capsys.readouterr().err
    )


def test_generator_check_fails_on_drift_and_rewrites_the_page(
    generator: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "docs" / "commands.md"
    assert generator.main(["--check", "--output", str(page)]) == 1
    assert "missing" in capsys.readouterr().err
    assert generator.main(["--output", str(page)]) == 0  # creates docs/ too
    assert page.read_text(encoding="utf-8") == generator.render()
    page.write_text(page.read_text(encoding="utf-8").replace("Usage:", "Usage :", 1))
    assert generator.main(["--check", "--output", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert generator.main(["--output", str(page)]) == 0
    assert generator.main(["--check", "--output", str(page)]) == 0


def test_reference_covers_every_command_plainly_at_a_fixed_width(generator: ModuleType) -> None:
    page = generator.render()
    assert page.startswith(f"{generator.NOTICE}\n\n{generator.TITLE}\n\n{generator.INTRO}\n")
    contents = page.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    root = typer.main.get_command(app)
    paths = [path for path, _ in generator.walk(root)]
    for path in paths:
        title = "bggscore " + " ".join(path) if path else "bggscore (global options)"
        level = "###" if len(path) > 1 else "##"
        assert f"\n{level} {title}\n" in page, title
        assert f"](#{generator.anchor(path)})" in contents, title  # in the table of contents
        assert f"Usage: bggscore {' '.join(path)}".rstrip() in page, title
    assert len(re.findall(r"^\| \[`bggscore", contents, flags=re.M)) == len(paths)
    assert "\x1b[" not in page  # no ANSI colours
    wrapped = [line for line in page.splitlines() if "  " in line and len(line) > 100]
    # option tables are wrapped at 100 columns; only preformatted usage examples may exceed it
    assert all(line.lstrip().startswith("bggscore ") for line in wrapped), wrapped


def test_reference_links_resolve() -> None:
    assert REFERENCE in DOCS  # so the docs' command lines and links checks read it too
    links = _links(REFERENCE)
    assert len(links) > 20, links  # the table of contents, and the links to the other docs
    assert not _broken_links(REFERENCE), _broken_links(REFERENCE)


def _readme_commands_table() -> list[tuple[str, str, str]]:
    """(command, link target, description) for each row of README.md's "Commands" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        row = re.match(r"^\| \[`bggscore ([^`]+)`\]\(([^)]+)\) \| (.*?) \|$", line)
        if row:
            rows.append((row.group(1), row.group(2), row.group(3).strip()))
    return rows


def test_readme_commands_table_lists_every_command_and_group(generator: ModuleType) -> None:
    root = typer.main.get_command(app)
    commands = [path[0] for path, _ in generator.walk(root) if len(path) == 1]
    rows = _readme_commands_table()
    listed = [name for name, _, _ in rows]
    assert listed == commands, (
        "README.md's Commands table should list every top-level command and group, in the "
        f"CLI's order: missing {sorted(set(commands) - set(listed))}, "
        f"not commands {sorted(set(listed) - set(commands))}"
    )
    for name, target, description in rows:
        assert target == f"docs/commands.md#{generator.anchor((name,))}", (name, target)
        assert description, name
    text = README.read_text(encoding="utf-8")
    assert generator.NOTICE not in text  # the full reference lives in docs/commands.md only
    assert "](docs/commands.md#bggscore-global-options)" in text


# -- command lines in the docs ------------------------------------------------------------
@dataclass
class CommandLine:
    source: str  # file:line
    text: str
    args: list[str]  # after `bggscore`


def shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, logical line) inside shell code blocks, heredoc bodies skipped."""
    lang: str | None = None
    pending = ""
    start = 0
    heredoc: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", raw)
        if fence:
            lang = None if lang is not None else fence.group(1).lower()
            pending, heredoc = "", None
            continue
        if lang not in SHELL_BLOCKS:
            continue
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical, pending = pending + line, ""
        marker = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", logical)
        if marker:
            heredoc = marker.group(1)
        yield start, logical


def bggscore_invocations(text: str, source: str) -> Iterator[CommandLine]:
    for number, line in shell_lines(text):
        line = re.sub(r"^\s*\$\s+", "", line)  # a console prompt
        line = re.sub(r"(?<=\s)\d?(>>?|<)\s*\S+", " ", line)  # redirections
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;()")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote: part of a multi-line shell function
            assert not line.lstrip().startswith("bggscore "), f"{source}:{number}: quoting"
            continue
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token not in SEPARATORS:
                segment.append(token)
                continue
            args = _command_args(segment)
            if args is not None:
                yield CommandLine(f"{source}:{number}", line.strip(), args)
            segment = []


def _command_args(tokens: list[str]) -> list[str] | None:
    """The arguments after `bggscore` when the segment runs bggscore, else None."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token):  # VAR=value
            i += 1
        elif token in WRAPPERS:
            i += 1
            while i < len(tokens) and tokens[i].startswith("-"):  # sudo -u USER, env -i
                i += 2 if tokens[i] in ("-u", "-g", "-C", "--chdir") else 1
        elif re.search(r"(^|/)python3?$", token) and tokens[i + 1 : i + 3] == ["-m", "bggscore"]:
            return tokens[i + 3 :]
        elif token == "bggscore" or token.endswith("/bggscore"):
            return tokens[i + 1 :]
        else:
            return None
    return None


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def _options(command: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"--help": None, "-h": None}
    for param in command.params:
        if param.param_type_name == "option":
            for name in [*param.opts, *param.secondary_opts]:
                found[name] = param
    return found


def check_invocation(args: list[str]) -> str | None:
    """Why `bggscore ARGS` would be refused, or None when it parses."""
    command: Any = typer.main.get_command(app)
    path = ["bggscore"]
    leaf_args: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            leaf_args += args[i:]
            break
        if token.startswith("-") and token != "-":
            name, has_value, _ = token.partition("=") if token.startswith("--") else (token, "", "")
            options = _options(command)
            if name not in options:
                return f"{' '.join(path)} has no option {name}"
            param = options[name]
            takes_value = param is not None and not (param.is_flag or param.count)
            if name in ("--help", "-h", "--version"):
                return None
            if takes_value and not has_value:
                if i + 1 >= len(args):
                    return f"{' '.join(path)} {name} needs a value"
                leaf_args += [token, args[i + 1]]
                i += 2
                continue
            leaf_args.append(token)
        elif _is_group(command) and token in command.commands:
            command = command.commands[token]
            path.append(token)
            leaf_args = []  # the group's own options were checked by name above
        elif _is_group(command) and not command.invoke_without_command:
            return f"{' '.join(path)} has no command {token!r}"
        else:
            leaf_args.append(token)
        i += 1
    if _is_group(command) and not command.invoke_without_command:
        return f"{' '.join(path)} needs a command"
    if any("$" in arg for arg in leaf_args):
        return None  # shell variables: names are checked, values can't be
    try:  # the command's own parser: types, ranges, required options and arguments
        command.make_context(path[-1], list(leaf_args))
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return f"{' '.join(path)}: {message}"
    return None


def all_invocations() -> list[CommandLine]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        found += bggscore_invocations(text, str(doc.relative_to(REPO)))
    return found


def test_docs_exist_for_the_three_users() -> None:
    for name in ("ci.md", "analyst.md", "operator.md"):
        assert (REPO / "docs" / name).is_file(), name


def test_every_bggscore_command_line_in_the_docs_parses() -> None:
    invocations = all_invocations()
    assert len(invocations) >= 60, len(invocations)  # the extraction finds the examples
    for name in ("ci.md", "analyst.md", "operator.md"):
        assert any(f"docs/{name}" in c.source for c in invocations), name
    problems = [
        f"{c.source}: `{c.text}`: {why}"
        for c in invocations
        if (why := check_invocation(c.args)) is not None
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "args",
    [
        ["scor"],
        ["score", "--bogus"],
        ["score", "--start-year", "x"],
        ["warehouse"],
        ["warehouse", "nope"],
        ["dispatch", "predictions_complete"],  # --repo is required
        ["similar", "1", "--top", "0"],
        ["--home"],
    ],
)
def test_the_checker_rejects_bad_command_lines(args: list[str]) -> None:
    assert check_invocation(args) is not None


def test_the_checker_finds_commands_in_shell_blocks_only() -> None:
    text = (
        "Run `bggscore nope` inline.\n\n"
        "```bash\n"
        "$ bggscore run --wait   # a comment\n"
        "BGGSCORE_HOME=/tmp/h bggscore --home x warehouse status | jq .games\n"
        "sudo -u bggscore env A=1 /opt/venv/bin/bggscore score \\\n"
        "  --all-years > out.json\n"
        "useradd --system bggscore-user\n"
        "python - <<'EOF'\n"
        "bggscore not a command\n"
        "EOF\n"
        "```\n\n"
        "```toml\nbggscore = 1\n```\n"
    )
    found = [c.args for c in bggscore_invocations(text, "x.md")]
    assert found == [
        ["run", "--wait"],
        ["--home", "x", "warehouse", "status"],
        ["score", "--all-years"],
    ]
    assert all(check_invocation(args) is None for args in found)


# -- links between the documents ----------------------------------------------------------
def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (duplicates not numbered)."""
    found = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading and not in_code:
            title = heading.group(1).strip().lower()
            title = "".join(c for c in title if c.isalnum() or c in " -_")
            found.add(title.replace(" ", "-"))
    return found


def _links(doc: Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _broken_links(doc: Path) -> list[str]:
    """The relative links of a Markdown file to files or headings that do not exist."""
    broken = []
    for target in _links(doc):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{doc.name}: {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{doc.name}: {target} (no such heading)")
    return broken


def test_relative_links_point_at_existing_files_and_headings() -> None:
    broken = [problem for doc in DOCS for problem in _broken_links(doc)]
    assert not broken, "\n".join(broken)


def test_no_doc_links_to_the_old_readme_reference() -> None:
    old = [f"{doc.name}: {t}" for doc in DOCS for t in _links(doc) if "#command-reference" in t]
    assert not old, old

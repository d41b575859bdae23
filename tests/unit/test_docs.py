"""The docs site builds, and every `ktx` command the README and the docs show is run by a test.

`mkdocs build --strict` fails on a broken link or anchor, a page missing from the nav, or a nav entry with no page
(mkdocs.yml's `validation:` makes each of those a warning, and --strict makes warnings fatal). It runs offline: the
Material theme needs no network to build (no plugins, `font: false`).

Every command line that starts with `ktx` in a fenced code block of README.md or docs/*.md must parse with the real
CLI parser, and be exercised: some test under tests/ calls the CLI with the same subcommand, the same kind of object
(a platform kind by name, any resource kind alike: the CLI treats them the same), the same positionals given, and at
least the documented flags. The tests are read, not run: a call `run("get", "appconfig", "-n", "default")` (or
`ktx(...)`, `ktx_cli(...)`, `run_cli(capsys, ...)`, the names the tests give their CLI runners) counts. A command
no test can run here goes in ALLOWED_UNRUN below, with the reason; an entry that is no longer shown, or is run after
all, fails the check too.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from cli.main import parser as cli_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

# The functions the tests run the CLI through (tests/e2e/test_cli.py, tests/e2e/test_stack.py,
# tests/integration/test_api_auth.py, test_kube_secret_store.py, test_gitops_manifests_api.py).
CLI_RUNNERS = {"run", "ktx", "ktx_cli", "run_cli"}

# Documented commands no test runs, each with the reason it cannot run here. Keys are the command as shown
# (whitespace collapsed, comment and pipe removed).
ALLOWED_UNRUN: dict[str, str] = {
    # (none today: every command the docs show runs against the embedded stack or a test platform)
}

# Platform kinds the CLI addresses by name; any other kind is a resource kind a Promise serves.
PLATFORM_KINDS = {
    "promise",
    "promiserelease",
    "destination",
    "gitstatestore",
    "bucketstatestore",
    "secret",
    "healthrecord",
}


def test_docs_build_strict_offline(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), "mkdocs is missing from the venv: pip install -c constraints.txt -e '.[dev]'"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        # Offline: nothing the build does may need the network (a proxy that does not exist refuses any attempt).
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    # --strict catches this too (validation.omitted_files); said here by name, so the failure is plain.
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [p.name for p in sorted(DOCS.rglob("*.md")) if f": {p.relative_to(DOCS).as_posix()}" not in nav]
    assert not missing, f"docs pages not in mkdocs.yml's nav: {missing}"


def test_readme_fits_on_two_screens_and_links_into_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 80, "README.md is the front door: at most 80 lines; move the rest into docs/"
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), f"README.md links to {target}, which does not exist"


# ---------------------------------------------------------------------------------------------------------------
# Every documented command is exercised.


@dataclass(frozen=True)
class Signature:
    path: tuple[str, ...]  # ("get",), ("create", "secret", "generic"), ("token", "create")
    kind: str | None  # a platform kind, "<resource>", or None (no kind, or not known statically)
    positionals: frozenset[str]  # which positionals were given: {"kind", "name"}
    flags: frozenset[str]  # the options given, by dest: {"namespace", "for_", "timeout"}

    def covers(self, documented: "Signature") -> bool:
        return (
            self.path == documented.path
            and self.kind == documented.kind
            and self.positionals == documented.positionals
            and documented.flags <= self.flags
        )

    def __str__(self) -> str:
        return f"ktx {' '.join(self.path)} kind={self.kind} given={sorted(self.positionals)} flags={sorted(self.flags)}"


PLACEHOLDER = "\0"  # an argument a test computes: its value is not known, only that it is there


def subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def signature(tokens: list[str]) -> Signature | None:
    """What a command line does, by the CLI's own grammar; None when it is not a ktx command line."""
    node, path, rest = cli_parser(), [], list(tokens)
    while choices := subparsers(node):
        if not rest or rest[0] not in choices:
            return None
        node = choices[rest.pop(0)]
        path.append(node.prog.split()[-1])  # the canonical name: `dest` is an alias of `destination`
    options = {s: a for a in node._actions for s in a.option_strings}
    positional_dests = [a.dest for a in node._actions if not a.option_strings and a.dest != "help"]
    flags, given = set(), []
    while rest:
        token = rest.pop(0)
        if token.startswith("-") and token != "-" and token != PLACEHOLDER:
            name = token.split("=", 1)[0]
            action = options.get(name)
            if action is None:
                return None
            flags.add(action.dest)
            if "=" not in token and action.nargs != 0 and rest:
                rest.pop(0)  # the option's value
        else:
            given.append(token)
    named = dict(zip(positional_dests, given))
    kind = named.get("kind")
    if kind is not None:
        singular = kind.lower().removesuffix("s")
        kind = None if kind == PLACEHOLDER else singular if singular in PLATFORM_KINDS else "<resource>"
    return Signature(tuple(path), kind, frozenset(named), frozenset(flags))


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(where, the command as shown, its tokens) for every `ktx` line in a fenced code block of commands (no
    language, or a shell's; a ```text block, such as a diagram, shows no commands)."""
    found = []
    for page in PAGES:
        in_block, commands, pending = False, False, ""
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                language = line.strip()[3:].strip()
                in_block, commands, pending = not in_block, language in ("", "sh", "bash", "shell", "console"), ""
                continue
            if not in_block or not commands:
                continue
            line = pending + line.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if not line.startswith("ktx "):
                continue
            tokens = shlex.split(line, comments=True)
            for stop in ("|", "&&", ";", ">", "&"):
                if stop in tokens:
                    tokens = tokens[: tokens.index(stop)]
            tokens = [t.strip("[]") for t in tokens]  # `[--pipeline render]`: an optional part, shown as run
            found.append((f"{page.relative_to(ROOT)}:{number}", " ".join(tokens), tokens[1:]))
    return found


def literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f"--from-literal=password={token}": the option is known
        head = node.values[0] if node.values else None
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("-"):
            return head.value
    return None


@lru_cache(maxsize=None)
def signatures_in_tests() -> tuple[tuple[str, Signature], ...]:
    top = set(subparsers(cli_parser()))
    found = []
    for source in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
            if name not in CLI_RUNNERS:
                continue
            args = list(call.args)
            if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
                args = list(args[0].elts)  # ktx(["get", ...])
            start = next((i for i, a in enumerate(args) if literal(a) in top), None)
            if start is None:
                continue
            tokens = []
            for arg in args[start:]:
                if isinstance(arg, ast.Starred):
                    break  # `*extra`: what follows is not known statically
                value = literal(arg)
                tokens.append(PLACEHOLDER if value is None else value)
            if (sig := signature(tokens)) is not None:
                found.append((f"{source.relative_to(ROOT)}:{call.lineno}", sig))
    return tuple(found)


def test_docs_show_ktx_commands_and_tests_run_the_cli() -> None:
    # The check below means something only if both sides are found.
    assert len(documented_commands()) >= 20, "fewer ktx command lines found in the docs than expected: parser broken?"
    assert len(signatures_in_tests()) >= 20, "fewer CLI calls found in the tests than expected: CLI_RUNNERS stale?"


@pytest.mark.parametrize("where,shown,tokens", documented_commands(), ids=[w for w, _, _ in documented_commands()])
def test_documented_command_parses_and_is_exercised(where: str, shown: str, tokens: list[str]) -> None:
    try:
        cli_parser().parse_args(tokens)
    except SystemExit:
        pytest.fail(f"{where}: `{shown}` is not a valid ktx command line")
    documented = signature(tokens)
    assert documented is not None, f"{where}: `{shown}` is not a ktx command line this check understands"
    runs = [where_run for where_run, sig in signatures_in_tests() if sig.covers(documented)]
    if shown in ALLOWED_UNRUN:
        assert not runs, f"{where}: `{shown}` is run by {runs[0]}: remove it from ALLOWED_UNRUN"
        return
    assert runs, (
        f"{where}: `{shown}` ({documented}) is shown in the docs but no test runs it; run it in "
        "tests/e2e/test_cli.py, or add it to ALLOWED_UNRUN in tests/unit/test_docs.py with the reason"
    )


def test_allowed_unrun_commands_are_still_shown() -> None:
    shown = {command for _, command, _ in documented_commands()}
    stale = sorted(set(ALLOWED_UNRUN) - shown)
    assert not stale, f"ALLOWED_UNRUN lists commands the docs no longer show: {stale}"

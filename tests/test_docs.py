"""The documentation as a user meets it (quick, no marker):

- every command's and subcommand's ``--help`` renders, with a summary, a description and examples;
  every flag that takes a value states its default; every example parses with its own command;
- the generated blocks of the reference pages equal what ``tools/gen_docs.py`` makes from the code;
- every ``--flag`` the README and the user pages mention exists, and in a command line it belongs to
  that command; every Python block in them parses;
- ``mkdocs build --strict`` builds the site (no broken link or anchor, no page outside the nav),
  with the network out of reach;
- the README stays under 250 lines and the model card under 200.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from arraydaemon.cli import build_parser, main
from tests.helpers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
# User-facing pages: the README and the site, except the research notes (history, which may quote
# flags of earlier versions or of one-off scripts).
USER_DOCS = [REPO_ROOT / "README.md"] + sorted(p for p in DOCS.rglob("*.md") if "research" not in p.parts)
# Flags of other programs the pages quote: llama.cpp's and vLLM's servers, headless chromium,
# systemctl, mkdocs (the test fails on an entry no page uses any more).
OTHER_PROGRAMS_FLAGS = {"--port", "--disable-gpu", "--now", "--strict"}


def load_gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO_ROOT / "tools" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_tree() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every parser by its command words: ``()`` for ``arraydaemon`` itself."""
    out = {}

    def walk(words, parser):
        out[words] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(words + (name,), child)

    walk((), build_parser())
    return out


COMMANDS = command_tree()


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))


# --- --help ---------------------------------------------------------------------------------------


def test_every_command_has_help():
    assert len(COMMANDS) >= 18  # the top level, its commands and the profile/config actions
    assert {("run",), ("replay",), ("profile", "verify"), ("config", "check")} <= set(COMMANDS)


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=lambda w: " ".join(w) or "arraydaemon")
def test_help_renders_as_documentation(words, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*words, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(('arraydaemon', *words))}")
    parser = COMMANDS[words]
    assert parser.description and parser.description.split(". ")[0].strip(), f"{words}: no summary"
    assert parser.epilog and parser.epilog.startswith("examples:"), f"{words}: no examples"
    assert "\nexamples:\n  " in out  # kept line by line, not rewrapped
    for action in parser._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            assert action.help, f"{words}: {action.option_strings} has no help"


def test_every_flag_that_takes_a_value_states_its_default():
    missing = []
    for words, parser in COMMANDS.items():
        in_required_group = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
        for action in parser._actions:
            if not action.option_strings or not takes_value(action) or action.required or action in in_required_group:
                continue
            if "default" not in parser._get_formatter()._expand_help(action):
                missing.append(f"arraydaemon {' '.join(words)} {action.option_strings[0]}")
    assert not missing, f"help without its default: {missing}"


def example_commands():
    for words, parser in COMMANDS.items():
        for line in (parser.epilog or "").splitlines()[1:]:
            yield words, line.strip()


@pytest.mark.parametrize("words,line", list(example_commands()), ids=lambda v: v if isinstance(v, str) else None)
def test_every_help_example_parses_with_its_command(words, line):
    argv = invocation(line)
    assert argv is not None, f"example does not run arraydaemon: {line}"
    assert tuple(argv[:len(words)]) == words, f"an example of `{' '.join(words)}` runs another command: {line}"
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"example does not parse (exit {exc.code}): {line}")


def invocation(line: str) -> list[str] | None:
    """The arguments after ``arraydaemon`` in a shell line (after a pipe, sudo or variables; before
    a comment), or None."""
    tokens = shlex.split(line, comments=True)
    for sep in ("|", "&&", ";"):
        if sep in tokens:
            tokens = tokens[len(tokens) - tokens[::-1].index(sep):]
    for i, token in enumerate(tokens):
        if token == "arraydaemon" or token.endswith("/arraydaemon"):
            return tokens[i + 1:]
    return None


# --- generated pages --------------------------------------------------------------------------------


def test_generated_reference_blocks_are_current():
    gen = load_gen_docs()
    stale = []
    for page in gen.PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        assert "<!-- generated: " in text, page
        if gen.render(text, page) != text:
            stale.append(f"docs/{page}")
    assert not stale, f"{', '.join(stale)} out of date with the code: run python tools/gen_docs.py"


def test_configuration_reference_lists_every_setting_with_its_default():
    from dataclasses import fields

    from arraydaemon.core.options import FeatureConfig, LocalizerConfig, TrackerConfig
    from arraydaemon.service.settings import KEYS

    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for cls in (FeatureConfig, LocalizerConfig, TrackerConfig):
        for f in fields(cls):
            row = re.search(rf"^\| `{f.name}` \| ([^|]+) \|", text, flags=re.M)
            assert row, f"{cls.__name__}.{f.name} missing"
            if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
                assert float(row.group(1).strip(" `")) == f.default, f.name
    for key in KEYS:
        assert f"| `{key}` |" in text, key
    # the bounds come from validate(): one that the code enforces shows up
    assert "`1 ≤ birth_hits ≤ birth_windows`" in text and "`0 ≤ integration_s ≤ 5.0`" in text


# --- flags and code in the docs ---------------------------------------------------------------------


def code_segments(text: str) -> list[str]:
    """Lines of fenced code blocks, and inline code spans outside them."""
    out, rest, fence = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        (out if fence else rest).append(line)
    out += re.findall(r"`([^`\n]+)`", "\n".join(rest))
    return out


def command_of(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The longest command words ``argv`` starts with, and the rest."""
    words = ()
    while len(words) < len(argv) and words + (argv[len(words)],) in COMMANDS:
        words += (argv[len(words)],)
    return words, argv[len(words):]


def test_flags_in_command_lines_of_the_docs_belong_to_their_command():
    wrong = []
    for path in USER_DOCS:
        for segment in code_segments(path.read_text(encoding="utf-8")):
            try:
                argv = invocation(segment.replace("\\", " "))
            except ValueError:  # not shell (an unbalanced quote in prose code)
                continue
            if not argv:
                continue
            words, rest = command_of(argv)
            known = options_of(COMMANDS[words]) | options_of(COMMANDS[()])
            for token in rest:
                flag = token.split("=", 1)[0]
                if flag.startswith("--") and flag not in known:
                    wrong.append(f"{path.relative_to(REPO_ROOT)}: `arraydaemon {' '.join(words)}` has no {flag}")
    assert not wrong, "\n".join(wrong)


def test_every_flag_the_docs_mention_exists():
    ours = set().union(*(options_of(p) for p in COMMANDS.values()))
    tools = set()
    for script in (REPO_ROOT / "tools").glob("*.py"):
        tools |= set(re.findall(r"""["'](--[a-z][a-z0-9-]*)["']""", script.read_text(encoding="utf-8")))
    unknown, seen = [], set()
    for path in USER_DOCS:
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", path.read_text(encoding="utf-8")):
            seen.add(flag)
            if flag not in ours | tools | OTHER_PROGRAMS_FLAGS:
                unknown.append(f"{path.relative_to(REPO_ROOT)}: {flag}")
    assert not unknown, f"flags in the docs that no command has: {sorted(set(unknown))}"
    assert OTHER_PROGRAMS_FLAGS <= seen, f"no page quotes {OTHER_PROGRAMS_FLAGS - seen} any more: drop it here"


def test_python_blocks_in_the_docs_parse():
    for path in [*USER_DOCS, REPO_ROOT / "arraydaemon" / "data" / "MODEL_CARD.md"]:
        for block in re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S):
            ast.parse(block, filename=str(path))


# --- the site and the front pages -------------------------------------------------------------------


def test_site_builds_strictly_and_offline(tmp_path):
    unreachable = "http://127.0.0.1:9"  # nothing listens there: a fetch during the build fails
    env = {**os.environ, "HTTP_PROXY": unreachable, "HTTPS_PROXY": unreachable, "http_proxy": unreachable,
           "https_proxy": unreachable, "NO_PROXY": "", "no_proxy": ""}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    for page in ("index.html", "reference/configuration/index.html", "reference/wire-format/index.html",
                 "benchmarks/index.html", "research/index.html", "model-card/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_readme_and_model_card_stay_short_and_their_links_resolve():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    card = REPO_ROOT / "arraydaemon" / "data" / "MODEL_CARD.md"
    assert len(readme.splitlines()) <= 250
    assert len(card.read_text(encoding="utf-8").splitlines()) <= 200
    assert (DOCS / "model-card.md").resolve() == card.resolve()  # the site shows the shipped card
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not re.match(r"[a-z]+://", target):
            assert (REPO_ROOT / target).exists(), f"README links to a missing {target}"

#!/usr/bin/env python3
"""Writes the generated parts of the documentation from the code, so they cannot drift from it:

- ``docs/reference/configuration.md``: the configuration file's keys (``service/settings.py``), the
  pipeline's flags (the ``run`` command's parser) and every stage setting with its default, its
  bounds and its meaning (``core/options.py``: defaults from the dataclasses, bounds from their
  ``validate()`` methods, meanings from the comments beside the fields);
- ``docs/reference/wire-format.md``: the field table and the limits of ``io/wire.py``;
- ``docs/reference/cli.md``: ``--help`` of every command.

Each page is hand-written prose with generated blocks between ``<!-- generated: NAME -->`` and
``<!-- end generated -->``; only the blocks are rewritten. ``python tools/gen_docs.py`` rewrites
them, ``--check`` exits 1 naming each page that differs (``tests/test_docs.py`` runs the check).

Why checked-in pages and not an MkDocs hook: the pages then read as they are in the repository
(on a code host, in an editor, offline without MkDocs), a change of a default shows up in review as
a change of the documentation, and building the site needs neither the package nor its imports.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import os
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from arraydaemon.core import options  # noqa: E402  (after the path fix, for a checkout without an install)
from arraydaemon.io import wire  # noqa: E402
from arraydaemon.service import settings  # noqa: E402

DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
HELP_COLUMNS = "100"  # argparse wraps to $COLUMNS; fixed, so the page does not depend on the terminal


# --- configuration -------------------------------------------------------------------------------


def _comments(source: str) -> dict[int, str]:
    """Comment text by line number (1-based) of a source text."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _field_meanings(cls) -> dict[str, str]:
    """Each field's comment: the one on its line, else the comment block right above it (which, for a
    group of fields, is given to the first and referred to by the others)."""
    source = inspect.getsource(options)
    comments = _comments(source)
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    lines = source.splitlines()
    out, group_head = {}, None
    for stmt in node.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        name, line = stmt.target.id, stmt.lineno
        above, k = [], line - 1
        while k >= 1 and lines[k - 1].strip().startswith("#"):
            above.insert(0, comments[k])
            k -= 1
        if line in comments:
            out[name] = comments[line]
        elif above:
            out[name], group_head = " ".join(above), name
        elif group_head is not None:
            out[name] = f"see `{group_head}`"
        else:
            out[name] = ""
        if above and line in comments:
            out[name] = " ".join(above) + " " + comments[line]
    return out


class _Inline(ast.NodeTransformer):
    """Replaces names by what they stand for: a loop variable or ``getattr(self, name)`` by the field,
    a module constant by its value, a one-line predicate of the module by its expression."""

    def __init__(self, names: dict[str, ast.expr]):
        self.names = names

    def visit_Name(self, node):
        if node.id in self.names:
            return self.names[node.id]
        value = getattr(options, node.id, None)
        if isinstance(value, (int, float, str, tuple)) and not isinstance(value, bool) and node.id.isupper():
            return ast.Constant(value)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        fn = getattr(options, node.func.id, None) if isinstance(node.func, ast.Name) else None
        if _is_type_check(node) or fn is None or not inspect.isfunction(fn) or fn.__module__ != options.__name__:
            return node
        body = ast.parse(inspect.getsource(fn)).body[0]
        returns = [s for s in body.body if isinstance(s, ast.Return)]
        params = [a.arg for a in body.args.args]
        if len(returns) != 1 or len(params) != len(node.args):
            return node
        return _Inline(dict(zip(params, node.args))).visit(returns[0].value)


_INVERSE = {ast.Lt: ast.GtE, ast.LtE: ast.Gt, ast.Gt: ast.LtE, ast.GtE: ast.Lt, ast.In: ast.NotIn,
            ast.NotIn: ast.In, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


def _requirement(test: ast.expr) -> ast.expr:
    """What must hold for ``if test: raise`` not to raise."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _INVERSE:
        return ast.Compare(test.left, [_INVERSE[type(test.ops[0])]()], test.comparators)
    return ast.UnaryOp(ast.Not(), test)


def _is_type_check(node: ast.expr) -> bool:
    """``is_number(x)``, ``math.isfinite(x)``: said by the bounds themselves."""
    name = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else (
        node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None)
    return name in ("is_number", "isfinite", "isinstance")


def _conjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [c for v in node.values for c in _conjuncts(v)]
    return [node]


def _fields_in(node: ast.expr) -> list[str]:
    return [n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"]


def _render(node: ast.expr) -> str:
    text = re.sub(r"\bself\.", "", ast.unparse(node))
    return text.replace("<=", "≤").replace(">=", "≥").replace("!=", "≠")


def _bounds(cls) -> dict[str, list[str]]:
    """The conditions ``cls.validate()`` enforces, by the fields each names."""
    out: dict[str, list[str]] = {}
    validate = getattr(cls, "validate", None)
    if validate is None:
        return out
    fn = ast.parse(inspect.cleandoc("\n" + inspect.getsource(validate))).body[0]

    def walk(stmts, names):
        for stmt in stmts:
            if isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) and isinstance(stmt.iter, ast.Tuple) \
                    and all(isinstance(e, ast.Constant) for e in stmt.iter.elts):
                for e in stmt.iter.elts:
                    field = ast.Attribute(ast.Name("self", ast.Load()), e.value, ast.Load())
                    walk(stmt.body, {**names, stmt.target.id: ast.Constant(e.value), "__field__": field})
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                    and isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "id", None) == "getattr" \
                    and "__field__" in names:
                names = {**names, stmt.targets[0].id: names["__field__"]}
            elif isinstance(stmt, ast.If):
                if any(isinstance(s, ast.Raise) for s in stmt.body):
                    req = _Inline({k: v for k, v in names.items() if k != "__field__"}).visit(
                        _requirement(ast.parse(ast.unparse(stmt.test), mode="eval").body))
                    kept = [c for c in _conjuncts(req) if not _is_type_check(c)]
                    for cond in kept:
                        for f in dict.fromkeys(_fields_in(cond)):
                            out.setdefault(f, []).append(_render(cond))
                walk(stmt.orelse, names)

    walk(fn.body, {})
    return out


def _setters() -> dict[tuple[str, str], list[str]]:
    """``(settings type, field) -> ["--flag", "config key"]``, read from ``settings.resolve_pipeline``."""
    fn = ast.parse(inspect.cleandoc("\n" + inspect.getsource(settings.resolve_pipeline))).body[0]
    holders = {"feats": "FeatureConfig", "loc": "LocalizerConfig", "tracker": "TrackerConfig"}
    out: dict[tuple[str, str], list[str]] = {}
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "replace" and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id in holders):
            continue
        for kw in node.keywords:
            src = kw.value.value if isinstance(kw.value, ast.Subscript) else kw.value
            if isinstance(src, ast.Attribute) and isinstance(src.value, ast.Name):
                how = f"`--{src.attr.replace('_', '-')}`" if src.value.id == "flags" else f"config `{src.attr}`"
                entry = out.setdefault((holders[node.args[0].id], kw.arg), [])
                if how not in entry:
                    entry.append(how)
    return out


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # a nested settings type
        return f"`{f.default_factory.__name__}()`"
    else:
        return "(required)"
    if value is None:
        return "none"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table(cls) -> str:
    meanings, bounds, setters, flag_help = _field_meanings(cls), _bounds(cls), _setters(), _flag_help()
    rows = ["| setting | default | bounds | set by | meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        bound = "; ".join(f"`{b}`" for b in bounds.get(f.name, [])) or "–"
        how = sorted(setters.get((cls.__name__, f.name), []), key=lambda h: not h.startswith("`--"))
        meaning = meanings.get(f.name) or next((flag_help[h.strip("`")] for h in how if h.strip("`") in flag_help), "")
        rows.append(f"| `{f.name}` | {_default(f)} | {_cell(bound)} | {', '.join(how) or 'Python only'} "
                    f"| {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def _key_flags() -> dict[str, list[str]]:
    """Each configuration key's flags: the one named like it (``run``'s or the top level's), else
    the flags that set the same settings (``band``: ``--fmin``, ``--fmax``)."""
    parsers = dict((" ".join(w), p) for w, p in _parsers())
    known = {s for name in ("", "run") for a in parsers[name]._actions for s in a.option_strings}
    by_field: dict[tuple[str, str], list[str]] = _setters()
    out = {}
    for key in settings.KEYS:
        flag = "--" + key.replace("_", "-")
        if flag in known:
            out[key] = [flag]
            continue
        fields = [f for f, hows in by_field.items() if f"config `{key}`" in hows]
        out[key] = [h.strip("`") for f in fields for h in by_field[f] if h.startswith("`--")]
    return out


def config_keys_table() -> str:
    """The configuration file's keys, from the table in ``service/settings.py``'s docstring."""
    doc = settings.__doc__
    m = re.search(r"^=+ =+\n(.*?)^=+ =+$", doc, flags=re.S | re.M)
    flags = _key_flags()
    rows = ["| key | meaning | flag (its help gives the default) |", "|---|---|---|"]
    documented = []
    for line in m.group(1).splitlines():
        key, _, meaning = line.partition(" ")
        documented.append(key)
        how = ", ".join(f"`{f}`" for f in flags.get(key, [])) or "–"
        rows.append(f"| `{key}` | {_cell(meaning.strip().replace('``', '`'))} | {how} |")
    if sorted(documented) != sorted(settings.KEYS):
        raise SystemExit(f"service/settings.py: its docstring documents {sorted(documented)}, "
                         f"the parser takes {sorted(settings.KEYS)}")
    return "\n".join(rows) + "\n"


def _parsers():
    """``(command words, parser)`` for the top-level parser and every command and subcommand."""
    from arraydaemon.cli import build_parser

    def walk(words, parser):
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(words + [name], child)

    yield from walk([], build_parser())


def _pipeline_group():
    """The ``pipeline`` argument group of ``run`` (shared by ``run``, ``replay`` and ``demo``)."""
    run = dict((" ".join(w), p) for w, p in _parsers())["run"]
    return next(g for g in run._action_groups if g.title == "pipeline")


def _flag_help() -> dict[str, str]:
    return {s: a.help or "" for a in _pipeline_group()._group_actions for s in a.option_strings}


def pipeline_flags_table() -> str:
    """The flags of the ``pipeline`` group (shared by ``run``, ``replay`` and ``demo``)."""
    group = _pipeline_group()
    rows = ["| flag | value | meaning |", "|---|---|---|"]
    for action in group._group_actions:
        value = action.metavar or (", ".join(action.choices) if action.choices else "")
        rows.append(f"| `{', '.join(action.option_strings)}` | {_cell(str(value))} | {_cell(action.help or '')} |")
    return "\n".join(rows) + "\n"


# --- wire format ---------------------------------------------------------------------------------


def wire_fields_block() -> str:
    """The field table of ``io/wire.py``'s docstring, as it is there."""
    lines = [line for line in wire.__doc__.splitlines() if line.startswith("|")]
    return "\n".join(lines) + "\n"


def wire_limits_table() -> str:
    rows = ["| what | value | name in `arraydaemon.io.wire` |", "|---|---|---|",
            f"| schema version (`v`) | {wire.SCHEMA_VERSION} | `SCHEMA_VERSION` |",
            f"| topics | {', '.join(f'`{t}`' for t in wire.TOPICS)} | `TOPICS` |",
            f"| default endpoint | `{wire.DEFAULT_ENDPOINT}` | `DEFAULT_ENDPOINT` |",
            f"| largest message | {wire.MAX_MESSAGE_BYTES:,} bytes | `MAX_MESSAGE_BYTES` |",
            f"| longest string | {wire.MAX_STRING} characters | `MAX_STRING` |",
            f"| most entries in a list or map | {wire.MAX_ITEMS} | `MAX_ITEMS` |",
            f"| largest byte string | {wire.MAX_BYTES:,} bytes | `MAX_BYTES` |",
            f"| largest magnitude of a number | {wire.MAX_NUMBER:g} | `MAX_NUMBER` |"]
    for name, (lo, hi) in wire.FIELD_RANGES.items():
        rows.append(f"| range of `{name}` | {lo:g} to {hi:,} | `FIELD_RANGES` |" if isinstance(hi, int)
                    else f"| range of `{name}` | {lo:g} to {hi:g} | `FIELD_RANGES` |")
    return "\n".join(rows) + "\n"


# --- command line --------------------------------------------------------------------------------


def cli_block() -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parts = []
        for words, parser in _parsers():
            title = " ".join(["arraydaemon", *words])
            if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions) and words:
                continue  # a group (`profile`, `config`): its subcommands follow, each with its own help
            parts.append(f"## `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        return "\n".join(parts)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


# --- pages ---------------------------------------------------------------------------------------

BLOCKS = {
    "config-keys": config_keys_table,
    "pipeline-flags": pipeline_flags_table,
    "feature-settings": lambda: settings_table(options.FeatureConfig),
    "localizer-settings": lambda: settings_table(options.LocalizerConfig),
    "tracker-settings": lambda: settings_table(options.TrackerConfig),
    "pipeline-settings": lambda: settings_table(options.PipelineOptions),
    "wire-fields": wire_fields_block,
    "wire-limits": wire_limits_table,
    "cli": cli_block,
}
PAGES = ("reference/configuration.md", "reference/wire-format.md", "reference/cli.md", "tracking.md")


def render(text: str, page: str = "page") -> str:
    """``text`` with every generated block rewritten."""
    def fill(m):
        name = m.group("name")
        if name not in BLOCKS:
            raise SystemExit(f"{page}: unknown generated block {name!r} (known: {', '.join(BLOCKS)})")
        return m.group(1) + BLOCKS[name]() + m.group(4)

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Rewrite the generated blocks of the reference pages from the code.",
                                 epilog="example: python tools/gen_docs.py --check")
    ap.add_argument("--check", action="store_true", help="only report pages that differ (exit 1), write nothing")
    args = ap.parse_args(argv)
    stale = []
    for page in PAGES:
        path = DOCS / page
        text = path.read_text(encoding="utf-8")
        new = render(text, page)
        if new != text:
            stale.append(page)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if stale:
        verb = "out of date" if args.check else "rewritten"
        print(f"{verb}: {', '.join('docs/' + p for p in stale)}"
              + (" (run: python tools/gen_docs.py)" if args.check else ""))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

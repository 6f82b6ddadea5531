"""The package's structure: one import direction, short functions (docstrings aside).

Every ``import`` in ``rnngraph/`` counts, at module level or inside a function (an import
moved into a function to dodge a cycle is still a cycle); ``TYPE_CHECKING`` blocks do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnngraph"
#: the longest function (lines from ``def`` to its last line, decorators excluded)
MAX_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (a package's ``__init__`` counts as the package)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from pkg import module`` imports the module; any other name, the package
            subs = [f"{stem}.{a.name}" for a in node.names]
            targets = [t for t in subs if t in known]
            if len(targets) < len(subs):
                targets.append(stem)
        else:
            continue
        for t in targets:
            if t in known and t != name:
                out.add(t)
    return out


def import_graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        for dep in _imports(name, path, set(mods)):
            # a module importing its own package's __init__ for a sibling is that sibling
            g.add_edge(name, dep)
    return g


def test_the_import_graph_of_the_package_has_no_cycle():
    g = import_graph()
    # a package's __init__ re-exports its modules: importing it means importing them
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles[:10])


def test_the_checker_sees_a_cycle(tmp_path):
    """The check above can fail: a two-module cycle through a function-level import."""
    g = nx.DiGraph()
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from .b import g\n")
    assert _imports("pkg.a", a, {"pkg.a", "pkg.b"}) == {"pkg.b"}
    g.add_edges_from([("pkg.a", "pkg.b"), ("pkg.b", "pkg.a")])
    assert list(nx.simple_cycles(g))


def _long(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions of ``tree`` longer than ``MAX_LINES``, from ``def`` to their last line,
    docstring included."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(PACKAGE.parent)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1})"
        for p in sorted(PACKAGE.rglob("*.py"))
        for n in _long(ast.parse(p.read_text()))
    ]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("n, ok", [(MAX_LINES, True), (MAX_LINES + 1, False)])
def test_the_length_check_counts_lines(n, ok):
    tree = ast.parse("def f():\n" + "    x = 1\n" * (n - 1))
    assert (not _long(tree)) is ok


def test_a_docstring_counts():
    tree = ast.parse('async def f():\n    """' + "doc\n" * 200 + '"""\n    return 1\n')
    assert [n.name for n in _long(tree)] == ["f"]

"""Tests that read ../shared/data carry the `shared` marker (`-m "not shared"` runs what a fresh machine can).

Checked by reading the test modules (no import, no collection): a test reads shared data when it takes the
`shared_data` fixture (or a fixture that does, in its module or in conftest.py), or names SHARED_DATA or a
"shared/data" path in its code. conftest.py also refuses, at collection, a test whose fixtures include
`shared_data` without the marker."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SHARED_PATH = re.compile(r"(^|[/\\])shared[/\\]data|\.\.[/\\]shared")


def _is_shared_mark(node: ast.expr) -> bool:
    """``pytest.mark.shared`` or ``mark.shared``, called or not."""
    if isinstance(node, ast.Call):
        node = node.func
    return isinstance(node, ast.Attribute) and node.attr == "shared" and (
        (isinstance(node.value, ast.Attribute) and node.value.attr == "mark")
        or (isinstance(node.value, ast.Name) and node.value.id == "mark"))


def _pytestmark(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in stmt.targets):
            value = stmt.value
            marks = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
            if any(_is_shared_mark(m) for m in marks):
                return True
    return False


def _code_nodes(node: ast.AST):
    """The nodes of ``node`` without docstrings (a docstring may talk about shared data)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant) and isinstance(child.value.value,
                                                                                                  str):
            continue
        yield child
        yield from _code_nodes(child)


def _names_shared_data(node: ast.AST) -> bool:
    for sub in _code_nodes(node):
        if isinstance(sub, ast.Name) and sub.id == "SHARED_DATA":
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == "SHARED_DATA":
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and SHARED_PATH.search(sub.value):
            return True
        if (isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div) and isinstance(sub.right, ast.Constant)
                and sub.right.value == "data" and isinstance(sub.left, ast.BinOp)
                and isinstance(sub.left.right, ast.Constant) and sub.left.right.value == "shared"):
            return True  # ... / "shared" / "data"
    return False


def _is_fixture(fn: ast.FunctionDef) -> bool:
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
                isinstance(target, ast.Name) and target.id == "fixture"):
            return True
    return False


def _uses(fn: ast.FunctionDef) -> set[str]:
    """Fixture names a function asks for: its arguments and ``pytest.mark.usefixtures(...)``."""
    names = {a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]}
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "usefixtures":
            names |= {a.value for a in dec.args if isinstance(a, ast.Constant)}
    return names


def _functions(tree: ast.Module):
    """(function, its class or None) at module level and in classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node, None
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield sub, node


def _shared_fixtures(trees: list[ast.Module], known: set[str]) -> set[str]:
    """Fixtures that read shared data, directly or through other fixtures (to a fixed point)."""
    shared = set(known)
    fixtures = [fn for tree in trees for fn, _ in _functions(tree) if _is_fixture(fn)]
    changed = True
    while changed:
        changed = False
        for fn in fixtures:
            if fn.name not in shared and (_uses(fn) & shared or _names_shared_data(fn)):
                shared.add(fn.name)
                changed = True
    return shared


def unmarked_shared_tests(source: str, conftest_fixtures: set[str], name: str = "<module>") -> list[str]:
    """The tests of a module that read shared data without the `shared` marker (and "<module level>" when code
    outside any function names shared data without a module-level ``pytestmark``)."""
    tree = ast.parse(source, filename=name)
    if _pytestmark(tree.body):
        return []
    shared = _shared_fixtures([tree], conftest_fixtures)
    missing = []
    functions = {fn for fn, _ in _functions(tree)}
    outside = ast.Module(body=[s for s in tree.body if s not in functions and not isinstance(s, ast.ClassDef)],
                         type_ignores=[])
    if _names_shared_data(outside):
        missing.append("<module level>")
    for fn, cls in _functions(tree):
        if not fn.name.startswith("test") or _is_fixture(fn):
            continue
        if not (_uses(fn) & shared or _names_shared_data(fn)):
            continue
        marked = any(_is_shared_mark(d) for d in fn.decorator_list) or (
            cls is not None and (any(_is_shared_mark(d) for d in cls.decorator_list) or _pytestmark(cls.body)))
        if not marked:
            missing.append(fn.name if cls is None else f"{cls.name}.{fn.name}")
    return missing


def _conftest_fixtures() -> set[str]:
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    return _shared_fixtures([tree], {"shared_data"})


def test_every_test_that_reads_shared_data_carries_the_marker():
    conftest = _conftest_fixtures()
    assert "shared_data" in conftest
    missing = {}
    readers = 0
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue  # this checker quotes shared paths in its own examples
        source = path.read_text(encoding="utf-8")
        found = unmarked_shared_tests(source, conftest, path.name)
        if found:
            missing[path.name] = found
        readers += "shared_data" in source
    assert readers >= 5, "the scan found too few modules using shared_data: is the checker broken?"
    assert not missing, f"tests reading ../shared/data without @pytest.mark.shared: {missing}"


def test_the_checker_finds_an_unmarked_reader():
    conftest = {"shared_data"}
    unmarked = '''
import pytest
from tests.conftest import SHARED_DATA

@pytest.fixture
def rows(shared_data):
    return shared_data / "wga"

def test_direct(shared_data): ...

def test_through_a_fixture(rows): ...

def test_by_path(tmp_path):
    open(SHARED_DATA / "x")

def test_by_literal():
    open("../shared/data/wga/catalog_2018.csv")

class TestGroup:
    def test_in_class(self, shared_data): ...

@pytest.mark.shared
def test_marked(shared_data): ...

def test_unrelated(tmp_path):
    """Mentions ../shared/data only in its docstring."""
'''
    assert unmarked_shared_tests(unmarked, conftest) == [
        "test_direct", "test_through_a_fixture", "test_by_path", "test_by_literal", "TestGroup.test_in_class"]
    assert unmarked_shared_tests("import pytest\npytestmark = [pytest.mark.shared]\n" + unmarked, conftest) == []
    assert unmarked_shared_tests('ROOT = REPO.parent / "shared" / "data"\n', conftest) == ["<module level>"]

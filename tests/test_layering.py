"""Data flows one way: a lower layer never imports an upper one, and no module reaches into another module's
private (underscore) names (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vislink"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Lower number = lower layer. A module may import its own layer and any lower one.
LAYERS = {
    "errors": 0, "config": 0, "hashing": 0,
    "formats": 0,  # readers of outside formats (Replica's CSV files, WGA paths): every stage may use them
    "store": 1,
    "index": 2,
    "graph": 3,
    "encoder": 4, "augment": 4, "local": 4,
    "ingest": 5, "search": 5,
    "evaluation": 6,
    "training": 7, "jobs": 7,  # jobs run ingest, add-variant, evaluate (and may run training)
    "ui": 8, "cli": 8,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vislink" else None


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names, relative imports resolved against ``path``'s package."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path):
    """(line, imported module, imported name or None) for every import of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            for alias in node.names:
                yield node.lineno, module, alias.name


def _package_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_lower_layers_never_import_upper_ones():
    violations = []
    for path in _package_files():
        own = _stage(_module_name(path))
        if own is None or own not in LAYERS:
            continue
        for lineno, module, name in _imports(path):
            targets = [module] + ([f"{module}.{name}"] if name and module == "vislink" else [])
            for target in targets:
                other = _stage(target)
                if other in LAYERS and LAYERS[other] > LAYERS[own]:
                    violations.append(f"{path.relative_to(ROOT)}:{lineno} ({own}) imports {target} ({other})")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def test_no_module_imports_another_modules_private_names():
    """``from x import _name`` and ``import x._private`` are refused everywhere in vislink/, relative imports too;
    a module's private names are its own business (dunders such as ``__version__`` are public)."""
    violations = []
    for path in _package_files():
        for lineno, module, name in _imports(path):
            if not module.startswith("vislink"):
                continue
            if any(_private(p) for p in module.split(".")) and module.split(".")[-1] != "__main__":
                violations.append(f"{path.relative_to(ROOT)}:{lineno} imports private module {module}")
            if name and _private(name):
                violations.append(f"{path.relative_to(ROOT)}:{lineno} imports {module}.{name}")
    assert not violations, "private names imported across modules:\n" + "\n".join(violations)


def test_the_private_name_check_sees_relative_imports(tmp_path):
    # The check must catch ``from .pipeline import _Ctx`` as well as the absolute form.
    pkg = tmp_path / "vislink" / "ingest"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    mod = pkg / "queue.py"
    mod.write_text("from .pipeline import _Ctx\nfrom ..store import session_scope\n")
    node_a, node_b = [n for n in ast.parse(mod.read_text()).body]
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _absolute(mod, node_a) == "vislink.ingest.pipeline"
        assert _absolute(mod, node_b) == "vislink.store"
    finally:
        ROOT = saved


def test_every_stage_is_in_the_layer_table():
    stages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert stages <= set(LAYERS), f"add {stages - set(LAYERS)} to LAYERS"


def test_the_layer_order_is_the_one_docs_architecture_states():
    """docs/architecture.md's ``a < b < c / d`` line and LAYERS say the same order."""
    text = ARCHITECTURE.read_text()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("config") and "<" in ln), None)
    assert line, "docs/architecture.md must state the layer order as 'config < ... < ui / cli'"
    documented: dict[str, int] = {}
    for level, group in enumerate(line.split("<")):
        for name in re.split(r"[/,]", group):
            documented[name.strip()] = level
    # Equal layers in LAYERS must be equal in the docs, and lower must be lower.
    names = [n for n in LAYERS if n in documented]
    missing = sorted(set(LAYERS) - set(documented))
    assert not missing, f"docs/architecture.md's layer line lacks {missing}"
    for a in names:
        for b in names:
            code = (LAYERS[a] > LAYERS[b]) - (LAYERS[a] < LAYERS[b])
            docs = (documented[a] > documented[b]) - (documented[a] < documented[b])
            assert code == docs, f"{a} vs {b}: LAYERS says {code:+d}, docs/architecture.md says {docs:+d}"


# The search stage sits beside ingest: it reads what ingest wrote, through the store and the index only.
SEARCH_MAY_IMPORT = {"config", "errors", "hashing", "store", "index", "encoder", "local", "search"}


def test_search_depends_only_on_config_store_index_and_encoder():
    violations = []
    for path in sorted((PACKAGE / "search").rglob("*.py")):
        for lineno, module, _ in _imports(path):
            stage = _stage(module)
            if stage is not None and stage not in SEARCH_MAY_IMPORT:
                violations.append(f"{path.relative_to(ROOT)}:{lineno} imports {module}")
    assert (PACKAGE / "search" / "__init__.py").is_file(), "search is a sub-package"
    assert not violations, "the search stage imports an upper or sibling stage:\n" + "\n".join(violations)


# -- the stage picture in docs/architecture.md, drawn from the imports -------------------------------------
# Every stage may use the layer-0 utilities; drawing those arrows would hide the ones that matter.
UTILITIES = {"config", "errors", "hashing", "formats"}
GRAPH_START, GRAPH_END = "<!-- stage-graph:start -->", "<!-- stage-graph:end -->"


def stage_imports() -> set[tuple[str, str]]:
    """(importer, imported) stage pairs that some module of vislink/ really has."""
    edges = set()
    for path in _package_files():
        own = _stage(_module_name(path))
        for _, module, _name in _imports(path):
            other = _stage(module)
            if own and other and other != own and other not in UTILITIES:
                edges.add((own, other))
    return edges


def stage_graph_markdown() -> str:
    """A Mermaid flowchart (GitHub draws it): an arrow from each stage to each stage it imports."""
    edges = sorted(stage_imports(), key=lambda e: (-LAYERS[e[0]], e[0], -LAYERS[e[1]], e[1]))
    return "\n".join(["```mermaid", "flowchart TB", *(f"  {a} --> {b}" for a, b in edges), "```"])


def _documented_graph(text: str) -> str | None:
    if GRAPH_START not in text or GRAPH_END not in text:
        return None
    return text.split(GRAPH_START, 1)[1].split(GRAPH_END, 1)[0].strip()


def test_the_stage_picture_matches_the_imports():
    documented = _documented_graph(ARCHITECTURE.read_text())
    assert documented == stage_graph_markdown(), (
        "docs/architecture.md's stage picture is out of date: run `python tests/test_layering.py --write`")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_layering.py --write   (redraws the stage picture in docs/architecture.md)")
    text = ARCHITECTURE.read_text()
    if _documented_graph(text) is None:
        sys.exit(f"{ARCHITECTURE} lacks the {GRAPH_START} / {GRAPH_END} markers")
    head, rest = text.split(GRAPH_START, 1)
    ARCHITECTURE.write_text(f"{head}{GRAPH_START}\n{stage_graph_markdown()}\n{GRAPH_END}{rest.split(GRAPH_END, 1)[1]}")
    print(f"wrote the stage picture into {ARCHITECTURE}")

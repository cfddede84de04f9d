"""Data flows one way: a lower layer never imports an upper one (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vislink"

# Lower number = lower layer. A module may import its own layer and any lower one.
LAYERS = {
    "errors": 0, "config": 0, "hashing": 0,
    "store": 1, "index": 1,
    "graph": 2,
    "encoder": 3,
    "ingest": 4, "search": 4,
    "evaluation": 5,
    "training": 6,
    "ui": 7, "cli": 7,
}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vislink" else None


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_lower_layers_never_import_upper_ones():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _stage(".".join(rel.parts))
        if own is None or own not in LAYERS:
            continue
        for lineno, module in _imports(path):
            other = _stage(module)
            if other in LAYERS and LAYERS[other] > LAYERS[own]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} ({own}) imports {module} ({other})")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_every_stage_is_in_the_layer_table():
    stages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert stages <= set(LAYERS), f"add {stages - set(LAYERS)} to LAYERS"

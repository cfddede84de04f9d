"""docs/reliability.md names, for each guarantee, the tests that show it: each named test must exist (a renamed or
removed test makes the page claim what nothing checks any more)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_named_in_reliability_md_exists():
    text = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = sorted(set(re.findall(r"(tests/[\w/]+\.py)::(\w+)", text)))
    assert len(named) >= 40, "docs/reliability.md lost its tests"
    missing = []
    for path, name in named:
        source = REPO / path
        if not source.is_file() or not re.search(rf"^(async )?def {name}\(", source.read_text(encoding="utf-8"),
                                                 re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert missing == [], f"docs/reliability.md names tests that do not exist: {missing}"


def test_the_sections_other_items_fill_are_there():
    headings = re.findall(r"^## (.+)$", (REPO / "docs" / "reliability.md").read_text(encoding="utf-8"), re.MULTILINE)
    for heading in ("Kill at any moment", "Bad files", "Races", "Fetch rules", "Limits", "Exports", "Secrets",
                    "Memory bounds", "Writes", "Errors in the UI"):
        assert heading in headings, heading

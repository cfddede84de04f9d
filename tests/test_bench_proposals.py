"""benchmarks/proposals.py (issue #19 item 3): its verdict count on hand-made rankings, and a tiny synthetic run
end to end (the real-set loop needs ../shared and minutes of encoding: its figures are in docs/discovery.md)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "proposals.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_proposals", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verdicts_to_counts_one_by_one_and_with_groups():
    bench = _bench()
    # One group of four (six true pairs) and a false pair between.
    truth = {(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)}
    ranked = [(1, 2, 0.9), (5, 6, 0.85), (2, 3, 0.8), (1, 3, 0.7), (3, 4, 0.6), (1, 4, 0.5), (2, 4, 0.4)]
    # One by one: 5 true pairs (80 % of 6 is 4.8) are known after the 6th verdict (the false pair costs one).
    assert bench.verdicts_to(0.8, ranked, truth, with_groups=False) == 6
    # With groups: 1-2, 5-6 (refused), 2-3 makes {1,2,3} (three pairs), 1-3 is answered (no verdict), 3-4 makes
    # the group of four: all six known after 4 verdicts.
    assert bench.verdicts_to(0.8, ranked, truth, with_groups=True) == 4
    assert bench.verdicts_to(1.0, ranked[:2], truth, with_groups=False) is None


def test_a_tiny_synthetic_run_prints_its_timing(tmp_path):
    env = {**os.environ, "VISLINK_THREADS": "2", "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, str(BENCH), "--no-real", "--synthetic", "600", "--ks", "5"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "synthetic collection of 600 images" in out.stdout
    assert "k=5:" in out.stdout and "600 images searched (top 5)" in out.stdout and "open proposals stored" in out.stdout

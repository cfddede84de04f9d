"""benchmarks/search.py and benchmarks/real_vectors.py, run tiny: the vector model fitted on clustered random
vectors (no ../shared, no encoder weights), the benchmark as a subprocess, its Markdown table checked row by row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_vectors as rv  # noqa: E402


def clustered(n: int = 240, dim: int = 48, centres: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    return (c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim))).astype(np.float32)


def test_model_samples_unit_vectors_shaped_like_the_data():
    real = clustered()
    model = rv.fit_model(real, rank=8, components=6)
    x = model.sample(300, seed=3)
    assert x.shape == (300, 48) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    same, again = model.sample(50, seed=4), model.sample(50, seed=4)
    np.testing.assert_array_equal(same, again)  # the benchmark's data and queries are reproducible
    real_s, sampled_s = rv.shape_stats(real), rv.shape_stats(x[:240])
    random_s = rv.shape_stats(rv.random_unit(240, 48, 5))
    # Clustered data: sampled nearest neighbours are far closer than isotropic random ones, near the real ones.
    assert sampled_s["nn1"] > random_s["nn1"] + 0.3
    assert abs(sampled_s["nn1"] - real_s["nn1"]) < 0.15
    assert abs(sampled_s["pair_mean"] - real_s["pair_mean"]) < 0.1


def test_benchmark_prints_a_row_per_configuration_with_recall(tmp_path):
    np.save(tmp_path / "real.npy", clustered())
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search.py"), "--sizes", "1500", "--queries", "5",
         "--real-npy", str(tmp_path / "real.npy"), "--rank", "8", "--components", "4", "--hnsw", "8/32",
         "--ef", "64", "--folder", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert {"recall@10", "recall@200", "p50 ms top-200", "batch q/s", "disk MB"} <= set(header)
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
    kinds = [(r["engine"], r["index"].split(";")[0], r["quantization"].split(",")[0]) for r in rows]
    assert kinds == [("numpy", "exact matmul (float32)", "none"),
                     ("qdrant-edge", "HNSW m 8, ef_construct 32", "none"),
                     ("qdrant-edge", "HNSW m 8, ef_construct 32", "int8"),
                     ("qdrant-edge", "exact scan", "none"),
                     ("qdrant-edge", "int8 scan, no graph (qdrant_edge shard, m 0)", "int8"),
                     ("qdrant-client local", "exact (numpy in Python), :memory:", "none")]
    for r in rows:
        assert r["N"] == "1,500" and r["dim"] == "48"
        assert float(r["p50 ms top-200"]) > 0 and float(r["load"]) >= 0
        # Exact engines must find numpy's top-k; the graph on 1,500 clustered points nearly all of it.
        floor = 0.9 if "HNSW" in r["index"] else 1.0
        assert float(r["recall@10"]) >= floor and float(r["recall@200"]) >= floor, r
    assert all(float(r["disk MB"]) > 0 for r in rows if r["engine"] == "qdrant-edge")


def test_benchmark_refuses_an_unknown_engine():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "search.py"), "--engines", "faiss", "--random"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "unknown engines ['faiss']" in result.stderr


@pytest.mark.shared
def test_shared_files_lists_the_linked_paintings_and_a_wga_subset():
    if not (rv.SHARED / "paintings_linked").is_dir() or not (rv.SHARED / "wga_sample").is_dir():
        pytest.skip(f"no shared data at {rv.SHARED}")
    files = rv.shared_files(wga=30)
    assert len(files) == 84 + 30 and len(set(files)) == len(files)
    assert all(p.is_file() for p in files)


def test_calibration_benchmark_reports_the_calibrated_collection(tmp_path):
    """benchmarks/calibration.py, tiny: a poor graph (m 2) calibrated to a high target, then rebuilt denser, and its
    held-out table (the policy's factor, the calibrated one) printed with recall against numpy."""
    np.save(tmp_path / "real.npy", clustered())
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "TMPDIR": str(tmp_path),
           "VISLINK_INDEX_HNSW_EF_FACTOR": "1", "VISLINK_INDEX_HNSW_EF": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "calibration.py"), "--n", "3000", "--queries", "10",
         "--recall-queries", "8", "--real-npy", str(tmp_path / "real.npy"), "--rank", "8", "--components", "4",
         "--m", "2", "--ef-construct", "4", "--full-scan-kb", "1", "--target", "0.999"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "c: 3000 points, exact -> HNSW m=4 ef_construct=8" in out and "rebuilt with m 4: at m 2" in out, out
    rows = [line for line in out.splitlines() if line.startswith("| policy's") or line.startswith("| calibrated")]
    assert len(rows) == 2, out
    recalls = [float(r.split("|")[3]) for r in rows]
    assert 0 < recalls[0] <= recalls[1] <= 1, rows  # the calibrated factor finds at least as much

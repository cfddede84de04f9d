"""`vislink index export / import` (issue #18 item 4): a collection moved between backends without encoding
again — qdrant-edge -> folder -> qdrant-local and back, sparse and regional collections, a resumed import, and
bad manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vislink.errors import FormatError
from vislink.index import Point, SparseVector
from vislink.index.edge import EdgeIndex
from vislink.index.numpy_index import NumpyIndex
from vislink.index.payload import PAYLOAD_INDEXES
from vislink.index.qdrant import QdrantClientIndex
from vislink.index.transfer import MANIFEST, export_collection, import_collection, read_manifest

N, DIM, BATCH = 300, 16, 64
NAME = "vislink_t_v"


def _points(seed: int = 0) -> list[Point]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    schools = ["Italian", "Flemish", None]
    return [Point(i * 3 + 1, vectors[i], {"image_id": i * 3 + 1, "collection": "t", "artist": f"A{i % 7}",
                                          "year_start": 1400 + i, "school": schools[i % 3], "title": f"t{i} é"})
            for i in range(N)]


def _sparse(seed: int = 1) -> list[SparseVector]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N):
        idx = np.sort(rng.choice(1000, size=int(rng.integers(1, 12)), replace=False))
        out.append(SparseVector(tuple(int(k) for k in idx), tuple(float(v) for v in rng.random(len(idx)))))
    return out


def _all(index, name):
    out, offset = {}, None
    while True:
        page, offset = index.scroll(name, limit=100, offset=offset, with_vectors=True)
        out.update({pid: (payload, vec) for pid, payload, vec in page})
        if offset is None:
            return out


def _same(a, b, name_a=NAME, name_b=NAME):
    pa, pb = _all(a, name_a), _all(b, name_b)
    assert sorted(pa) == sorted(pb)
    for pid, (payload, vec) in pa.items():
        assert pb[pid][0] == payload
        np.testing.assert_allclose(pb[pid][1], vec, atol=1e-6)


@pytest.fixture
def edge(tmp_path):
    index = EdgeIndex(tmp_path / "edge")
    yield index
    index.close()


@pytest.fixture
def local(tmp_path):
    index = QdrantClientIndex(str(tmp_path / "local"))
    yield index
    index.close()


def test_round_trip_edge_local_edge(tmp_path, edge, local):
    edge.create_collection(NAME, DIM, payload_indexes=PAYLOAD_INDEXES)
    edge.upsert(NAME, _points())
    out = tmp_path / "out"
    summary = export_collection(edge, NAME, out, batch_size=BATCH, progress=False)
    assert (summary.count, summary.batches, summary.sparse, summary.regions) == (N, 5, False, False)
    manifest = read_manifest(out)
    assert manifest["dim"] == DIM and manifest["payload_indexes"] == PAYLOAD_INDEXES
    assert all(len(b["sha256"]) == 64 for b in manifest["batches"])

    summary = import_collection(local, out, progress=False)
    assert (summary.written, summary.skipped, summary.target_count) == (5, 0, N)
    _same(edge, local)
    flemish = _points()[4]  # schools cycle Italian, Flemish, None: i = 4 is Flemish
    hits = local.query(NAME, flemish.vector, limit=3, flt={"school": "Flemish"})
    assert hits[0].id == flemish.id and all(h.payload["school"] == "Flemish" for h in hits)
    # and back: local -> folder -> a fresh edge collection under another name
    back = tmp_path / "back"
    summary = export_collection(local, NAME, back, batch_size=100, progress=False)
    assert (summary.count, summary.batches, summary.sparse, summary.regions) == (N, 3, False, False)
    import_collection(edge, back, collection="vislink_t_back", progress=False)
    _same(edge, edge, NAME, "vislink_t_back")


def test_sparse_collection_round_trip(tmp_path, edge, local):
    points, sparse = _points(), _sparse()
    edge.create_collection(NAME, DIM, payload_indexes=PAYLOAD_INDEXES, sparse=True)
    edge.upsert(NAME, points[:200], sparse=sparse[:200])
    edge.upsert(NAME, points[200:])  # points without a sparse vector travel too
    summary = export_collection(edge, NAME, tmp_path / "out", batch_size=BATCH, progress=False)
    assert summary.sparse and not summary.regions
    import_collection(local, tmp_path / "out", progress=False)
    _same(edge, local)
    ids = [p.id for p in points]
    assert local.retrieve_sparse(NAME, ids) == edge.retrieve_sparse(NAME, ids)
    assert len(local.retrieve_sparse(NAME, ids)) == 200
    query = sparse[7]
    assert [h.id for h in local.query_sparse(NAME, query, limit=5)] == [h.id for h in edge.query_sparse(NAME, query, limit=5)]
    # and back from qdrant-local, which finds the sparse vectors too
    summary = export_collection(local, NAME, tmp_path / "back", batch_size=BATCH, progress=False)
    assert summary.sparse and not summary.regions and summary.count == N
    import_collection(edge, tmp_path / "back", collection="vislink_t_back", progress=False)
    assert edge.retrieve_sparse("vislink_t_back", ids) == edge.retrieve_sparse(NAME, ids)


def test_regions_collection_round_trip(tmp_path, edge, local):
    rng = np.random.default_rng(2)
    points = _points()[:50]
    regions = [rng.normal(size=(int(rng.integers(1, 5)), DIM)).astype(np.float32) for _ in points]
    edge.create_collection(NAME, DIM, regions=True)
    edge.upsert(NAME, points, regions=regions)
    summary = export_collection(edge, NAME, tmp_path / "out", batch_size=16, progress=False)
    assert summary.regions and not summary.sparse
    memory = NumpyIndex()
    import_collection(memory, tmp_path / "out", progress=False)
    _same(edge, memory)
    ids = [p.id for p in points]
    got, want = memory.retrieve_regions(NAME, ids), edge.retrieve_regions(NAME, ids)
    assert sorted(got) == sorted(want)
    for pid in ids:
        np.testing.assert_allclose(got[pid], want[pid], atol=1e-6)
    import_collection(local, tmp_path / "out", progress=False)
    assert local.retrieve_regions(NAME, ids).keys() == want.keys()
    summary = export_collection(local, NAME, tmp_path / "back", batch_size=16, progress=False)
    assert summary.regions and summary.count == len(points)
    for pid, matrix in local.retrieve_regions(NAME, ids).items():
        np.testing.assert_allclose(matrix, want[pid], atol=1e-6)


class _Killed(Exception):
    pass


def test_interrupted_import_resumes_to_the_same_end_state(tmp_path, edge, local):
    edge.create_collection(NAME, DIM, payload_indexes=PAYLOAD_INDEXES)
    edge.upsert(NAME, _points())
    export_collection(edge, NAME, tmp_path / "out", batch_size=BATCH, progress=False)

    def kill_after(k):
        def hook(done):
            if done == k:
                raise _Killed
        return hook

    with pytest.raises(_Killed):
        import_collection(local, tmp_path / "out", progress=False, on_batch=kill_after(2))
    assert local.count(NAME) == 2 * BATCH
    summary = import_collection(local, tmp_path / "out", progress=False)
    assert (summary.skipped, summary.written, summary.target_count) == (2, 3, N)
    _same(edge, local)
    again = import_collection(local, tmp_path / "out", progress=False)
    assert (again.skipped, again.written) == (5, 0)


def test_bad_or_missing_manifest_names_the_file(tmp_path, edge):
    missing = tmp_path / "nothing"
    missing.mkdir()
    with pytest.raises(FormatError, match=str(missing / MANIFEST)):
        import_collection(edge, missing, progress=False)
    (missing / MANIFEST).write_text("{not json")
    with pytest.raises(FormatError, match="manifest.json: unreadable manifest"):
        import_collection(edge, missing, progress=False)
    (missing / MANIFEST).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(FormatError, match="not a vislink index export"):
        read_manifest(missing)

    edge.create_collection(NAME, DIM)
    edge.upsert(NAME, _points()[:20])
    out = tmp_path / "out"
    export_collection(edge, NAME, out, batch_size=8, progress=False)
    batch = out / "batch-000001.npz"
    batch.write_bytes(batch.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(FormatError, match="batch-000001.npz: sha256 differs"):
        import_collection(NumpyIndex(), out, progress=False)
    assert not edge.collection_exists("vislink_t_none")


def test_cli_export_import_between_the_embedded_backends(vislink_env, tmp_path):
    from typer.testing import CliRunner

    from vislink.cli import app
    from vislink.index import build_index

    source = build_index(vislink_env, "qdrant-edge")
    source.create_collection(NAME, DIM, payload_indexes=PAYLOAD_INDEXES)
    source.upsert(NAME, _points())
    source.close()
    runner = CliRunner()
    out = tmp_path / "export"
    result = runner.invoke(app, ["index", "export", NAME, "-o", str(out), "--from-backend", "qdrant-edge",
                                 "--batch-size", "100", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"exported {NAME}: {N} points, {DIM}-d; 3 batches (3 written)" in result.output
    result = runner.invoke(app, ["index", "import", str(out), "--to-backend", "qdrant-local", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"the target holds {N}" in result.output
    result = runner.invoke(app, ["index", "import", str(out), "--to-backend", "qdrant-local", "--no-progress"])
    assert "3 already present" in result.output
    source, target = build_index(vislink_env, "qdrant-edge"), build_index(vislink_env, "qdrant-local")
    try:
        _same(source, target)
    finally:
        source.close()
        target.close()
    result = runner.invoke(app, ["index", "export", "-o", str(out)])
    assert result.exit_code != 0 and "--all" in str(result.exception or result.output)

"""The embedded index on disk: persistence across restarts and kills, one process per folder (what
ingest workers may do), threads sharing one index, the registry's choice of backend, and a Qdrant
server that cannot be reached. Real folders on the real disk, real subprocesses."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from vislink.errors import ConfigError, IndexUnavailable, NotFound
from vislink.index import AnyOf, Point, Range, SparseVector
from vislink.index.numpy_index import NumpyIndex

REPO = Path(__file__).resolve().parents[1]
DIM = 16


@pytest.fixture
def ram_path(tmp_path):
    """A folder in RAM where there is one, for tests about behaviour rather than durability (each
    acknowledged write is fsynced, which costs a second here on disk). Persistence tests use tmp_path."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="vislink-test-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _points(n=60, seed=0, start=0):
    rng = np.random.default_rng(seed)
    return [Point(start + i, rng.standard_normal(DIM).astype(np.float32),
                  {"artist": ["A", "B", "C"][i % 3], "year": 1400 + 7 * i}) for i in range(n)]


def _edge(root):
    from vislink.index.edge import EdgeIndex

    return EdgeIndex(root)


def _local(root):
    from vislink.index.qdrant import QdrantClientIndex

    return QdrantClientIndex(str(root))


def _run(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# -- persistence --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [_edge, _local], ids=["qdrant-edge", "qdrant-local"])
def test_close_and_reopen_finds_the_same_points(tmp_path, make):
    points = _points(45)
    sparse = [SparseVector((i, 100 + i % 5), (1.0 + i / 100, 0.5)) for i in range(len(points))]
    referee = NumpyIndex()
    index = make(tmp_path / "index")
    for ix in (index, referee):
        ix.create_collection("vislink_c_v", DIM, payload_indexes={"artist": "keyword", "year": "integer"}, sparse=True)
        ix.upsert("vislink_c_v", points, sparse=sparse)
        ix.delete("vislink_c_v", [5, 6])
    queries = np.random.default_rng(1).standard_normal((3, DIM)).astype(np.float32)
    index.close()

    again = make(tmp_path / "index")
    try:
        assert again.list_collections() == ["vislink_c_v"]
        assert again.count("vislink_c_v") == len(points) - 2
        assert again.count("vislink_c_v", {"artist": "B", "year": Range(gte=1500)}) == \
            referee.count("vislink_c_v", {"artist": "B", "year": Range(gte=1500)})
        for got, want in zip(again.query_batch("vislink_c_v", queries, limit=8, exact=True),
                             referee.query_batch("vislink_c_v", queries, limit=8)):
            assert [h.id for h in got] == [h.id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
        got = again.query_sparse("vislink_c_v", SparseVector((7, 40), (1.0, 1.0)), limit=3)
        assert [h.id for h in got] == [40, 7]
        (pid, payload, vector), = again.retrieve("vislink_c_v", [11], with_vectors=True)
        assert payload == points[11].payload
        np.testing.assert_allclose(vector, points[11].vector / np.linalg.norm(points[11].vector), atol=1e-5)
        again.create_collection("vislink_c_v", DIM)  # exists with this dimension: a no-op
        with pytest.raises(IndexUnavailable, match="dimension"):
            again.create_collection("vislink_c_v", DIM * 2)
        assert again.count("vislink_c_v") == len(points) - 2
    finally:
        again.close()


def test_killed_process_loses_nothing_acknowledged(tmp_path):
    root = tmp_path / "edge"
    child = _run(f"""
        import os, signal
        import numpy as np
        from vislink.index import Point
        from vislink.index.edge import EdgeIndex
        index = EdgeIndex({str(root)!r})
        index.create_collection("vislink_c_v", {DIM}, payload_indexes={{"artist": "keyword"}})
        rng = np.random.default_rng(0)
        index.upsert("vislink_c_v", [Point(i, rng.standard_normal({DIM}), {{"artist": "A"}}) for i in range(40)])
        index.delete("vislink_c_v", [3])
        print("acknowledged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush at exit
        """)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert "acknowledged" in out
    index = _edge(root)  # the kernel dropped the dead process's folder lock
    try:
        assert index.count("vislink_c_v") == 39
        assert index.count("vislink_c_v", {"artist": "A"}) == 39
        assert not index.retrieve("vislink_c_v", [3])
    finally:
        index.close()


def test_unfinished_collection_folder_is_not_a_collection(ram_path):
    index = _edge(ram_path / "edge")
    try:
        (ram_path / "edge" / "vislink_half").mkdir()  # a creation that died before writing its marker
        (ram_path / "edge" / "vislink_half" / "junk").write_text("x")
        assert not index.collection_exists("vislink_half") and index.list_collections() == []
        with pytest.raises(NotFound):
            index.count("vislink_half")
        index.create_collection("vislink_half", DIM)
        index.upsert("vislink_half", _points(5))
        assert index.count("vislink_half") == 5
        for bad in ("../escape", "a/b", ".hidden", ""):
            with pytest.raises(IndexUnavailable, match="invalid vector collection name"):
                index.create_collection(bad, DIM)
        with pytest.raises(IndexUnavailable, match="boolean"):
            index.count("vislink_half", {"flag": True})
        with pytest.raises(IndexUnavailable, match="shape"):
            index.upsert("vislink_half", [Point(1, np.ones(DIM + 1))])
        with pytest.raises(IndexUnavailable, match="sparse"):
            index.query_sparse("vislink_half", SparseVector((1,), (1.0,)), limit=3)
    finally:
        index.close()


def test_optimize_keeps_every_point_and_result(ram_path):
    index, referee = _edge(ram_path / "edge"), NumpyIndex()
    try:
        for ix in (index, referee):
            ix.create_collection("vislink_c_v", DIM, payload_indexes={"artist": "keyword"})
            for start in range(0, 600, 100):  # several writes: several segments to merge
                ix.upsert("vislink_c_v", _points(100, seed=start, start=start))
            ix.delete("vislink_c_v", range(0, 600, 9))
        index.optimize("vislink_c_v")
        assert index.count("vislink_c_v") == referee.count("vislink_c_v")
        q = np.random.default_rng(5).standard_normal(DIM)
        flt = {"artist": AnyOf(("A", "C"))}
        assert [h.id for h in index.query("vislink_c_v", q, limit=20, flt=flt, exact=True)] == \
            [h.id for h in referee.query("vislink_c_v", q, limit=20, flt=flt)]
    finally:
        index.close()


def test_no_hnsw_graph_by_default_every_search_is_exact(ram_path):
    """optimize() must not build a graph (approximate results, minutes of CPU) unless asked: 1,400 x
    2048-d floats are above Edge's 10 MB indexing threshold, so a default shard would index them."""
    index = _edge(ram_path / "edge")
    try:
        index.create_collection("vislink_big", 2048)
        rng = np.random.default_rng(0)
        index.upsert("vislink_big", [Point(i, rng.standard_normal(2048)) for i in range(1400)])
        index.optimize("vislink_big")
        info = index._shard("vislink_big").shard.info()
        assert (info.points_count, info.indexed_vectors_count) == (1400, 0)
        assert json.loads((ram_path / "edge" / "vislink_big" / "vislink.json").read_text())["hnsw"] is False
    finally:
        index.close()


# -- processes ----------------------------------------------------------------------------------
def test_one_process_at_a_time_per_embedded_folder(ram_path):
    """Both embedded backends lock their folder: a second process gets IndexUnavailable saying so,
    and gets in once the first one has closed."""
    edge_root, local_root = ram_path / "edge", ram_path / "local"
    holder = _run(f"""
        import sys
        from vislink.index.edge import EdgeIndex
        from vislink.index.qdrant import QdrantClientIndex
        edge, local = EdgeIndex({str(edge_root)!r}), QdrantClientIndex({str(local_root)!r})
        edge.create_collection("vislink_c_v", 4)
        local.create_collection("vislink_c_v", 4)
        print("holding", flush=True)
        sys.stdin.readline()
        edge.close(); local.close()
        """, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        with pytest.raises(IndexUnavailable, match="open in another process"):
            _edge(edge_root)
        with pytest.raises(IndexUnavailable, match="open in another process"):
            _local(local_root)
    finally:
        holder.stdin.write("done\n")
        holder.stdin.flush()
        holder.wait(timeout=60)
    for make, root in ((_edge, edge_root), (_local, local_root)):
        index = make(root)
        assert index.list_collections() == ["vislink_c_v"]
        index.close()


def _forked_child(index, root, queue):
    results = []
    for attempt in (lambda: index.count("vislink_c_v"), lambda: index.upsert("vislink_c_v", _points(1)),
                    lambda: type(index)(root)):
        try:
            attempt()
            results.append("allowed")
        except IndexUnavailable as exc:
            results.append(str(exc))
    index.close()  # must leave the parent's index alone
    queue.put(results)


@pytest.mark.parametrize("make", [_edge, _local], ids=["qdrant-edge", "qdrant-local"])
def test_forked_worker_cannot_use_or_reopen_the_parents_index(ram_path, make):
    root = ram_path / "index"
    index = make(root)
    try:
        index.create_collection("vislink_c_v", DIM)
        index.upsert("vislink_c_v", _points(10))
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_forked_child, args=(index, str(root), queue))
        child.start()
        results = queue.get(timeout=60)
        child.join(timeout=60)
        assert "forked process" in results[0] and "forked process" in results[1]
        assert "open in another process" in results[2]
        assert index.count("vislink_c_v") == 10  # the parent still has its index
        index.upsert("vislink_c_v", _points(5, start=100))
        assert index.count("vislink_c_v") == 15
    finally:
        index.close()


# -- threads ------------------------------------------------------------------------------------
def test_threads_share_one_index(ram_path):
    """Streamlit serves sessions in threads: queries, upserts, collection changes and a close()
    running at once must neither fail nor lose a write."""
    index = _edge(ram_path / "edge")
    index.create_collection("vislink_c_v", DIM, payload_indexes={"artist": "keyword"})
    index.upsert("vislink_c_v", _points(100))
    errors: list[BaseException] = []
    queries = np.random.default_rng(3).standard_normal((4, DIM)).astype(np.float32)

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)
        return run

    def search():
        for _ in range(30):
            hits = index.query_batch("vislink_c_v", queries, limit=5, flt={"artist": "A"})
            assert all(len(h) == 5 for h in hits)

    def write():
        for k in range(10):
            index.upsert("vislink_c_v", _points(5, seed=k, start=1000 + 5 * k))

    def churn():
        for k in range(3):
            index.create_collection(f"vislink_tmp{k}", 4)
            index.delete_collection(f"vislink_tmp{k}")
        index.close()  # waits for running calls; later calls reopen the folder

    threads = [threading.Thread(target=guarded(f)) for f in (search, search, write, churn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        assert index.count("vislink_c_v") == 150
        assert index.list_collections() == ["vislink_c_v"]
    finally:
        index.close()


# -- registry -----------------------------------------------------------------------------------
@pytest.fixture
def settings_for(tmp_path, monkeypatch):
    from vislink.index import close_all
    from vislink.index import registry

    monkeypatch.setattr(registry, "_warned_fallback", False)

    def make(index_backend="auto", qdrant_url=None):
        from vislink.config import Settings

        # By alias: the settings take their environment variables' names.
        return Settings(VISLINK_HOME=tmp_path / "home", VISLINK_INDEX_BACKEND=index_backend, QDRANT_URL=qdrant_url)

    yield make
    close_all()


def test_auto_is_qdrant_edge_in_the_data_folder(settings_for, tmp_path):
    from vislink.index import open_index
    from vislink.index.edge import EdgeIndex

    settings = settings_for(index_backend="auto")
    assert settings.qdrant_path == (tmp_path / "home" / "qdrant").resolve()
    index = open_index(settings)
    assert isinstance(index, EdgeIndex) and index.root == settings.qdrant_path / "edge"
    opened: list = []
    threads = [threading.Thread(target=lambda: opened.append(open_index(settings_for(index_backend="auto"))))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o is index for o in opened)  # one index per folder, whoever asks
    assert open_index(settings, backend="qdrant-edge") is index


def test_auto_falls_back_to_qdrant_local_without_the_edge_wheel(settings_for, monkeypatch, caplog):
    from vislink.index import open_index
    from vislink.index.qdrant import QdrantClientIndex

    monkeypatch.setitem(sys.modules, "qdrant_edge", None)  # what a missing wheel looks like to import
    with caplog.at_level("WARNING", logger="vislink.index.registry"):
        index = open_index(settings_for(index_backend="auto"))
    assert isinstance(index, QdrantClientIndex) and index.name == "qdrant-local"
    assert "falls back to qdrant-client's local mode" in caplog.text
    with pytest.raises(ConfigError, match="qdrant-edge-py"):
        open_index(settings_for(index_backend="qdrant-edge"))


def test_unknown_backend_and_server_without_url(settings_for):
    from vislink.index import build_index

    with pytest.raises(ConfigError, match="valid: auto, memory, qdrant-edge, qdrant-local, qdrant-server"):
        build_index(settings_for(), backend="faiss")
    with pytest.raises(ConfigError, match="QDRANT_URL"):
        build_index(settings_for(index_backend="qdrant-server"))


# -- a Qdrant server that is not there ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)
def test_unreachable_server_raises_index_unavailable(settings_for):
    from vislink.index import open_index

    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(IndexUnavailable, match="cannot reach the Qdrant server") as info:
        open_index(settings_for(index_backend="auto", qdrant_url=url))
    assert url in str(info.value) and "QDRANT_URL" in str(info.value)


@pytest.mark.timeout(30)
def test_server_that_never_answers_raises_index_unavailable():
    """A port that accepts connections but never replies (a hung server, a wrong service)."""
    from vislink.index.qdrant import QdrantClientIndex

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(IndexUnavailable, match="cannot open Qdrant at"):
            QdrantClientIndex(url, timeout=1)


def test_server_collections_are_created_distributed():
    from vislink.index.qdrant import server_creation_kwargs

    assert server_creation_kwargs(2, 2) == {"shard_number": 2, "replication_factor": 2}
    assert server_creation_kwargs(None, None) == {}

"""Congruence of the index backends (as qdrant-client's tests/congruence_tests do): the same random data
and the same operations on every backend, compared with the numpy brute-force referee (ids exactly,
scores within 1e-4). Vectors are continuous random values, so no two scores tie."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vislink.errors import IndexUnavailable, NotFound
from vislink.index import AnyOf, Point, Range, SparseVector, VectorIndex
from vislink.index.numpy_index import NumpyIndex

DIM = 24
N = 300
COLL = "vislink_test_pool5"
TOL = 1e-4
INDEXES = {"artist": "keyword", "year": "integer", "school": "keyword", "price": "float"}
ARTISTS = ["Raphael", "Titian", "Dürer", "Bruegel", "Van Eyck"]
SCHOOLS = ["Italian", "Flemish", "German", None]
BACKENDS = ["qdrant-local-path", "qdrant-local-memory", "qdrant-edge"]


def _payload(rng, i):
    payload = {"image_id": i, "artist": ARTISTS[rng.integers(len(ARTISTS))], "year": int(rng.integers(1400, 1700)),
               "school": SCHOOLS[rng.integers(len(SCHOOLS))], "price": float(np.round(rng.random() * 100, 2))}
    if i % 17 == 0:
        del payload["school"]  # missing field, as well as None
    if i % 25 in (0, 1):  # values on the bounds of the Range filters below: inclusive bounds
        payload["year"] = (1500, 1600)[i % 25]
        payload["price"] = (20.5, 70.0)[i % 25]
    return payload


def _sparse(rng):
    idx = np.sort(rng.choice(200, size=6, replace=False))
    return SparseVector(tuple(int(i) for i in idx), tuple(float(v) for v in rng.random(6) + 0.01))


def _build(index: VectorIndex) -> None:
    """The same operations, in the same order, on every backend."""
    rng = np.random.default_rng(42)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    payloads = [_payload(rng, i) for i in range(N)]
    sparse = [_sparse(rng) for _ in range(N)]
    index.create_collection(COLL, DIM, payload_indexes=INDEXES, sparse=True)
    index.create_collection(COLL, DIM, payload_indexes=INDEXES, sparse=True)  # again: a no-op
    index.create_collection("vislink_other", 8)
    for start in (0, 150):
        index.upsert(COLL, [Point(i, vectors[i], payloads[i]) for i in range(start, start + 150)],
                     sparse=sparse[start:start + 150])
    # Overwrite 30 points (new vector and payload), then upsert the same batch again: idempotent.
    over = [Point(i, rng.standard_normal(DIM).astype(np.float32), _payload(rng, i)) for i in range(0, 300, 10)]
    over_sparse = [_sparse(rng) for _ in over]
    for _ in range(2):
        index.upsert(COLL, over, sparse=over_sparse)
    index.delete(COLL, [3, 4, 5, 77, 150, 299, 5000])  # 5000 does not exist


@pytest.fixture(scope="module")
def referee() -> NumpyIndex:
    index = NumpyIndex()
    _build(index)
    return index


@pytest.fixture(scope="module")
def ram_dir(tmp_path_factory):
    """A folder in RAM where there is one: these tests compare results, not durability, and the fsync
    of every acknowledged write costs seconds here on disk (tests/test_index_edge.py uses the disk)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and shm.stat().st_mode & 0o002):
        yield tmp_path_factory.mktemp("index")
        return
    folder = Path(tempfile.mkdtemp(prefix="vislink-test-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, ram_dir) -> VectorIndex:
    from vislink.index.qdrant import QdrantClientIndex

    folder = ram_dir / request.param
    if request.param == "qdrant-local-path":
        index: VectorIndex = QdrantClientIndex(str(folder))
    elif request.param == "qdrant-local-memory":
        index = QdrantClientIndex(":memory:")
    else:
        from vislink.index.edge import EdgeIndex

        index = EdgeIndex(folder)
    _build(index)
    yield index
    index.close()


FILTERS = [
    None,
    {"artist": "Titian"},
    {"year": Range(gte=1500, lte=1600)},
    {"year": Range(gte=1550)},
    {"school": AnyOf(("Italian", "Flemish"))},
    {"artist": AnyOf(("Raphael", "Dürer")), "year": Range(lte=1520)},
    {"price": Range(gte=20.5, lte=70)},
    {"school": None},
    {"image_id": AnyOf((1, 2, 3, 4, 10, 11, 250))},
    {"artist": "Nobody"},
    {"school": AnyOf(())},
]


def _queries(n=8, seed=7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32) * 3  # not normalised


def assert_same_hits(got, want, context=""):
    assert [h.id for h in got] == [h.id for h in want], context
    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=TOL, err_msg=context)
    assert [h.payload for h in got] == [h.payload for h in want], context


def test_collections(backend, referee):
    assert backend.list_collections() == referee.list_collections() == ["vislink_other", COLL]
    assert backend.collection_exists(COLL) and not backend.collection_exists("vislink_absent")
    with pytest.raises(IndexUnavailable, match="dimension"):
        backend.create_collection(COLL, DIM + 1)
    with pytest.raises(NotFound):
        backend.count("vislink_absent")
    with pytest.raises(NotFound):
        backend.query("vislink_absent", np.ones(DIM), limit=3)


@pytest.mark.parametrize("flt", FILTERS, ids=str)
def test_count(backend, referee, flt):
    assert backend.count(COLL, flt) == referee.count(COLL, flt)


def test_count_after_overwrite_and_delete(backend, referee):
    assert backend.count(COLL) == referee.count(COLL) == N - 6


@pytest.mark.parametrize("flt", [None, {"year": Range(gte=1500)}, {"school": AnyOf(("German",))}], ids=str)
def test_scroll_pages(backend, referee, flt):
    offsets = {"got": None, "want": None}
    pages = 0
    while True:
        got, offsets["got"] = backend.scroll(COLL, flt=flt, limit=37, offset=offsets["got"], with_vectors=True)
        want, offsets["want"] = referee.scroll(COLL, flt=flt, limit=37, offset=offsets["want"], with_vectors=True)
        assert [(i, p) for i, p, _ in got] == [(i, p) for i, p, _ in want]
        np.testing.assert_allclose(np.stack([v for *_, v in got]), np.stack([v for *_, v in want]), atol=TOL)
        assert offsets["got"] == offsets["want"]
        pages += 1
        if offsets["got"] is None:
            break
    assert pages >= 2


def test_retrieve(backend, referee):
    ids = [0, 3, 10, 42, 150, 151, 298, 9999]
    got = sorted(backend.retrieve(COLL, ids, with_vectors=True), key=lambda r: r[0])
    want = sorted(referee.retrieve(COLL, ids, with_vectors=True), key=lambda r: r[0])
    assert [(i, p) for i, p, _ in got] == [(i, p) for i, p, _ in want]
    np.testing.assert_allclose(np.stack([v for *_, v in got]), np.stack([v for *_, v in want]), atol=TOL)
    assert all(v is None for *_, v in backend.retrieve(COLL, [0, 1]))


@pytest.mark.parametrize("flt", FILTERS, ids=str)
def test_query_batch(backend, referee, flt):
    queries = _queries()
    got = backend.query_batch(COLL, queries, limit=10, flt=flt, exact=True)
    want = referee.query_batch(COLL, queries, limit=10, flt=flt, exact=True)
    assert len(got) == len(want) == len(queries)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same_hits(g, w, f"query {k}")


def test_query_not_exact(backend, referee):
    """Without exact=True a backend may use its HNSW graph; at this size every one still scans."""
    queries = _queries(4, seed=13)
    for flt in (None, {"year": Range(gte=1500)}):
        for g, w in zip(backend.query_batch(COLL, queries, limit=10, flt=flt), referee.query_batch(COLL, queries, limit=10, flt=flt)):
            assert_same_hits(g, w)


@pytest.mark.parametrize("offset", [1, 7, 250])
def test_query_offset(backend, referee, offset):
    queries = _queries(3, seed=11)
    got = backend.query_batch(COLL, queries, limit=12, offset=offset, exact=True)
    want = referee.query_batch(COLL, queries, limit=12, offset=offset, exact=True)
    for g, w in zip(got, want):
        assert_same_hits(g, w)
    one = backend.query(COLL, queries[0], limit=12, offset=offset, exact=True)
    assert_same_hits(one, want[0])


RECOMMENDS = [
    dict(positive=[10]),
    dict(positive=[10, 20, 31], negative=[40]),
    dict(positive=["v0"], negative=["v1"]),
    dict(positive=[12, "v0"], negative=[13, "v1"]),
    dict(positive=[8, 9], flt={"year": Range(gte=1450)}),
    dict(positive=[21], negative=[22], flt={"school": AnyOf(("Italian", "German"))}),
]


@pytest.mark.parametrize("case", range(len(RECOMMENDS)))
def test_recommend(backend, referee, case):
    raw = _queries(2, seed=3)  # vectors given by value, not normalised: used as given
    spec = dict(RECOMMENDS[case])

    def resolve(examples):
        return [raw[int(x[1:])] if isinstance(x, str) else x for x in examples]

    kwargs = dict(positive=resolve(spec["positive"]), negative=resolve(spec.get("negative", [])), limit=15,
                  flt=spec.get("flt"))
    got = backend.recommend(COLL, exact=True, **kwargs)
    want = referee.recommend(COLL, **kwargs)
    assert_same_hits(got, want)
    example_ids = {x for x in spec["positive"] + spec.get("negative", []) if isinstance(x, int)}
    assert not example_ids & {h.id for h in got}  # examples by id are never returned


def test_recommend_errors(backend):
    with pytest.raises(NotFound, match="4"):
        backend.recommend(COLL, positive=[10, 4], limit=3)  # 4 was deleted
    with pytest.raises(IndexUnavailable, match="positive"):
        backend.recommend(COLL, positive=[], negative=[10], limit=3)


@pytest.mark.parametrize("flt", [None, {"artist": AnyOf(("Titian", "Bruegel"))}], ids=str)
def test_query_multi(backend, referee, flt):
    queries = _queries(3, seed=5)
    assert_same_hits(backend.query_multi(COLL, queries, limit=20, flt=flt, exact=True),
                     referee.query_multi(COLL, queries, limit=20, flt=flt, exact=True))


@pytest.mark.parametrize("flt", [None, {"year": Range(lte=1600)}], ids=str)
def test_query_sparse(backend, referee, flt):
    rng = np.random.default_rng(99)
    for _ in range(5):
        query = _sparse(rng)
        assert_same_hits(backend.query_sparse(COLL, query, limit=10, flt=flt),
                         referee.query_sparse(COLL, query, limit=10, flt=flt))


def test_delete_collection(backend, referee):
    backend.create_collection("vislink_doomed", 4)
    backend.upsert("vislink_doomed", [Point(1, [1, 0, 0, 0])])
    backend.delete_collection("vislink_doomed")
    backend.delete_collection("vislink_doomed")  # absent: a no-op
    assert "vislink_doomed" not in backend.list_collections()
    with pytest.raises(NotFound):
        backend.count("vislink_doomed")
    assert backend.count(COLL) == referee.count(COLL)  # the others are untouched

"""The Fetcher against a real HTTP server on 127.0.0.1 serving real JPEG files."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from httpserver import make_jpeg
from vislink.errors import FetchError
from vislink.ingest.fetch import DownloadError, Fetcher


@pytest.fixture
def jpeg() -> bytes:
    return make_jpeg(320, 240, seed=1)


def fast_fetcher(tmp_path, **kw) -> Fetcher:
    # The test server is on 127.0.0.1, which downloads refuse unless allowed by name (tests/test_fetch_ssrf.py).
    opts = {"timeout": 2.0, "retries": 3, "backoff": 0.01, "per_host_rate": None, "allow_hosts": "127.0.0.1"}
    opts.update(kw)
    return Fetcher(tmp_path / "cache", **opts)


def test_fetch_real_file_then_cache_hit_without_request(http_server, tmp_path, jpeg):
    (http_server.root / "a").mkdir()
    (http_server.root / "a" / "b.jpg").write_bytes(jpeg)
    url = http_server.url("a/b.jpg")
    with fast_fetcher(tmp_path) as fetcher:
        path = fetcher.fetch(url)
        assert path.read_bytes() == jpeg
        assert path.name == hashlib.sha256(jpeg).hexdigest()  # content-addressed
        with Image.open(path) as img:
            assert img.size == (320, 240)
        assert fetcher.fetch(url) == path
    assert http_server.hits("/a/b.jpg") == 1
    # A new Fetcher on the same cache folder (another process, a later run) reads the URL index: no request.
    with fast_fetcher(tmp_path) as again:
        assert again.fetch(url) == path
        assert again.index_entry(url)["sha256"] == path.name
    assert http_server.hits("/a/b.jpg") == 1


def test_same_content_under_two_urls_is_stored_once(http_server, tmp_path, jpeg):
    http_server.add_bytes("/one.jpg", jpeg)
    http_server.add_bytes("/two.jpg", jpeg)
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch(http_server.url("one.jpg")) == fetcher.fetch(http_server.url("two.jpg"))
    assert len(list((tmp_path / "cache" / "objects").rglob("*"))) == 2  # one shard folder, one file


def test_retry_after_5xx_then_success(http_server, tmp_path, jpeg):
    http_server.add_flaky("/flaky.jpg", failures=2, data=jpeg, status=503)
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch(http_server.url("flaky.jpg")).read_bytes() == jpeg
        assert fetcher.stats.retries == 2
    assert http_server.hits("/flaky.jpg") == 3


def test_flaky_path_convention_serves_root_file(http_server, tmp_path, jpeg):
    (http_server.root / "x.jpg").write_bytes(jpeg)
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch(http_server.url("flaky/1/x.jpg")).read_bytes() == jpeg
    assert http_server.hits("/flaky/1/x.jpg") == 2


def test_429_honours_retry_after(http_server, tmp_path, jpeg):
    http_server.add_flaky("/busy.jpg", failures=1, data=jpeg, status=429, headers={"Retry-After": "1"})
    with fast_fetcher(tmp_path) as fetcher:
        fetcher.fetch(http_server.url("busy.jpg"))
    first, second = http_server.requests_for("/busy.jpg")
    assert second.time - first.time >= 0.95  # waited as asked, not the 0.01 s backoff


def test_retry_after_too_long_fails_at_once(http_server, tmp_path):
    http_server.add_status("/later.jpg", 503, headers={"Retry-After": "3600"})
    with fast_fetcher(tmp_path, max_retry_after=5) as fetcher, pytest.raises(DownloadError) as info:
        fetcher.fetch(http_server.url("later.jpg"))
    assert info.value.status == 503 and "3600" in str(info.value)
    assert http_server.hits("/later.jpg") == 1


def test_permanent_failures_raise_fetch_error_naming_url(http_server, tmp_path):
    url = http_server.url("missing.jpg")
    with fast_fetcher(tmp_path) as fetcher:
        with pytest.raises(FetchError) as info:
            fetcher.fetch(url)
        assert url in str(info.value) and "http-404" in str(info.value)
        assert http_server.hits("/missing.jpg") == 1  # a 404 is not retried
        with pytest.raises(DownloadError) as info:
            fetcher.fetch(http_server.url("status/500"))
        assert info.value.reason == "http-500" and "4 attempts" in str(info.value)
        assert http_server.hits("/status/500") == 4
        with pytest.raises(DownloadError) as info:
            fetcher.fetch("ftp://example.org/x.jpg")
        assert info.value.reason == "bad-url"


def test_connection_refused_is_a_fetch_error(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with fast_fetcher(tmp_path, retries=1) as fetcher, pytest.raises(DownloadError) as info:
        fetcher.fetch(f"http://127.0.0.1:{port}/x.jpg")
    assert info.value.reason == "connect-error"


def test_slow_server_times_out(http_server, tmp_path):
    http_server.add_slow("/slow.jpg", delay=1.5)
    start = time.monotonic()
    with fast_fetcher(tmp_path, timeout=0.2, retries=1) as fetcher, pytest.raises(DownloadError) as info:
        fetcher.fetch(http_server.url("slow.jpg"))
    assert info.value.reason == "timeout"
    assert http_server.hits("/slow.jpg") == 2
    assert time.monotonic() - start < 1.4  # gave up on its own timeout, not the server's answer
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))


def test_slow_then_fast_succeeds_on_retry(http_server, tmp_path, jpeg):
    http_server.add_slow("/sometimes.jpg", delay=1.0, data=jpeg, times=1)
    with fast_fetcher(tmp_path, timeout=0.2, retries=2) as fetcher:
        assert fetcher.fetch(http_server.url("sometimes.jpg")).read_bytes() == jpeg


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    data = make_jpeg(800, 600, seed=2)
    http_server.add_truncated("/big.jpg", data, cut_at=len(data) // 3)
    with fast_fetcher(tmp_path) as fetcher:
        path = fetcher.fetch(http_server.url("big.jpg"))
    assert path.read_bytes() == data
    first, second = http_server.requests_for("/big.jpg")
    assert "Range" not in first.headers
    assert second.headers["Range"] == f"bytes={len(data) // 3}-"
    assert second.headers["If-Range"].startswith('"')
    assert http_server.bytes_sent["/big.jpg"] == len(data)  # nothing sent twice
    assert not list((tmp_path / "cache" / "partial").glob("*.part"))


def test_partial_file_left_by_a_killed_process_is_resumed(http_server, tmp_path):
    data = make_jpeg(640, 480, seed=3)
    cut = len(data) // 2
    http_server.add_truncated("/p.jpg", data, cut_at=cut)
    url = http_server.url("p.jpg")
    with fast_fetcher(tmp_path, retries=0) as first, pytest.raises(DownloadError) as info:
        first.fetch(url)  # the connection drops; no retries: as if the process died here
    assert info.value.reason == "connection-broken"
    parts = list((tmp_path / "cache" / "partial").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == cut
    with fast_fetcher(tmp_path, retries=0) as second:
        assert second.fetch(url).read_bytes() == data
    assert http_server.requests_for("/p.jpg")[-1].headers["Range"] == f"bytes={cut}-"


def test_server_without_range_support_restarts_cleanly(http_server, tmp_path):
    data = make_jpeg(640, 480, seed=4)
    http_server.add_truncated("/norange.jpg", data, cut_at=1000, ranges=False)
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch(http_server.url("norange.jpg")).read_bytes() == data


def test_changed_resource_is_not_glued_to_an_old_partial(http_server, tmp_path):
    old, new = make_jpeg(640, 480, seed=5), make_jpeg(640, 480, seed=6)
    http_server.add_truncated("/v.jpg", old, cut_at=2000)
    url = http_server.url("v.jpg")
    with fast_fetcher(tmp_path, retries=0) as fetcher, pytest.raises(DownloadError):
        fetcher.fetch(url)
    http_server.add_bytes("/v.jpg", new)  # new ETag: If-Range fails, the server sends the whole new file
    with fast_fetcher(tmp_path, retries=0) as fetcher:
        assert fetcher.fetch(url).read_bytes() == new


def test_max_size_guard(http_server, tmp_path, jpeg):
    http_server.add_bytes("/huge.jpg", jpeg)
    with fast_fetcher(tmp_path, max_bytes=1000) as fetcher, pytest.raises(DownloadError) as info:
        fetcher.fetch(http_server.url("huge.jpg"))
    assert info.value.reason == "too-large"
    assert not list((tmp_path / "cache" / "objects").rglob("*.*"))
    assert not list((tmp_path / "cache" / "partial").glob("*.part"))


def test_many_threads_fetch_each_url_once(http_server, tmp_path):
    blobs = {f"/t{i}.jpg": make_jpeg(64, 48, seed=10 + i) for i in range(4)}
    for path, data in blobs.items():
        http_server.add_slow(path, delay=0.05, data=data)
    results: list[tuple[str, bytes]] = []
    errors: list[Exception] = []
    fetcher = fast_fetcher(tmp_path)

    def work(path: str) -> None:
        try:
            results.append((path, fetcher.fetch(http_server.url(path)).read_bytes()))
        except Exception as exc:  # collected: a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in list(blobs) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fetcher.close()
    assert not errors
    assert len(results) == 16 and all(blobs[p] == data for p, data in results)
    assert all(http_server.hits(p) == 1 for p in blobs)


def test_per_host_rate_limit_spaces_requests(http_server, tmp_path):
    for i in range(4):
        http_server.add_bytes(f"/r{i}.bin", bytes([i]) * 10)
    with fast_fetcher(tmp_path, per_host_rate=10) as fetcher:  # at most one request per 0.1 s
        start = time.monotonic()
        for i in range(4):
            fetcher.fetch(http_server.url(f"r{i}.bin"))
        elapsed = time.monotonic() - start
    # The 4th request may not leave before 3 intervals have passed (a lower bound: load only adds to it).
    assert elapsed >= 0.3
    assert len(http_server.requests) == 4


def test_fetch_json(http_server, tmp_path):
    http_server.add_json("/doc.json", {"a": [1, 2]})
    http_server.add_bytes("/bad.json", b"not json", "application/json")
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch_json(http_server.url("doc.json")) == {"a": [1, 2]}
        with pytest.raises(DownloadError) as info:
            fetcher.fetch_json(http_server.url("bad.json"))
        assert info.value.reason == "not-json"


def test_fetcher_travels_to_another_process(http_server, tmp_path, jpeg):
    """Worker processes get the Fetcher by pickle: same cache, same settings, fresh locks and clients."""
    import pickle

    http_server.add_bytes("/w.jpg", jpeg)
    with fast_fetcher(tmp_path, retries=2) as fetcher:
        path = fetcher.fetch(http_server.url("w.jpg"))
        clone = pickle.loads(pickle.dumps(fetcher))
    assert (clone.cache_dir, clone.retries, clone.min_interval) == (fetcher.cache_dir, 2, 0.0)
    assert clone.fetch(http_server.url("w.jpg")) == path
    assert http_server.hits("/w.jpg") == 1
    clone.close()


def test_unwritable_cache_is_a_config_error(tmp_path):
    from vislink.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(ConfigError, match="cannot create the download cache"):
        Fetcher(blocker / "cache")


def test_redirect_is_followed_and_recorded(http_server, tmp_path, jpeg):
    http_server.add_bytes("/new.jpg", jpeg)
    http_server.add_status("/old.jpg", 301, headers={"Location": http_server.url("new.jpg")})
    with fast_fetcher(tmp_path) as fetcher:
        assert fetcher.fetch(http_server.url("old.jpg")).read_bytes() == jpeg
        entry = fetcher.index_entry(http_server.url("old.jpg"))
    assert entry["final_url"] == http_server.url("new.jpg") and entry["content_type"] == "image/jpeg"


def test_header_parsing():
    import email.utils

    from vislink.ingest.fetch import _content_range, _retry_after

    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= _retry_after(in_a_minute) <= 61
    assert _retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert _content_range("bytes 100-199/200") == (100, 200)
    assert _content_range("bytes 100-199/*") == (100, None)
    assert _content_range("garbage") == (None, None)


def _fetch_in_child(cache_dir, url, results):
    with Fetcher(cache_dir, timeout=5, retries=0, per_host_rate=None, allow_hosts="127.0.0.1") as fetcher:
        results.put(str(fetcher.fetch(url)))


def test_two_processes_share_the_cache_and_fetch_once(http_server, tmp_path, jpeg):
    """Worker processes on one cache folder: the lock file makes the second wait and take the cached copy."""
    import multiprocessing

    http_server.add_slow("/shared.jpg", delay=0.3, data=jpeg)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(tmp_path / "cache", http_server.url("shared.jpg"), results))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=20)
    assert [p.exitcode for p in procs] == [0, 0]
    paths = {results.get(timeout=5) for _ in procs}
    assert len(paths) == 1 and Path(paths.pop()).read_bytes() == jpeg
    assert http_server.hits("/shared.jpg") == 1

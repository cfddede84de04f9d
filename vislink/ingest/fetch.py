"""Downloads over HTTP with a content-addressed local cache.

``Fetcher.fetch(url) -> Path``: the file in the cache, downloaded at most once. Polite and robust:

- timeouts on connect and on each read; retries with exponential backoff (and jitter) on connection errors,
  timeouts, 5xx, 408 and 429, honouring ``Retry-After``; other 4xx fail at once;
- a minimum interval between two requests to the same host (``per_host_rate`` requests per second, per process);
- the body goes to ``partial/<key>.part`` and is renamed into ``objects/`` only when complete, so a reader
  never sees half a file; an interrupted download (a broken connection, or a killed process) resumes from
  the ``.part`` with an HTTP ``Range`` request guarded by ``If-Range`` (ETag or Last-Modified) when the server
  supports it, and starts over when it does not;
- a size guard (``max_bytes``) on the announced length and on the bytes actually received;
- no request to loopback, private, link-local (cloud metadata), multicast or reserved addresses unless the
  setting ``VISLINK_FETCH_ALLOW_HOSTS`` (or ``allow_hosts``) names them: the resolved address of every hop is
  checked where the connection is made (``netguard``), redirects are followed here one at a time;
- ``expect="image"`` / ``"json"`` (``fetch_json``): a reply of another kind is refused before it is stored, so
  ``objects/`` never keeps an HTML page or a text file that was asked for as an image; JSON is decoded as UTF-8,
  UTF-16/32, the declared charset, then Windows-1252 (``decode_json``);
- ``fetch_json_many(urls, per_host=4)``: several JSON documents at once, at most ``per_host`` downloads at a time
  to one host (within ``per_host_rate``), a host that does not answer asked once;
- a URL index (``urls/<key>.json``: url -> sha256) so that fetching the same URL again is a cache hit with no
  request; identical content under two URLs is stored once;
- safe from several threads (one HTTP client per thread) and several processes (lock files, one per
  256th of the URL keys, around each download).

Cache layout under ``cache_dir``: ``objects/ab/<sha256>``, ``urls/cd/<sha256(url)>.json``,
``partial/<sha256(url)>.part|.json``, ``partial/locks/<ab>.lock``.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from vislink.errors import ConfigError, FetchError
from vislink.ingest.netguard import AddressPolicy, AddressRefused, guarded_transport

try:  # POSIX: lock files keep two processes off the same .part file
    import fcntl
except ImportError:  # pragma: no cover - Windows: thread locks only
    fcntl = None

log = logging.getLogger(__name__)

USER_AGENT = "vislink/0.1 (+https://github.com/vislink; visual link retrieval between artworks)"
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
_EXPECT = (None, "image", "json")
_STRIPES = 256  # locks by the first byte of the URL key: bounded, and rarely shared by two live downloads


class DownloadError(FetchError):
    """A download failed. ``url``; ``reason``: a short key (``http-404``, ``timeout``, ``connect-error``,
    ``too-large``, ``bad-url``, ``connection-broken``, ``blocked-address``, ``not-an-image``, ``not-json``,
    ``bad-redirect``, ``too-many-redirects``...); ``status``: the last HTTP status, if any."""

    def __init__(self, url: str, reason: str, detail: str = "", status: int | None = None):
        self.url = url
        self.reason = reason
        self.detail = detail
        self.status = status
        super().__init__(f"cannot download {url}: {reason}" + (f" ({detail})" if detail else ""))


class _Retry(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.detail, self.status, self.retry_after = reason, detail, status, retry_after


@dataclass
class FetchStats:
    requests: int = 0
    cache_hits: int = 0
    downloads: int = 0
    retries: int = 0
    bytes_received: int = 0


class Fetcher:
    """Downloads into a content-addressed cache. One per process is enough; share it between threads.

    ``timeout``: seconds allowed for each read (and ``connect_timeout`` to connect); ``retries``: further
    attempts after the first; ``backoff``: first delay, doubled each time up to ``max_backoff``;
    ``per_host_rate``: at most this many requests per second to one host (None or 0: no limit);
    ``max_bytes``: larger files are refused; ``max_retry_after``: a server asking to wait longer fails the
    download instead. ``allow_hosts``: host names, addresses and CIDR networks that may be private (a comma
    list; None: the ``VISLINK_FETCH_ALLOW_HOSTS`` setting); ``max_redirects``: hops followed, each re-checked;
    ``resolver``: the name lookup (``socket.getaddrinfo``)."""

    def __init__(self, cache_dir: Path | str | None = None, *, timeout: float = 30.0,
                 connect_timeout: float | None = None, retries: int = 4, backoff: float = 0.5,
                 max_backoff: float = 30.0, per_host_rate: float | None = 2.0, max_bytes: int = 256 * 1024 * 1024,
                 max_retry_after: float = 120.0, user_agent: str = USER_AGENT,
                 headers: dict[str, str] | None = None, chunk_size: int = 64 * 1024,
                 allow_hosts: str | list[str] | None = None, max_redirects: int = 10, resolver=None):
        if cache_dir is None or allow_hosts is None:
            from vislink.config import get_settings

            settings = get_settings()
            cache_dir = settings.cache_dir if cache_dir is None else cache_dir
            allow_hosts = settings.fetch_allow_hosts if allow_hosts is None else allow_hosts
        self.policy = AddressPolicy(allow_hosts, resolve=resolver)
        self.max_redirects = max(0, int(max_redirects))
        # Kept to rebuild the Fetcher in another process (pickle): locks and clients are not transferable.
        self._init_args = dict(timeout=timeout, connect_timeout=connect_timeout, retries=retries, backoff=backoff,
                               max_backoff=max_backoff, per_host_rate=per_host_rate, max_bytes=max_bytes,
                               max_retry_after=max_retry_after, user_agent=user_agent, headers=headers,
                               chunk_size=chunk_size, allow_hosts=self.policy.entries,
                               max_redirects=max_redirects, resolver=resolver)
        self.cache_dir = Path(cache_dir).expanduser()
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout if connect_timeout is not None else timeout)
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.min_interval = 1.0 / per_host_rate if per_host_rate else 0.0
        self.max_bytes = max_bytes
        self.max_retry_after = max_retry_after
        self.chunk_size = chunk_size
        # identity: byte ranges must count the bytes as stored, not a compressed transfer.
        self.headers = {"User-Agent": user_agent, "Accept-Encoding": "identity", **(headers or {})}
        self.stats = FetchStats()
        self._stats_lock = threading.Lock()
        self._rate_lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()
        self._pid = os.getpid()
        try:
            from vislink.config import make_private_dir

            make_private_dir(self.cache_dir)  # 0700 when it is new (the data folder's rule)
            for sub in ("objects", "urls", "partial/locks"):
                (self.cache_dir / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.cache_dir}: cannot create the download cache ({exc.strerror or exc})") from exc

    def __reduce__(self):
        return (_rebuild, (str(self.cache_dir), self._init_args))

    # ----------------------------------------------------------------------------------------- public

    def fetch(self, url: str, *, refresh: bool = False, expect: str | None = None) -> Path:
        """The cached file holding ``url``'s content, downloading it when it is not cached (or ``refresh``).
        ``expect``: ``"image"`` or ``"json"`` refuses (and never stores) a reply of another kind; None takes any.
        Raises ``DownloadError`` (a ``FetchError``) naming the URL and the reason."""
        if expect not in _EXPECT:
            raise ValueError(f"expect must be one of {_EXPECT}, not {expect!r}")
        _check_url(url)
        key = _url_key(url)
        if not refresh:
            hit = self.cached(url)
            if hit is not None:
                return _checked_hit(url, hit, expect, self._content_type(url) if expect == "json" else None)
        with self._stripes[int(key[:2], 16)], self._file_lock(key):
            if not refresh:  # another thread or process may have finished it while we waited
                hit = self.cached(url)
                if hit is not None:
                    return _checked_hit(url, hit, expect, self._content_type(url) if expect == "json" else None)
            entry = self._download_with_retries(url, key, expect)
            self._write_index(key, entry)
            return self._object_path(entry["sha256"])

    def fetch_bytes(self, url: str, *, refresh: bool = False, expect: str | None = None) -> bytes:
        return self.fetch(url, refresh=refresh, expect=expect).read_bytes()

    def fetch_json(self, url: str, *, refresh: bool = False) -> Any:
        """The JSON document at ``url`` (cached like any download; a reply that is not JSON is not kept)."""
        data = self.fetch_bytes(url, refresh=refresh, expect="json")
        try:
            doc, encoding = decode_json(data, self._content_type(url))
        except ValueError as exc:
            raise DownloadError(url, "not-json", str(exc)[:300]) from None
        if encoding != "utf-8":
            log.info("%s: not UTF-8, read as %s", url, encoding)
        return doc

    def fetch_json_many(self, urls, *, per_host: int = 4, max_workers: int = 16) -> dict[str, Any]:
        """url -> JSON document, or the ``FetchError`` that URL failed with, for several URLs at once:
        at most ``per_host`` downloads at a time to one host (each request still waits for its slot under
        ``per_host_rate``), hosts in parallel. Once one URL of a host fails because the host does not answer
        (``connect-error``, ``timeout``), its URLs not yet started fail at once with that reason."""
        urls = list(dict.fromkeys(urls))
        results: dict[str, Any] = {}
        by_host: dict[str, list[str]] = {}
        for url in urls:
            by_host.setdefault(urlsplit(url).netloc.lower(), []).append(url)
        down: dict[str, str] = {}
        gates = {host: threading.Semaphore(max(1, per_host)) for host in by_host}

        def one(host: str, url: str) -> None:
            with gates[host]:
                if host in down:
                    results[url] = DownloadError(url, down[host].split(":", 1)[0], f"not tried: {down[host]}")
                    return
                try:
                    results[url] = self.fetch_json(url)
                except FetchError as exc:
                    results[url] = exc
                    if getattr(exc, "reason", None) in ("connect-error", "timeout"):
                        down.setdefault(host, f"{exc.reason}: {host} did not answer for {url}")

        order = [(host, group[i]) for i in range(max((len(g) for g in by_host.values()), default=0))
                 for host, group in by_host.items() if i < len(group)]  # hosts interleaved
        workers = min(max_workers, sum(min(max(1, per_host), len(g)) for g in by_host.values()))
        if workers <= 1:
            for host, url in order:
                one(host, url)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="fetch-json") as pool:
                list(pool.map(lambda pair: one(*pair), order))
        return {url: results[url] for url in urls}

    def cached(self, url: str) -> Path | None:
        """The cached file for ``url`` without any request, or None."""
        entry = self.index_entry(url)
        if entry is None:
            return None
        path = self._object_path(entry["sha256"])
        try:
            if path.stat().st_size != entry["size"]:
                return None
        except OSError:
            return None
        with self._stats_lock:
            self.stats.cache_hits += 1
        return path

    def _content_type(self, url: str) -> str | None:
        entry = self.index_entry(url)
        return entry.get("content_type") if entry else None

    def index_entry(self, url: str) -> dict[str, Any] | None:
        """The URL index entry (url, sha256, size, content_type, fetched_at) or None."""
        key = _url_key(url)
        try:
            entry = json.loads(self._index_path(key).read_text())
        except (OSError, ValueError):
            return None
        return entry if entry.get("url") == url else None

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- download

    def _download_with_retries(self, url: str, key: str, expect: str | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self._attempt(url, key, expect)
            except _Retry as exc:
                if attempt >= self.retries:
                    raise DownloadError(url, exc.reason, _join(exc.detail, f"{attempt + 1} attempts"),
                                        exc.status) from None
                if exc.retry_after is not None:
                    if exc.retry_after > self.max_retry_after:
                        raise DownloadError(url, exc.reason, f"the server asks to retry after {exc.retry_after:.0f} s",
                                            exc.status) from None
                    delay = exc.retry_after
                else:
                    delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (1 + 0.25 * random.random())
                log.info("%s: %s, retrying in %.2f s (attempt %d of %d)", url, _join(exc.reason, exc.detail),
                         delay, attempt + 2, self.retries + 1)
                with self._stats_lock:
                    self.stats.retries += 1
                time.sleep(delay)
                attempt += 1

    def _attempt(self, url: str, key: str, expect: str | None = None) -> dict[str, Any]:
        part = self.cache_dir / "partial" / f"{key}.part"
        meta_path = self.cache_dir / "partial" / f"{key}.json"
        offset, validator = self._resumable(url, part, meta_path)
        headers = {}
        if offset:
            headers = {"Range": f"bytes={offset}-", "If-Range": validator}
        try:
            resp = self._open(url, headers)
            try:
                return self._receive(url, resp, part, meta_path, offset, expect)
            finally:
                resp.close()
        except httpx.TimeoutException as exc:
            raise _Retry("timeout", type(exc).__name__) from None
        except httpx.ConnectError as exc:
            raise _Retry("connect-error", str(exc)[:200]) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            raise _Retry("connection-broken", str(exc)[:200] or type(exc).__name__) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DownloadError(url, "bad-url", str(exc)[:200]) from None

    def _open(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """The streamed response at the end of ``url``'s redirects (the caller closes it). Each hop is a new
        request whose connection is checked by the address policy; a refused hop fails the download naming it."""
        current, client = url, self._client()
        for hop in range(self.max_redirects + 1):
            self._throttle(current)
            with self._stats_lock:
                self.stats.requests += 1
            try:
                resp = client.send(client.build_request("GET", current, headers=headers), stream=True)
            except AddressRefused as exc:
                via = f"redirected to {current}: " if current != url else ""
                raise DownloadError(url, "blocked-address", via + str(exc)) from None
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECT_STATUS or not location:
                return resp
            resp.close()
            target = urljoin(current, location.strip())
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise DownloadError(url, "bad-redirect", f"{current} redirects to {target!r}, not an http(s) URL",
                                    resp.status_code)
            if urlsplit(current)[:2] != parts[:2]:  # another origin: no credentials go with the request
                headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
            log.debug("%s: %d redirect to %s", current, resp.status_code, target)
            current = target
        raise DownloadError(url, "too-many-redirects", f"more than {self.max_redirects} redirects (last: {current})")

    def _receive(self, url: str, resp: httpx.Response, part: Path, meta_path: Path, offset: int,
                 expect: str | None = None) -> dict[str, Any]:
        status = resp.status_code
        if status in _RETRY_STATUS or 500 <= status < 600:
            raise _Retry(f"http-{status}", resp.reason_phrase, status, _retry_after(resp.headers.get("Retry-After")))
        if status == 416:  # our .part does not fit the resource any more: start over
            _discard(part, meta_path)
            raise _Retry("http-416", "range not satisfiable, starting over", status)
        if status not in (200, 206):
            raise DownloadError(url, f"http-{status}", resp.reason_phrase, status)
        if status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                _discard(part, meta_path)
                raise _Retry("bad-range", f"asked for byte {offset}, got {start}", status)
        else:
            offset, total = 0, None  # a full body: the server ignored the range, or the resource changed
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else total
        if expected is not None and expected > self.max_bytes:
            _discard(part, meta_path)
            raise DownloadError(url, "too-large", f"{expected} bytes, the limit is {self.max_bytes}", status)
        content_type = resp.headers.get("Content-Type")
        wrong = _wrong_type(expect, content_type)
        if wrong:  # refused before any byte is read
            _discard(part, meta_path)
            raise DownloadError(url, f"not-{'an-image' if expect == 'image' else expect}", _via(url, resp, wrong),
                                status)
        # Validators first: if we are interrupted from here on, the next attempt (or process) can resume.
        validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        # A server that compresses anyway counts ranges in compressed bytes: such a body is never resumed.
        coded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        if status == 200 or not meta_path.exists():
            resumable = _strong(validator) and not coded
            _write_json(meta_path, {"url": url, "validator": validator if resumable else None})
        received = offset
        # Raw bytes as they arrive (we asked for no content coding): a chunking buffer would lose what it
        # holds when the connection drops, and those are the bytes a resume needs.
        chunks = resp.iter_bytes(self.chunk_size) if coded else resp.iter_raw()
        with open(part, "ab" if offset else "wb") as fh:
            for chunk in chunks:
                received += len(chunk)
                if received > self.max_bytes:
                    fh.close()
                    _discard(part, meta_path)
                    raise DownloadError(url, "too-large", f"more than {self.max_bytes} bytes", status)
                fh.write(chunk)
                with self._stats_lock:
                    self.stats.bytes_received += len(chunk)
        if expected is not None and received < expected:
            raise _Retry("connection-broken", f"got {received} of {expected} bytes", status)
        wrong = _wrong_content(expect, part, content_type)
        if wrong:  # never renamed into objects/
            _discard(part, meta_path)
            raise DownloadError(url, f"not-{'an-image' if expect == 'image' else expect}",
                                _via(url, resp, _join(wrong, f"Content-Type {content_type or 'not given'}")), status)
        return self._store(url, part, meta_path, content_type, str(resp.url))

    def _store(self, url: str, part: Path, meta_path: Path, content_type: str | None, final_url: str) -> dict:
        digest = hashlib.sha256()
        size = 0
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        sha = digest.hexdigest()
        target = self._object_path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size == size:
            part.unlink(missing_ok=True)  # same content under another URL: stored once
        else:
            os.replace(part, target)
        meta_path.unlink(missing_ok=True)
        with self._stats_lock:
            self.stats.downloads += 1
        return {"url": url, "sha256": sha, "size": size, "content_type": content_type, "final_url": final_url,
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _resumable(self, url: str, part: Path, meta_path: Path) -> tuple[int, str | None]:
        """Bytes already in the .part file and the validator to resume them with, or (0, None)."""
        try:
            size = part.stat().st_size
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            _discard(part, meta_path)
            return 0, None
        if size and meta.get("url") == url and meta.get("validator"):
            return size, meta["validator"]
        # Without a validator we could glue the start of one version to the end of another.
        _discard(part, meta_path)
        return 0, None

    # ----------------------------------------------------------------------------------------- helpers

    def _client(self) -> httpx.Client:
        if os.getpid() != self._pid:  # forked: the parent's connections are not ours
            self._pid = os.getpid()
            self._local = threading.local()
            self._clients = []
        client = getattr(self._local, "client", None)
        if client is None:
            # Redirects are followed by _open, hop by hop; no proxy from the environment (see netguard).
            client = httpx.Client(timeout=self.timeout, headers=self.headers, follow_redirects=False,
                                  transport=guarded_transport(self.policy), trust_env=False)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _throttle(self, url: str) -> None:
        if not self.min_interval:
            return
        host = urlsplit(url).netloc.lower()
        with self._rate_lock:  # reserve the next slot for this host, then sleep outside the lock
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + self.min_interval
        if slot > now:
            time.sleep(slot - now)

    @contextlib.contextmanager
    def _file_lock(self, key: str) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        with open(self.cache_dir / "partial" / "locks" / f"{key[:2]}.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _object_path(self, sha: str) -> Path:
        return self.cache_dir / "objects" / sha[:2] / sha

    def _index_path(self, key: str) -> Path:
        return self.cache_dir / "urls" / key[:2] / f"{key}.json"

    def _write_index(self, key: str, entry: dict[str, Any]) -> None:
        path = self._index_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, entry)


def _rebuild(cache_dir: str, kwargs: dict[str, Any]) -> Fetcher:
    return Fetcher(cache_dir, **kwargs)


def _check_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(str(url), "bad-url", "only http and https URLs can be downloaded")


# The first bytes of the image formats vislink decodes (Pillow): an "image" reply must start with one of them.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
                b"\x00\x00\x00\x0cjP  ", b"\xffO\xffQ", b"\x00\x00\x01\x00")
_TEXT_TYPES = ("text/", "application/json", "application/ld+json", "application/xml", "application/xhtml",
               "application/javascript", "application/pdf")


def is_image_data(head: bytes) -> bool:
    """Whether ``head`` (a file's first 32 bytes) starts like an image vislink can decode (JPEG, PNG, GIF, WebP,
    TIFF, BMP, JPEG 2000, ICO, AVIF, PNM)."""
    if head.startswith(_IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return True
    return len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace()


def _wrong_type(expect: str | None, content_type: str | None) -> str | None:
    """Why a reply announced as ``content_type`` cannot be what was asked for, from the header alone."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind or kind == "application/octet-stream":
        return None  # decided by the content
    if expect == "image" and kind.startswith(_TEXT_TYPES):
        return f"the server sent {kind}, not an image"
    if expect == "json" and (kind.startswith(("image/", "video/", "audio/")) or kind in ("text/html",)):
        return f"the server sent {kind}, not JSON"
    return None


def decode_json(data: bytes, content_type: str | None = None) -> tuple[Any, str]:
    """(document, encoding) of JSON bytes: UTF-8 (a BOM dropped), UTF-16/32 (by BOM or by the zero bytes of
    ASCII, RFC 4627), then the charset the ``Content-Type`` declares, then Windows-1252. ``ValueError`` says
    whether the bytes are not text in any of those ("not UTF-8 ...") or not JSON."""
    declared = None
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip(' "'):
            declared = value.strip(' "').lower()
    boms = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
            (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
    candidates = [enc for bom, enc in boms if data.startswith(bom)][:1]
    head = data[:4]
    if not candidates and len(head) == 4 and head.count(0):
        candidates = ["utf-32-be" if head[:3] == b"\0\0\0" else "utf-32-le" if head[1:] == b"\0\0\0" else
                      "utf-16-be" if head[0] == 0 else "utf-16-le"]
    candidates += ["utf-8", *([declared] if declared else []), "cp1252"]
    first_error = None
    for encoding in dict.fromkeys(candidates):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            first_error = first_error or exc
            continue
        try:
            return json.loads(text), "utf-8" if encoding == "utf-8-sig" else encoding
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc}; it starts {data[:24]!r})") from None
    tried = ", ".join(dict.fromkeys(candidates))
    raise ValueError(f"not UTF-8 text, nor {tried.replace('utf-8, ', '')} ({first_error})")


def _wrong_content(expect: str | None, path: Path, content_type: str | None = None) -> str | None:
    """Why the downloaded file is not what was asked for, or None."""
    if expect == "image":
        with open(path, "rb") as fh:
            head = fh.read(32)
        return None if is_image_data(head) else f"the content is not an image (it starts {head[:16]!r})"
    if expect == "json":
        try:
            decode_json(path.read_bytes(), content_type)
        except ValueError as exc:
            return f"the content is {str(exc)[:200]}"
    return None


def _checked_hit(url: str, path: Path, expect: str | None, content_type: str | None = None) -> Path:
    """A cached file, refused when it is not what was asked for (a file cached without an expectation)."""
    wrong = _wrong_content(expect, path, content_type)
    if wrong:
        raise DownloadError(url, f"not-{'an-image' if expect == 'image' else expect}", f"cached copy: {wrong}")
    return path


def _via(url: str, resp: httpx.Response, detail: str) -> str:
    final = str(resp.url)
    return detail if final == url else f"{detail}; redirected to {final}"


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Atomic: write a temporary file next to it, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _strong(validator: str | None) -> bool:
    # If-Range needs a strong validator: a weak ETag (W/"...") may name a different byte sequence.
    return bool(validator) and not validator.startswith("W/")


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total length) from ``bytes 100-199/200``; total None when ``*``."""
    try:
        unit, rest = (value or "").split(" ", 1)
        span, total = rest.split("/", 1)
        return int(span.split("-", 1)[0]), (int(total) if total.strip() != "*" else None)
    except ValueError:
        return None, None


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)

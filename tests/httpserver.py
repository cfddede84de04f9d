"""A real HTTP server on 127.0.0.1 for tests: serves a folder of real files, plus routes that fail, are slow,
cut the connection, or act as a small IIIF Image API server; it counts and records every request.

    with LocalHTTPServer(folder) as server:          # or the ``http_server`` fixture (tests/conftest_http.py)
        server.url("a/b.jpg")                        # http://127.0.0.1:PORT/a/b.jpg -> folder/a/b.jpg
        server.add_flaky("/x.jpg", failures=2, data=b"...")  # 500, 500, then the data
        server.hits("/x.jpg")                        # requests seen for that path

Files and byte routes support ``Range`` (206) with ``If-Range`` and send a strong ``ETag``.
Path conventions that need no set-up (for files under the folder):
``/status/<code>``, ``/slow/<seconds>/<relpath>``, ``/flaky/<n>/<relpath>`` (500 for the first n requests).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import mimetypes
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before anything is sent
    cut_at: int | None = None  # send only this many body bytes, then drop the connection
    ranges: bool = True  # answer Range requests with 206


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    time: float


Handler = Callable[[RecordedRequest], Reply]


class LocalHTTPServer:
    def __init__(self, root: Path | str | None = None, host: str = "127.0.0.1"):
        self.root = Path(root) if root is not None else None
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.bytes_sent: Counter = Counter()
        self._routes: dict[str, Handler] = {}
        self._prefixes: list[tuple[str, Handler]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> LocalHTTPServer:
        server = self

        class _Handler(_RequestHandler):
            owner = server

        self._httpd = ThreadingHTTPServer((self.host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="test-http-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # ------------------------------------------------------------------------------------ observation

    def hits(self, path: str, method: str | None = None) -> int:
        """Requests seen for ``path`` (without query string), optionally of one method."""
        path = "/" + path.lstrip("/")
        with self._lock:
            return sum(1 for r in self.requests if r.path == path and (method is None or r.method == method))

    def requests_for(self, path: str) -> list[RecordedRequest]:
        path = "/" + path.lstrip("/")
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent.clear()

    # ------------------------------------------------------------------------------------ routes

    def add_handler(self, path: str, handler: Handler, *, prefix: bool = False) -> None:
        """A function answering requests for ``path`` (or every path under it when ``prefix``)."""
        path = "/" + path.lstrip("/")
        with self._lock:
            if prefix:
                self._prefixes.append((path.rstrip("/") + "/", handler))
            else:
                self._routes[path] = handler

    def add_bytes(self, path: str, data: bytes | Path, content_type: str | None = None, *,
                  ranges: bool = True, headers: dict[str, str] | None = None) -> None:
        data = data.read_bytes() if isinstance(data, Path) else data
        hdrs = {"Content-Type": content_type or _guess_type(path), **(headers or {})}
        self.add_handler(path, lambda req: Reply(200, data, dict(hdrs), ranges=ranges))

    def add_json(self, path: str, obj: object) -> None:
        self.add_bytes(path, json.dumps(obj, indent=1).encode(), "application/json")

    def add_status(self, path: str, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.add_handler(path, lambda req: Reply(status, body, dict(headers or {}), ranges=False))

    def add_flaky(self, path: str, failures: int, data: bytes | Path, *, status: int = 500,
                  headers: dict[str, str] | None = None) -> None:
        """``status`` (with ``headers``, e.g. Retry-After) for the first ``failures`` requests, then ``data``."""
        data = data.read_bytes() if isinstance(data, Path) else data
        counter = itertools.count(1)  # next() on it is atomic: concurrent requests count right

        def handler(req: RecordedRequest) -> Reply:
            if next(counter) <= failures:
                return Reply(status, b"failing on purpose", dict(headers or {}), ranges=False)
            return Reply(200, data, {"Content-Type": _guess_type(path)})

        self.add_handler(path, handler)

    def add_slow(self, path: str, delay: float, data: bytes = b"slow", *, times: int | None = None) -> None:
        """Waits ``delay`` seconds before answering (the first ``times`` requests, or all)."""
        counter = itertools.count(1)

        def handler(req: RecordedRequest) -> Reply:
            slow = next(counter) <= times if times is not None else True
            return Reply(200, data, {"Content-Type": _guess_type(path)}, delay=delay if slow else 0.0)

        self.add_handler(path, handler)

    def add_truncated(self, path: str, data: bytes | Path, cut_at: int, *, times: int = 1,
                      ranges: bool = True) -> None:
        """The first ``times`` requests announce the full length, send ``cut_at`` bytes and drop the
        connection (an interrupted download); later ones are served whole, with Range support if ``ranges``."""
        data = data.read_bytes() if isinstance(data, Path) else data
        counter = itertools.count(1)

        def handler(req: RecordedRequest) -> Reply:
            cut = cut_at if next(counter) <= times else None
            return Reply(200, data, {"Content-Type": _guess_type(path)}, cut_at=cut, ranges=ranges)

        self.add_handler(path, handler)

    def add_iiif_image(self, name: str, image: Path | bytes, *, version: int = 2, level: int = 2,
                       max_width: int | None = None, max_height: int | None = None, max_area: int | None = None,
                       sizes: list[tuple[int, int]] | None = None) -> IIIFImageService:
        """A IIIF Image API service at ``/iiif/<name>`` (info.json and ``full`` region image requests, resized
        by Pillow). Requests it must refuse at that level or above the max sizes get 400. Returns the service
        (``.id``, ``.size_requests``)."""
        service = IIIFImageService(self, name, image, version=version, level=level, max_width=max_width,
                                   max_height=max_height, max_area=max_area, sizes=sizes)
        self.add_handler(f"/iiif/{name}", service, prefix=True)
        return service

    # ------------------------------------------------------------------------------------ dispatch

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _answer(self, req: RecordedRequest) -> Reply:
        with self._lock:
            handler = self._routes.get(req.path)
            if handler is None:
                handler = next((h for p, h in self._prefixes if req.path.startswith(p)), None)
        if handler is not None:
            return handler(req)
        m = re.fullmatch(r"/status/(\d{3})", req.path)
        if m:
            return Reply(int(m.group(1)), b"status on purpose", ranges=False)
        m = re.fullmatch(r"/slow/([\d.]+)/(.+)", req.path)
        if m:
            reply = self._file(m.group(2))
            reply.delay = float(m.group(1))
            return reply
        m = re.fullmatch(r"/flaky/(\d+)/(.+)", req.path)
        if m:
            if self.hits(req.path) <= int(m.group(1)):
                return Reply(500, b"failing on purpose", ranges=False)
            return self._file(m.group(2))
        return self._file(req.path)

    def _file(self, rel: str) -> Reply:
        if self.root is None:
            return Reply(404, b"no such file", ranges=False)
        root = self.root.resolve()
        path = (root / unquote(rel).lstrip("/")).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Reply(404, b"no such file", ranges=False)
        return Reply(200, path.read_bytes(), {"Content-Type": _guess_type(path.name)})


class _RequestHandler(BaseHTTPRequestHandler):
    owner: LocalHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: tests read owner.requests instead
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        parts = urlsplit(self.path)
        req = RecordedRequest(self.command, parts.path, parts.query, dict(self.headers.items()), time.monotonic())
        self.owner._record(req)
        reply = self.owner._answer(req)
        if reply.delay:
            time.sleep(reply.delay)
        body, status, headers = reply.body, reply.status, dict(reply.headers)
        if status == 200:
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            headers.setdefault("ETag", etag)
            if reply.ranges:
                headers["Accept-Ranges"] = "bytes"
                rng = _parse_range(self.headers.get("Range"), len(body))
                if_range = self.headers.get("If-Range")
                if rng is not None and (if_range is None or if_range == headers["ETag"]):
                    if rng == "unsatisfiable":
                        status, body = 416, b""
                        headers["Content-Range"] = f"bytes */{len(reply.body)}"
                    else:
                        start, end = rng
                        status, body = 206, body[start:end + 1]
                        headers["Content-Range"] = f"bytes {start}-{end}/{len(reply.body)}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        # Counted before writing: a client that has read the whole reply may look at the count at once, before
        # this thread would get past write() (the count lagged behind the resumed download's second reply).
        if reply.cut_at is not None and reply.cut_at < len(body):
            self.owner.bytes_sent[req.path] += reply.cut_at
            self.wfile.write(body[:reply.cut_at])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.owner.bytes_sent[req.path] += len(body)
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True


def _parse_range(value: str | None, size: int):
    """(start, end) inclusive from ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``; "unsatisfiable"; None to ignore."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value or "")
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def make_jpeg(width: int, height: int, seed: int = 0, quality: int = 90) -> bytes:
    """A real JPEG with structure (gradients and a few rectangles), different for each seed."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)),
                    np.full_like(x, int(rng.integers(0, 256)))], axis=-1).astype("uint8")
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        draw.rectangle([x0, y0, x0 + width // 4, y0 + height // 4], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class IIIFImageService:
    """The parts of the IIIF Image API (2.1 and 3.0) a client needs to fetch a whole image at some size:
    ``info.json`` and ``full/<size>/0/default.jpg``. It enforces the compliance level's size syntaxes, the
    ``sizes`` list at level 0, maxWidth/maxHeight/maxArea, and (v3) no upscaling without ``^``; what it must
    refuse gets 400. ``size_requests`` records the size strings it served."""

    def __init__(self, server: LocalHTTPServer, name: str, image: Path | bytes, *, version: int, level: int,
                 max_width: int | None, max_height: int | None, max_area: int | None,
                 sizes: list[tuple[int, int]] | None):
        from PIL import Image

        self.server, self.name, self.version, self.level = server, name, version, level
        self.data = image.read_bytes() if isinstance(image, Path) else image
        with Image.open(io.BytesIO(self.data)) as img:
            self.width, self.height = img.size
        self.max_width = max_width
        self.max_height = max_height if max_height is not None else max_width  # the spec's default
        self.max_area = max_area
        self.sizes = sizes
        self.size_requests: list[str] = []

    @property
    def id(self) -> str:
        return self.server.url(f"iiif/{self.name}")

    def info(self) -> dict:
        limits = {k: v for k, v in (("maxWidth", self.max_width), ("maxHeight", self.max_height),
                                    ("maxArea", self.max_area)) if v is not None}
        if self.version == 2:
            info = {"@context": "http://iiif.io/api/image/2/context.json", "@id": self.id,
                    "protocol": "http://iiif.io/api/image", "width": self.width, "height": self.height,
                    "profile": [f"http://iiif.io/api/image/2/level{self.level}.json",
                                {"formats": ["jpg"], "qualities": ["default"], **limits}]}
        else:
            info = {"@context": "http://iiif.io/api/image/3/context.json", "id": self.id, "type": "ImageService3",
                    "protocol": "http://iiif.io/api/image", "profile": f"level{self.level}",
                    "width": self.width, "height": self.height, **limits}
        if self.sizes:
            info["sizes"] = [{"width": w, "height": h} for w, h in self.sizes]
        return info

    def __call__(self, req: RecordedRequest) -> Reply:
        rest = req.path[len(f"/iiif/{self.name}/"):]
        if rest == "info.json":
            return Reply(200, json.dumps(self.info()).encode(), {"Content-Type": "application/json"})
        parts = rest.split("/")
        if len(parts) != 4 or parts[0] != "full" or parts[2] != "0" or "." not in parts[3]:
            return Reply(400, b"only full/<size>/0/<quality>.jpg is served here", ranges=False)
        quality, fmt = parts[3].rsplit(".", 1)
        if quality not in ("default", "color") or fmt not in ("jpg", "jpeg"):
            return Reply(400, b"unsupported quality or format", ranges=False)
        size = self._size(unquote(parts[1]))
        if isinstance(size, str):
            return Reply(400, size.encode(), ranges=False)
        self.size_requests.append(unquote(parts[1]))
        from PIL import Image

        with Image.open(io.BytesIO(self.data)) as img:
            out = img.convert("RGB").resize(size)
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=85)
        return Reply(200, buf.getvalue(), {"Content-Type": "image/jpeg"})

    def _size(self, spec: str) -> tuple[int, int] | str:
        """(w, h) for a size request, or the reason for refusing it."""
        W, H = self.width, self.height
        upscale = spec.startswith("^")
        if upscale:
            if self.version == 2:
                return "^ is not v2 syntax"
            spec = spec[1:]
        if self.level == 0:
            allowed = {"full", "max"} if self.version == 2 else {"max"}
            listed = {(f"{w}," if self.version == 2 else f"{w},{h}"): (w, h) for w, h in self.sizes or []}
            if spec not in allowed and spec not in listed:
                return f"level 0 serves only {sorted(allowed | listed.keys())}"
            if spec in listed:
                return listed[spec]
        if spec in ("full", "max"):
            if spec == "full" and self.version == 3:
                return "'full' is not a v3 size"
            w, h = W, H
            if spec == "max":  # the largest the limits allow
                scale = min(1.0, (self.max_width or W) / W, (self.max_height or H) / H,
                            ((self.max_area or W * H) / (W * H)) ** 0.5)
                w, h = max(1, int(W * scale)), max(1, int(H * scale))
                return w, h
        elif m := re.fullmatch(r"(\d+),", spec):
            w = int(m.group(1))
            w, h = w, max(1, round(H * w / W))
        elif m := re.fullmatch(r",(\d+)", spec):
            h = int(m.group(1))
            w, h = max(1, round(W * h / H)), h
        elif self.level < 2:
            return f"level {self.level} does not serve size {spec}"
        elif m := re.fullmatch(r"pct:([\d.]+)", spec):
            pct = float(m.group(1)) / 100
            w, h = max(1, round(W * pct)), max(1, round(H * pct))
        elif m := re.fullmatch(r"(!?)(\d+),(\d+)", spec):
            bw, bh = int(m.group(2)), int(m.group(3))
            if m.group(1):
                scale = min(bw / W, bh / H)
                w, h = max(1, round(W * scale)), max(1, round(H * scale))
            else:
                w, h = bw, bh
        else:
            return f"bad size {spec}"
        if self.version == 3 and not upscale and (w > W or h > H):
            return "upscaling needs ^ in v3"
        if (self.max_width and w > self.max_width) or (self.max_height and h > self.max_height):
            return f"{w}x{h} is over maxWidth/maxHeight"
        if self.max_area and w * h > self.max_area:
            return f"{w}x{h} is over maxArea"
        return w, h

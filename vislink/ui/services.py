"""What the pages call into the rest of vislink: long-lived resources (index, encoder), searches, uploads
and graph edits. Pages never import the other stages directly, so this is the one place that follows
their interfaces (docs/contracts.md).

The index client lives in ``st.cache_resource`` (one per process and data folder, shared by every browser
session); the encoder is ``get_encoder``'s process-wide one, preloaded in a thread when the server starts.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import streamlit as st

from vislink.config import get_settings
from vislink.errors import BadImage, VislinkError

log = logging.getLogger(__name__)

# Results are fetched in blocks and paged locally: one encoding and one index query serve ten pages.
BLOCK = 200


def _settings_key() -> tuple:
    s = get_settings()
    return (s.effective_index_backend, str(s.resolved_home), s.qdrant_url, s.weights)


@st.cache_resource(show_spinner=False)
def _index(key: tuple):
    from vislink.index import open_index

    return open_index(get_settings())


def index():
    """The vector index of this process (opened once)."""
    return _index(_settings_key())


_prewarm_started: set[str] = set()


def prewarm_in_background() -> None:
    """Start loading the encoder(s) of the stored collections in a thread when the server starts, so the
    first search does not wait for the model (``get_encoder`` is thread-safe and cached per process)."""
    home = str(get_settings().resolved_home)
    if home in _prewarm_started:
        return
    _prewarm_started.add(home)
    threading.Thread(target=_prewarm, name="vislink-prewarm", daemon=True).start()


def _prewarm() -> None:
    try:
        from sqlalchemy import select

        from vislink.search.encoding import query_encoder
        from vislink.store import DescriptorVariant, session_scope

        with session_scope() as session:
            names = session.scalars(select(DescriptorVariant.weights_name).distinct()).all()
        for name in names:
            query_encoder(name)  # the encoder searches run on (its query precision: docs/search.md)
    except Exception as exc:  # noqa: BLE001 - a warm-up only: the search itself reports any real error
        log.warning("could not preload the encoder: %s", exc)


# -- uploads -----------------------------------------------------------------------------------

class DecodeSlots:
    """At most ``size`` big decodes at once in this server process, whatever the number of browser sessions
    (the search page needs no sign-in): the others wait their turn. ``peak``: the most ever held at once."""

    def __init__(self, size: int):
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.busy = self.peak = 0

    def __enter__(self):
        self._slots.acquire()
        with self._lock:
            self.busy += 1
            self.peak = max(self.peak, self.busy)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.busy -= 1
        self._slots.release()


# An image over BIG_DECODE_PIXELS (width x height) takes one of DECODE_SLOTS to be decoded: decoded reduced,
# a PNG of the 64 MP limit still holds up to 256 MB while it is, a JPEG a 16th of that.
BIG_DECODE_PIXELS = 4_000_000
DECODE_SLOTS = DecodeSlots(2)


def _pixels(data: bytes) -> int:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb warns here; open_rgb gives it its reason
            width, height = Image.open(io.BytesIO(data)).size
        return width * height
    except Exception:  # noqa: BLE001 - not an image: open_rgb says why, without a slot
        return 0


def decode_image(source, name: str):
    """An upload's bytes or a stored file, decoded for the encoder and the screen: a big image reduced (shorter
    side ``REDUCED_SIDE``, as ingest decodes it), and only ``DECODE_SLOTS`` big decodes at once."""
    from pathlib import Path

    from vislink.encoder.images import REDUCED_SIDE, open_rgb

    settings = get_settings()
    data = source if isinstance(source, bytes) else None
    if data is None:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise BadImage(name, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    if _pixels(data) <= BIG_DECODE_PIXELS:
        return open_rgb(data, name=name, max_pixels=settings.max_image_pixels, min_side=REDUCED_SIDE)
    with DECODE_SLOTS:
        return open_rgb(data, name=name, max_pixels=settings.max_image_pixels, min_side=REDUCED_SIDE)


def read_upload(name: str, data: bytes):
    """Check an uploaded file: size limit, then a decode (``decode_image``). Returns the RGB Pillow image.
    Raises ``BadImage`` naming the file and the reason."""
    settings = get_settings()
    limit = settings.max_upload_mb * 1024 * 1024
    if len(data) > limit:
        raise BadImage(name, "too-large", f"{len(data) / 1e6:.1f} MB, the limit is {settings.max_upload_mb} MB "
                                          "(VISLINK_MAX_UPLOAD_MB)")
    return decode_image(data, name)


def upload_to_collection(collection: str, name: str, data: bytes):
    """Validate, store under its hash, encode and index an uploaded image (searchable at once)."""
    read_upload(name, data)  # the size limit and a readable message before any work
    from vislink.ingest.runner import ingest_upload

    return ingest_upload(collection, name, data)


# -- search ------------------------------------------------------------------------------------

@dataclass
class Query:
    """What the user searches with. ``image`` is PNG/JPEG bytes (an upload or a crop); ``image_id`` an
    image of the collection; ``positive``/``negative`` image ids (recommendation)."""

    image: bytes | None = None
    image_id: int | None = None
    positive: tuple[int, ...] = ()
    negative: tuple[int, ...] = ()
    positive_images: tuple[bytes, ...] = ()
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Detail search on a -regions variant (docs/detail.md): ``region`` x, y, w, h in the pixels of ``image`` (its
    # full size) or of the stored image ``image_id``, matched against the stored regions; ``auto``: the query's own
    # regions each matched (regions="auto").
    region: tuple[int, int, int, int] | None = None
    auto: bool = False

    @property
    def is_detail(self) -> bool:
        return self.region is not None or self.auto

    @property
    def is_empty(self) -> bool:
        return self.image is None and self.image_id is None and not self.positive and not self.positive_images

    def key(self) -> str:
        h = hashlib.sha256()
        for part in (self.image or b"", str(self.image_id).encode(), repr(self.positive).encode(),
                     repr(self.negative).encode(), *self.positive_images):
            h.update(hashlib.sha256(part).digest())
        if self.is_detail:  # a plain query keeps the key it always had
            h.update(repr((self.region, self.auto)).encode())
        return h.hexdigest()[:16]


def _pil(data: bytes):
    return decode_image(data, "query")


def run_search(query: Query, *, collection: str, variant: str | None, flt: dict | None, mirrored: bool,
               offset: int, limit: int, verify: int | None = None) -> list:
    """One block of results (``vislink.search.search``); ``verify``: re-rank the top ``verify`` by geometric
    verification against the query image (None: off; a search by examples alone is not verified)."""
    from vislink.search import search

    if query.is_empty:
        raise VislinkError("no query: upload an image, pick one, or choose positive examples")
    if query.is_detail:  # the stored regions: one query, without mirrored / examples (docs/detail.md)
        return search(_pil(query.image) if query.image is not None else None,
                      image_id=query.image_id if query.image is None else None, collection=collection,
                      variant=variant, limit=limit, offset=offset, filters=flt, region=query.region,
                      regions="auto" if query.auto else None, verify=bool(verify), verify_top=verify or None)
    common = dict(collection=collection, variant=variant, limit=limit, offset=offset, filters=flt, mirrored=mirrored)
    if verify and (query.image is not None or query.image_id is not None) and not (
            query.positive or query.positive_images or query.negative):
        return search(_pil(query.image) if query.image is not None else None,
                      image_id=query.image_id if query.image is None else None, verify=True, verify_top=verify,
                      **common)
    if query.positive or query.positive_images:
        positive: list = list(query.positive) + [_pil(b) for b in query.positive_images]
        if query.image is not None:
            positive.append(_pil(query.image))
        elif query.image_id is not None:
            positive.append(query.image_id)
        return search(positive=positive, negative=list(query.negative), **common)
    if query.image is not None:
        if query.negative:
            return search(positive=[_pil(query.image)], negative=list(query.negative), **common)
        return search(_pil(query.image), **common)
    if query.negative:
        return search(positive=[query.image_id], negative=list(query.negative), **common)
    return search(image_id=query.image_id, **common)


def stores_regions(variant: str | None) -> bool:
    """Whether ``variant`` stores regional descriptors (a ``-regions`` variant, docs/detail.md)."""
    from vislink.encoder.variants import parse_variant

    if not variant:
        return False
    try:
        return bool(parse_variant(variant).regions)
    except VislinkError:
        return False


def full_size(image) -> tuple[int, int]:
    """(width, height) of a decoded image in its file, also when ``decode_image`` decoded it reduced."""
    from vislink.encoder.images import full_size as size

    return size(image)


def search_page(query: Query, *, collection: str, variant: str | None, flt: dict | None, mirrored: bool,
                page: int, page_size: int, cache: dict, verify: int | None = None) -> list:
    """Results ranked ``page*page_size+1`` to ``(page+1)*page_size``, from blocks of ``BLOCK`` kept in
    ``cache`` (the session's), so paging never encodes the query again."""
    start = page * page_size
    out: list = []
    while len(out) < page_size:
        block = (start + len(out)) // BLOCK
        key = (query.key(), collection, variant, repr(sorted((flt or {}).items(), key=lambda kv: kv[0])), mirrored,
               verify, block)
        if key not in cache:
            cache[key] = run_search(query, collection=collection, variant=variant, flt=flt, mirrored=mirrored,
                                    offset=block * BLOCK, limit=BLOCK, verify=verify)
        rows = cache[key]
        skip = start + len(out) - block * BLOCK
        taken = rows[skip:skip + page_size - len(out)]
        out.extend(taken)
        if len(rows) < BLOCK or not taken:
            break  # the end of the results
    return out


SCALE_SAMPLE = 400  # images whose pairs make a variant's score scale (79,800 pairs)


@st.cache_resource(show_spinner=False, max_entries=32)
def _score_scale(qdrant_collection: str, variant: str, n_points: int, key: tuple):
    import numpy as np

    from vislink.ui.data import ScoreScale

    vectors, offset = [], None
    while len(vectors) < SCALE_SAMPLE:
        page, offset = index().scroll(qdrant_collection, limit=min(256, SCALE_SAMPLE - len(vectors)), offset=offset,
                                      with_vectors=True)
        vectors += [v for _, _, v in page if v is not None]
        if offset is None or not page:
            break
    return ScoreScale.from_vectors(variant, np.stack(vectors) if vectors else np.zeros((0, 1), np.float32))


def score_scale(collection: str, variant: str | None):
    """The similarities of pairs of the collection's own images for this variant (``data.ScoreScale``): what
    a high score is here. Made once per variant and size of the collection, from the first ``SCALE_SAMPLE``
    points of the index."""
    from vislink.ui.data import index_collection

    name, qdrant_collection = index_collection(collection, variant)
    return _score_scale(qdrant_collection, name, index().count(qdrant_collection), _settings_key())


_prefetcher = None


def prefetch_thumbnails(items: Sequence[tuple[str | None, str | None]], size: int) -> None:
    """Make the thumbnails of the next pages in one background thread while the user looks at this one."""
    global _prefetcher
    from concurrent.futures import ThreadPoolExecutor

    from vislink.ui import thumbs

    if not items:
        return
    if _prefetcher is None:
        _prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vislink-thumbs")
    _prefetcher.submit(thumbs.thumbnails, list(items), size, get_settings(), 1)


def drain_background() -> None:
    """Wait for background thumbnail work to finish (tests, before their data folder goes away)."""
    global _prefetcher
    if _prefetcher is not None:
        _prefetcher.shutdown(wait=True)
        _prefetcher = None


# -- annotators --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignedIn:
    id: int
    name: str
    display_name: str | None = None
    via: str = "password"

    @property
    def label(self) -> str:
        return self.display_name or self.name


def sign_in(name: str, password: str) -> SignedIn:
    """A password sign-in, throttled per name in the store (``graph.annotators.sign_in``): repeated failures lock
    the name for a while, whichever browser or process tries."""
    from vislink.graph.annotators import sign_in as check_sign_in
    from vislink.store import session_scope

    with session_scope() as session:
        annotator = check_sign_in(session, (name or "").strip(), password)
        return SignedIn(annotator.id, annotator.name, annotator.display_name)


def sign_in_oidc(email: str | None, name: str | None, email_verified: bool | None = None, *,
                 self_register: bool | None = None) -> SignedIn:
    """The annotator of an OIDC identity, matched by e-mail. An identity with no annotator of that e-mail is
    refused unless ``self_register`` (default: the ``VISLINK_OIDC_SELF_REGISTER`` setting), which creates one
    without a password. An address the identity provider says is not verified is refused."""
    from sqlalchemy import select

    from vislink.config import get_settings
    from vislink.store import Annotator, session_scope

    if not email:
        raise VislinkError("the identity provider gave no e-mail address; cannot match an annotator")
    if email_verified is False:
        raise VislinkError(f"the identity provider has not verified {email}; cannot match an annotator")
    if self_register is None:
        self_register = get_settings().oidc_self_register
    with session_scope() as session:
        annotator = session.scalar(select(Annotator).where(Annotator.email == email))
        if annotator is None and not self_register:
            raise VislinkError(f"no annotator has the e-mail {email}: an administrator adds one "
                               f"(vislink annotator add NAME --email {email}), or sets "
                               "VISLINK_OIDC_SELF_REGISTER=true to let identities create their own")
        if annotator is None:
            import re

            from vislink.graph.annotators import create_annotator, find_annotator

            # Account names allow letters, digits and . _ @ -: other characters of the address become '-'.
            account = re.sub(r"[^A-Za-z0-9._@-]", "-", email).lstrip("._@-")[:100] or "oidc-user"
            if find_annotator(session, account) is not None:
                raise VislinkError(f"an annotator named {account!r} exists with another e-mail; "
                                   "set its e-mail (or ask an administrator) to sign in with this identity")
            annotator = create_annotator(session, account, None, display_name=name, email=email)
        if not annotator.is_active:
            raise VislinkError(f"annotator {annotator.name} is deactivated")
        return SignedIn(annotator.id, annotator.name, annotator.display_name, via="oidc")


# -- graph edits -------------------------------------------------------------------------------
# Each edit is one transaction; ConflictError / VislinkError carry the message the page shows.

def _edit(fn_name: str, *args, **kwargs):
    from vislink.graph import edits
    from vislink.store import session_scope

    with session_scope() as session:
        result = getattr(edits, fn_name)(session, *args, **kwargs)
        return getattr(result, "id", None)


def create_group(image_ids: Sequence[int], annotator_id: int, title: str | None = None,
                 note: str | None = None) -> int:
    """A new group; without a title, its members' common artist and title (``vislink.graph.titles``)."""
    return _edit("create_group", list(image_ids), annotator_id=annotator_id, title=title or None, note=note or None)


def add_members(group_id: int, image_ids: Sequence[int], annotator_id: int, expected_version: int) -> None:
    """Add several images in one transaction: all or none."""
    from vislink.graph import edits
    from vislink.store import session_scope

    with session_scope() as session:
        version = expected_version
        for image_id in image_ids:
            group = edits.add_member(session, group_id, int(image_id), annotator_id=annotator_id,
                                     expected_version=version)
            version = group.version


def remove_member(group_id: int, image_id: int, annotator_id: int, expected_version: int) -> None:
    _edit("remove_member", group_id, int(image_id), annotator_id=annotator_id, expected_version=expected_version)


def set_group_note(group_id: int, title: str | None, note: str | None, annotator_id: int,
                   expected_version: int) -> None:
    """Title and notes of a group (a blank title: the default one from its members)."""
    _edit("update_group", group_id, title=title or None, note=note or None, annotator_id=annotator_id,
          expected_version=expected_version)


def merge_groups(target_id: int, source_ids: Sequence[int], annotator_id: int,
                 expected_versions: dict[int, int]) -> None:
    """Move the sources' images into the target and delete the sources (one undoable edit)."""
    _edit("merge_groups", int(target_id), [int(s) for s in source_ids], annotator_id=annotator_id,
          expected_versions={int(k): int(v) for k, v in expected_versions.items()})


def delete_group(group_id: int, annotator_id: int, expected_version: int) -> None:
    _edit("delete_group", group_id, annotator_id=annotator_id, expected_version=expected_version)


def set_link(a: int, b: int, kind: str, annotator_id: int, note: str | None = None) -> None:
    _edit("set_link", int(a), int(b), kind, note or None, annotator_id=annotator_id)


def remove_link(a: int, b: int, annotator_id: int) -> None:
    _edit("remove_link", int(a), int(b), annotator_id=annotator_id)


def undo_last(annotator_id: int) -> str:
    from vislink.graph.audit import undo_last as _undo
    from vislink.store import session_scope

    with session_scope() as session:
        result = _undo(session, annotator_id)
        return f"undid {result.action} ({result.n_events} change(s))"


def graph_view(image_id: int, max_images: int = 60):
    """An image's part of the link graph, laid out (``vislink.graph.view.neighbourhood_view``), or None."""
    from vislink.graph.view import neighbourhood_view
    from vislink.store import session_scope

    with session_scope() as session:
        return neighbourhood_view(session, int(image_id), max_images=max_images)


# -- jobs (docs/jobs.md) --------------------------------------------------------------------------------------
def job_holder():
    """This server process's job holder: it holds the index (opened by ``index()``) and runs the jobs queued by
    the Ingest page and by `vislink ingest` / `evaluate` / `search` from other shells, in background threads
    (started once per process and data folder)."""
    from vislink.jobs import start_holder

    return start_holder(get_settings(), role="ui")


UPLOAD_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".webp", ".bmp")


def save_uploads(files: Sequence[tuple[str, bytes]]):
    """Write uploaded files (images, or zips of images) into a new folder under the data folder's uploads/,
    for an ingest job to read; its path. Zip members keep only their base name (nothing is written outside)."""
    import uuid
    import zipfile
    from pathlib import Path

    folder = get_settings().resolved_home / "uploads" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    limit = get_settings().max_upload_mb * 1024 * 1024
    for name, data in files:
        base = Path(name).name
        if base.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for i, member in enumerate(zf.infolist()):
                    inner = Path(member.filename).name
                    if member.is_dir() or not inner.lower().endswith(UPLOAD_SUFFIXES) or member.file_size > limit:
                        continue
                    (folder / f"{Path(base).stem}-{i:05d}-{inner}").write_bytes(zf.read(member))
        elif base:
            (folder / base).write_bytes(data)
    return folder


def queue_ingest(collection: str, source: dict, *, requested_by: str | None = None) -> int:
    """Queue an ingest job of ``source`` (docs/jobs.md: folder, iiif, wga, ...) into ``collection``; its id."""
    from vislink.jobs import submit

    if not collection.strip():
        raise VislinkError("name the collection to add the images to")
    return submit("ingest", {"collection": collection.strip(), "source": source}, requested_by=requested_by)


def recent_jobs(limit: int = 10) -> list:
    """The newest long jobs (not the short search requests), as ``vislink.store.jobs.JobInfo``."""
    from vislink.jobs import list_kinds, quick_kinds
    from vislink.store import session_scope
    from vislink.store.jobs import list_jobs

    with session_scope() as s:
        return list_jobs(s, kinds=[k for k in list_kinds() if k not in quick_kinds()], limit=limit)


def cancel_job(job_id: int):
    from vislink.store import session_scope
    from vislink.store.jobs import cancel

    with session_scope() as s:
        return cancel(s, job_id)

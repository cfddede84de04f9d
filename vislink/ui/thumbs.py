"""Thumbnails: small JPEG files made once per (image, size) under ``settings.thumbs_dir``.

The UI never sends full images to the browser: a 40,000-image collection holds multi-megapixel
scans, and a result page of 20 of them would take seconds to decode and megabytes to transfer.
A thumbnail is named ``<sha256>_<size>.jpg`` (content-addressed, so a re-ingested or duplicated
file shares it) and written atomically, so concurrent UI sessions never read a half-written file.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image as PILImage
from PIL import ImageOps

from vislink.config import Settings, get_settings
from vislink.errors import BadImage, NotFound

log = logging.getLogger(__name__)

# Only these sizes exist, so the cache cannot grow with every width a caller might ask for.
SIZES = (128, 256, 512)
DEFAULT_SIZE = 256
_QUALITY = 82


def _check_size(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"thumbnail size {size} is not one of {SIZES}")
    return size


def resolve_image_path(file_path: str | os.PathLike | None, settings: Settings | None = None) -> Path:
    """The stored file of an image. ``Image.file_path`` is absolute or relative to the data folder
    (or its ``images/`` folder); raise ``NotFound`` when it is missing."""
    if not file_path:
        raise NotFound("this image has no stored file (not fetched yet, or its ingestion failed)")
    settings = settings or get_settings()
    path = Path(file_path)
    candidates = [path] if path.is_absolute() else [settings.resolved_home / path, settings.images_dir / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise NotFound(f"image file {file_path} not found in the data folder {settings.resolved_home}")


def thumb_path(sha256: str, size: int = DEFAULT_SIZE, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    if not sha256 or not all(c in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return settings.thumbs_dir / f"{sha256.lower()}_{_check_size(size)}.jpg"


def make_thumbnail(source: Path, dest: Path, size: int) -> Path:
    """Decode ``source`` at reduced resolution and write a ``size``-bounded JPEG to ``dest`` atomically."""
    try:
        with PILImage.open(source) as img:
            # JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale directly (most of the speed-up): ask for the
            # thumbnail's own box, the smallest scale that still covers it.
            w, h = img.size
            scale = min(1.0, size / max(w, h, 1))
            img.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
            img = ImageOps.exif_transpose(img)
            if img.mode != "RGB":
                # Transparency composited on white, like the encoder does.
                rgba = img.convert("RGBA")
                background = PILImage.new("RGB", rgba.size, (255, 255, 255))
                background.paste(rgba, mask=rgba.getchannel("A"))
                img = background
            img.thumbnail((size, size), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    img.save(fh, "JPEG", quality=_QUALITY, optimize=False)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        raise BadImage(source, "unreadable", str(exc)) from exc
    return dest


def thumbnail(file_path: str | os.PathLike | None, sha256: str, size: int = DEFAULT_SIZE,
              settings: Settings | None = None) -> Path:
    """The thumbnail file of an image, made on first use."""
    settings = settings or get_settings()
    dest = thumb_path(sha256, size, settings)
    if dest.is_file():
        return dest
    return make_thumbnail(resolve_image_path(file_path, settings), dest, size)


def thumbnails(items: Sequence[tuple[str | os.PathLike | None, str | None]], size: int = DEFAULT_SIZE,
               settings: Settings | None = None, workers: int = 4) -> list[Path | None]:
    """Thumbnails of a page of results, ``items`` being ``(file_path, sha256)`` pairs; missing ones are
    made in parallel (Pillow releases the GIL while decoding). An image that cannot be read gives None."""
    settings = settings or get_settings()

    def one(item: tuple) -> Path | None:
        file_path, sha = item
        if not sha:
            return None
        try:
            return thumbnail(file_path, sha, size, settings)
        except (NotFound, BadImage, ValueError) as exc:
            log.warning("no thumbnail for %s: %s", file_path, exc)
            return None

    missing = [it for it in items if it[1] and not thumb_path(it[1], size, settings).is_file()]
    if len(missing) <= 1:
        return [one(it) for it in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(missing))) as pool:
        return list(pool.map(one, items))


def prune(settings: Settings | None = None, keep: Iterable[str] = ()) -> int:
    """Delete thumbnails whose sha256 is not in ``keep`` (after images are removed); returns the count."""
    settings = settings or get_settings()
    keep_set = {k.lower() for k in keep}
    removed = 0
    for path in settings.thumbs_dir.glob("*.jpg"):
        if path.name.split("_", 1)[0] not in keep_set:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def image_files(collection: str | None = None) -> list[tuple[str | None, str]]:
    """``(file_path, sha256)`` of every encoded image (of ``collection``, default all), each pair once."""
    from sqlalchemy import select

    from vislink.store import Image, ImageStatus, get_collection, session_scope

    with session_scope() as session:
        q = select(Image.file_path, Image.sha256).where(Image.status == ImageStatus.done, Image.sha256.is_not(None))
        if collection:
            q = q.where(Image.collection_id == get_collection(session, collection).id)
        return [tuple(row) for row in dict.fromkeys(session.execute(q).all())]


def pregenerate(collection: str | None = None, sizes: Sequence[int] = (DEFAULT_SIZE,), *, workers: int = 2,
                progress: bool = True, settings: Settings | None = None) -> tuple[int, int]:
    """Make the thumbnails of every encoded image (of ``collection``) in each of ``sizes`` ahead of time;
    returns ``(made or already there, unreadable)`` counted per (image, size)."""
    from tqdm import tqdm

    from vislink.errors import ConfigError

    bad = [s for s in sizes if s not in SIZES]
    if bad:
        raise ConfigError(f"--size {bad[0]}: thumbnails come in sizes {', '.join(map(str, SIZES))}")
    settings = settings or get_settings()
    settings.ensure_dirs()
    rows = image_files(collection)
    made = failed = 0
    with tqdm(total=len(rows) * len(sizes), desc="thumbnails", disable=not progress, unit="img") as bar:
        for size in sizes:
            for start in range(0, len(rows), 64):
                batch = rows[start:start + 64]
                out = thumbnails(batch, size, settings, workers=workers)
                made += sum(p is not None for p in out)
                failed += sum(p is None for p in out)
                bar.update(len(batch))
    return made, failed

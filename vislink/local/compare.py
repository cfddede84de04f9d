"""Aligned compare of two images named the way the CLI names them: an image file, or a stored image by id (or,
with a collection, by source_ref, WGA path or ``sha256:<hex>``). What ``vislink compare A B --out PNG`` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vislink.errors import ConfigError, NotFound
from vislink.local.features import LocalFeatures, extract
from vislink.local.matching import Verification, verify


@dataclass(frozen=True)
class NamedImage:
    """An image to compare: its pixels, its content hash when stored (features cached by it), a label."""

    image: Image.Image
    label: str
    sha256: str | None = None
    image_id: int | None = None


def load_image(ref: str | Path, *, collection: str | None = None) -> NamedImage:
    """``ref``: an existing image file; else a stored image: its id, or with ``collection`` any ref the
    collection knows (source_ref, WGA path, ``sha256:<hex>``, id). Raises ``NotFound`` naming what was tried."""
    from vislink.encoder.images import open_rgb

    text = str(ref)
    path = Path(text).expanduser()
    if path.is_file():
        return NamedImage(open_rgb(path), path.name)
    image_id = None
    from vislink.store import Image as StoredImage
    from vislink.store import session_scope

    with session_scope() as session:
        if collection is not None:
            from vislink.graph import ImageResolver, get_collection

            image_id = ImageResolver(session, get_collection(session, collection).id).get(text)
        elif text.isdigit():
            image_id = int(text)
        row = session.get(StoredImage, image_id) if image_id is not None else None
        if row is None:
            where = f"in collection {collection!r}" if collection else "(give --collection to name images by " \
                                                                      "source_ref or WGA path)"
            raise NotFound(f"{text}: no such image file, and no stored image of that name {where}")
        if not row.file_path or not Path(row.file_path).is_file():
            raise NotFound(f"image {row.id} ({row.source_ref}) has no stored file to compare")
        sha, file_path, label = row.sha256, row.file_path, f"#{row.id} {row.source_ref}"
    return NamedImage(open_rgb(Path(file_path)), label, sha, image_id)  # BadImage names the file and why


def features_of(named: NamedImage, *, settings=None) -> LocalFeatures:
    """A stored image's features from the data folder's cache (extracted and stored once); a file's now."""
    if named.sha256:
        from vislink.local.cache import feature_cache

        return feature_cache(settings).features_for(named.sha256, lambda: named.image)
    return extract(named.image)


@dataclass(frozen=True)
class Comparison:
    a: NamedImage
    b: NamedImage
    verification: Verification


def compare(a: str | Path, b: str | Path, *, collection: str | None = None, model: str = "similarity",
            mirror: bool = True) -> Comparison:
    """Load both images, verify B against A (``model``: similarity or homography; ``mirror``: try B mirrored)."""
    first, second = load_image(a, collection=collection), load_image(b, collection=collection)
    return Comparison(first, second, verify(features_of(first), features_of(second), model=model, mirror=mirror))


def write_comparison(comparison: Comparison, out: Path | str, *, height: int = 420) -> Path:
    """The comparison sheet (``align.comparison_sheet``) as a PNG at ``out`` (folders created)."""
    from vislink.local.align import comparison_sheet

    out = Path(out)
    sheet = comparison_sheet(comparison.a.image, comparison.b.image, comparison.verification, height=height,
                             labels=(comparison.a.label, comparison.b.label))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, "PNG")
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the comparison ({exc.strerror or exc})") from exc
    return out

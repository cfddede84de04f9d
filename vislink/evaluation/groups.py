"""The groups benchmark: any folder of images with a manifest CSV of ``file,group`` (more columns are
ignored; an empty group marks a distractor). Every grouped image is a query, the other images of its group
its targets, every image the gallery: how a lab measures vislink on its own annotated set."""

from __future__ import annotations

import csv
from pathlib import Path

from vislink.errors import ConfigError, NotFound
from vislink.evaluation.gallery import Gallery, GalleryItem


def parse_box(text: str, where: str) -> tuple[int, int, int, int] | None:
    """A manifest box ``x,y,w,h`` (whole pixels of the file, w and h > 0); empty: None."""
    if not text:
        return None
    try:
        box = tuple(int(round(float(v))) for v in text.replace(";", ",").split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] <= 0 or box[3] <= 0:
        raise ConfigError(f"{where}: {text!r} is not a box x,y,w,h (whole pixels, w and h > 0)")
    return box


def read_manifest(manifest: Path, *, root: Path | None = None, skip_missing: bool = False) -> Gallery:
    """The gallery a manifest describes. Files are relative to ``root`` (default: the manifest's folder)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise NotFound(f"manifest not found: {manifest}")
    root = Path(root) if root is not None else manifest.parent
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            if "file" not in fields or "group" not in fields:
                raise ConfigError(f"{manifest}: the header must name the columns 'file' and 'group' "
                                  f"(found: {', '.join(reader.fieldnames or []) or 'no header'})")
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{manifest}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ConfigError(f"{manifest}: not a readable CSV file ({exc})") from exc
    items, missing, seen = [], [], set()
    for line, row in enumerate(rows, start=2):
        name = row.get("file", "")
        if not name:
            raise ConfigError(f"{manifest} line {line}: empty 'file'")
        if name in seen:
            raise ConfigError(f"{manifest} line {line}: {name} is listed twice")
        seen.add(name)
        path = (root / name).resolve()
        if not path.is_file():
            missing.append(name)
            continue
        items.append(GalleryItem(ref=name, path=path, group=row.get("group") or None,
                                 query_box=parse_box(row.get("query_box", ""), f"{manifest} line {line}: query_box"),
                                 target_box=parse_box(row.get("target_box", ""),
                                                      f"{manifest} line {line}: target_box")))
    if missing and not skip_missing:
        raise NotFound(f"{manifest}: {len(missing)} listed files are not under {root} (e.g. {', '.join(missing[:3])}); "
                       "fix the paths or pass --skip-missing")
    if not items:
        raise ConfigError(f"{manifest}: no image files listed")
    gallery = Gallery(name=f"groups:{manifest.parent.name}/{manifest.name}", items=items)
    groups = gallery.groups()
    n_grouped = sum(len(m) for m in groups.values())
    gallery.notes.append(f"{len(items)} images: {len(groups)} groups ({n_grouped} images), "
                         f"{len(items) - n_grouped} distractors" + (f"; {len(missing)} missing files skipped"
                                                                     if missing else ""))
    return gallery

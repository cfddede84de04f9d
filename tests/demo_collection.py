"""A small demonstration collection: synthetic "paintings" with known visual links (a re-encoded copy and a
mirrored copy of each composition), their metadata (artist, title, date, technique, location, form, school,
type, a page at a made-up source), and an annotator account.

A test fixture, not part of the package: used by the UI tests (with random encoder weights), by the README
screenshots, and to try the UI without data: ``python tests/demo_collection.py [FOLDER]`` fills the data
folder of the current settings (``--help`` for the options).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps

ARTISTS = ("GIOTTO di Bondone", "BRUEGEL, Pieter the Elder", "VERMEER, Johannes", "TITIAN", "RUBENS, Peter Paul",
           "DÜRER, Albrecht")
SCHOOLS = ("Italian", "Flemish", "Dutch", "Italian", "Flemish", "German")
TYPES = ("religious", "genre", "genre", "mythological", "religious", "portrait")
LOCATIONS = ("Cappella Scrovegni, Padua", "Kunsthistorisches Museum, Vienna", "Rijksmuseum, Amsterdam",
             "Museo del Prado, Madrid", "Alte Pinakothek, Munich", "Albertina, Vienna")
SOURCE = "https://example.org/demo/"  # a made-up source site (example.org is reserved for examples)
PALETTES = (((186, 140, 70), (40, 60, 120)), ((90, 120, 60), (200, 180, 140)), ((30, 40, 70), (220, 200, 120)),
            ((150, 60, 40), (240, 220, 180)), ((70, 30, 30), (200, 120, 60)), ((120, 110, 90), (20, 20, 20)))


@dataclass
class Demo:
    collection: str
    folder: Path
    files: list[str] = field(default_factory=list)  # relative paths, in ingest order
    copies: dict[str, str] = field(default_factory=dict)  # copy file -> original file (the known links)
    annotator: tuple[str, str] | None = None


def _composition(seed: int, size=(400, 300)) -> PILImage.Image:
    """A picture with a background gradient and a few figures: distinct enough per seed to be told apart."""
    rng = np.random.default_rng(seed)
    w, h = size
    top, bottom = PALETTES[seed % len(PALETTES)]
    t = np.linspace(0, 1, h)[:, None, None]
    arr = (np.array(top) * (1 - t) + np.array(bottom) * t) * np.ones((1, w, 1))
    arr += rng.normal(0, 8, arr.shape)
    img = PILImage.fromarray(np.clip(arr, 0, 255).astype("uint8"))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, w - w // 5)), int(rng.integers(0, h - h // 4))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2.5)), y0 + int(rng.integers(h // 8, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return img


def make_images(folder: Path, n_compositions: int = 4, seed: int = 0) -> Demo:
    """``n_compositions`` works, each with a re-encoded copy (another "print" of it) and a mirrored copy,
    as JPEG files plus ``metadata.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    demo = Demo(collection="demo", folder=folder)
    rows = []
    for k in range(n_compositions):
        base = _composition(seed * 100 + k)
        a = k % len(ARTISTS)
        versions = {
            f"work{k:02d}.jpg": (base, ARTISTS[a], 1300 + 50 * a + k, "painting"),
            f"work{k:02d}_copy.jpg": (base.resize((380, 285)).point(lambda v: min(255, int(v * 1.04))),
                                      ARTISTS[(a + 1) % len(ARTISTS)], 1310 + 50 * a + k, "graphics"),
            f"work{k:02d}_mirror.jpg": (ImageOps.mirror(base), ARTISTS[(a + 2) % len(ARTISTS)], 1320 + 50 * a + k,
                                        "painting"),
        }
        for name, (img, artist, year, form) in versions.items():
            img.save(folder / name, quality=88 if "copy" not in name else 70)
            demo.files.append(name)
            artist_index = ARTISTS.index(artist)
            rows.append({"file": name, "artist": artist, "title": f"Composition {k + 1}" + (
                " (copy)" if "copy" in name else " (mirrored)" if "mirror" in name else ""),
                "date": str(year), "technique": "Engraving" if form == "graphics" else "Oil on panel",
                "location": LOCATIONS[artist_index], "school": SCHOOLS[artist_index], "form": form,
                "type": TYPES[artist_index], "page_url": f"{SOURCE}{name[:-4]}.html"})
        demo.copies[f"work{k:02d}_copy.jpg"] = f"work{k:02d}.jpg"
        demo.copies[f"work{k:02d}_mirror.jpg"] = f"work{k:02d}.jpg"
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return demo


def populate(folder: Path, *, collection: str = "demo", variants: tuple[str, ...] = ("vgg16-pool5-max",),
             n_compositions: int = 4, annotator: tuple[str, str] | None = ("demo", "demo-password"),
             progress: bool = False) -> Demo:
    """Make the images in ``folder``, ingest them into ``collection`` of the current settings' data folder
    (migrating its database first), and create the annotator account."""
    from vislink.config import get_settings
    from vislink.ingest import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import db, session_scope

    settings = get_settings()
    settings.ensure_dirs()
    db.upgrade(settings.database_url)
    demo = make_images(folder, n_compositions)
    demo.collection = collection
    ingest(collection, folder_items(folder, folder / "metadata.csv"), variants=list(variants), progress=progress)
    if annotator is not None:
        from vislink.graph.annotators import create_annotator, find_annotator

        with session_scope() as session:
            if find_annotator(session, annotator[0]) is None:
                create_annotator(session, annotator[0], annotator[1], display_name="Demo annotator")
        demo.annotator = annotator
    return demo


def image_ids(demo: Demo) -> dict[str, int]:
    """file name -> image id of the ingested demo collection."""
    from sqlalchemy import select

    from vislink.store import Collection, Image, session_scope

    with session_scope() as session:
        rows = session.execute(select(Image.source_ref, Image.id).join(Collection, Collection.id == Image.collection_id)
                               .where(Collection.name == demo.collection)).all()
    return {ref: image_id for ref, image_id in rows}


def main(argv: list[str] | None = None) -> None:
    import argparse

    from vislink.config import get_settings

    parser = argparse.ArgumentParser(
        description="Make the demo collection's images and ingest them into the data folder of the current "
                    "settings (VISLINK_HOME; VISLINK_WEIGHTS=random needs no weights), with an annotator account.")
    parser.add_argument("folder", nargs="?", type=Path,
                        help="where to write the images (default: demo-images in the data folder)")
    parser.add_argument("--collection", default="demo", help="collection name (default: demo)")
    parser.add_argument("--works", type=int, default=4,
                        help="compositions, each with a copy and a mirrored copy (default: 4)")
    args = parser.parse_args(argv)
    target = args.folder or get_settings().resolved_home / "demo-images"
    made = populate(target, collection=args.collection, n_compositions=args.works, progress=True)
    print(f"collection {made.collection!r}: {len(made.files)} images from {target}; "
          f"annotator {made.annotator[0]!r} / password {made.annotator[1]!r}")


if __name__ == "__main__":  # python tests/demo_collection.py [FOLDER] [--collection C] [--works N]
    main()

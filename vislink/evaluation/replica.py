"""The replica-wga benchmark: the paper's protocol on the Replica project's expert links between Web Gallery of
Art images, with the WGA catalog's other images as distractors.

Inputs: ``links.csv`` (uid1, uid2, group) and ``images.csv`` (uid, group, wga_image_url, ...) as in
``shared/data/replica_wga``; a group is a connected component of the links, and every image of a group is a
target of every other (the paper's groups). Images come from a local folder laid out like WGA's ``/art/`` tree
(``--images-root``) or are downloaded from the Web Gallery of Art (any base URL serving the same tree).
Only groups with at least two images present are evaluated; every other image found (Replica images whose
partners are missing, catalog distractors) is part of the search space.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vislink.errors import ConfigError, FetchError, NotFound
from vislink.evaluation.gallery import Gallery, GalleryItem
from vislink.formats.replica import read_replica_files
from vislink.formats.wga import wga_image_url

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif", ".bmp")


@dataclass(frozen=True)
class ReplicaImage:
    uid: str
    group: str
    wga_path: str


def read_replica(links_csv: Path, images_csv: Path) -> list[ReplicaImage]:
    """The linked images with their group (connected component of the links) and WGA path."""
    files = read_replica_files(links_csv, images_csv)
    links = files.links
    paths = files.wga_paths()
    # Groups are recomputed as connected components (union-find), so a links file without a group
    # column, or with stale group numbers, still gives the paper's groups.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links:  # read_replica_files checked that both uids are in the images file
        parent[find(link.uid1)] = find(link.uid2)
    members: dict[str, list[str]] = defaultdict(list)
    for uid in parent:
        members[find(uid)].append(uid)
    group_column = {link.uid1: link.group for link in links}
    images = []
    for uids in members.values():
        # Name a group after the links file's group column when it has one, else after its first uid.
        group_name = next((group_column[u] for u in sorted(uids) if group_column.get(u)), None) or min(uids)
        images += [ReplicaImage(uid, str(group_name), paths[uid]) for uid in sorted(uids)]
    return sorted(images, key=lambda im: (im.group, im.uid))


class ImageSource:
    """Where WGA images come from: a local folder in WGA's layout, or downloads from ``base_url``/art/<path>."""

    def __init__(self, images_root: Path | None = None, base_url: str | None = None, fetcher=None,
                 workers: int = 4):
        if (images_root is None) == (base_url is None):
            raise ConfigError("give either a local images root or a base URL to download from")
        self.root = Path(images_root).expanduser().resolve() if images_root is not None else None
        if self.root is not None and not self.root.is_dir():
            raise NotFound(f"images root is not a folder: {self.root}")
        self.base_url = base_url.rstrip("/") if base_url else None
        self.fetcher = fetcher
        self.workers = workers
        self.failures: dict[str, str] = {}

    @property
    def description(self) -> str:
        return f"folder {self.root}" if self.root else f"downloads from {self.base_url}/art/"

    def url(self, wga_path: str) -> str:
        return wga_image_url(wga_path, self.base_url)

    def locate(self, wga_paths: list[str], progress: bool = False) -> dict[str, Path]:
        """{wga_path: local file} for those available (downloaded into the fetch cache when remote)."""
        if self.root is not None:
            return {p: self.root / p for p in wga_paths if (self.root / p).is_file()}
        if self.fetcher is None:
            from vislink.config import get_settings
            from vislink.ingest.fetch import Fetcher

            self.fetcher = Fetcher(get_settings().cache_dir / "http", retries=2)

        def get(path: str) -> tuple[str, Path | None]:
            try:
                return path, self.fetcher.fetch(self.url(path), expect="image")
            except FetchError as exc:
                self.failures[path] = str(exc)
                return path, None

        found: dict[str, Path] = {}
        bar = _bar(len(wga_paths), progress, "downloads")
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for path, local in pool.map(get, wga_paths):
                bar.update(1)
                if local is not None:
                    found[path] = local
        bar.close()
        return found


def _bar(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled)


def parse_distractors(text: str | int | None) -> int | None:
    """``all`` -> None (every one), ``N`` -> N (0: none)."""
    if text is None or str(text).strip().lower() == "all":
        return None
    try:
        n = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"--distractors takes a number or 'all', got {text!r}") from None
    if n < 0:
        raise ConfigError(f"--distractors must be >= 0, got {n}")
    return n


def build_replica_gallery(links_csv: Path, images_csv: Path, source: ImageSource, *, catalog: Path | None = None,
                          distractors: int | None = None, distractor_source: str = "catalog", seed: int = 0,
                          progress: bool = False, echo: Callable[[str], None] | None = None) -> Gallery:
    """The gallery of the replica-wga benchmark (see the module docstring).

    ``distractors``: how many catalog images to add (None: all; a seeded random sample otherwise).
    ``distractor_source``: ``catalog`` (rows of the WGA catalog, found in the source) or ``folder`` (every image
    file under the local images root, catalog or not)."""
    replica = read_replica(links_csv, images_csv)
    n_groups = len({im.group for im in replica})
    wanted = sorted({im.wga_path for im in replica})
    found = source.locate(wanted, progress=progress)
    by_group: dict[str, list[ReplicaImage]] = defaultdict(list)
    for im in replica:
        if im.wga_path in found:
            by_group[im.group].append(im)
    evaluated = {g for g, ims in by_group.items() if len({im.wga_path for im in ims}) >= 2}
    items: list[GalleryItem] = []
    used: set[str] = set()
    for im in replica:
        if im.wga_path in found and im.wga_path not in used:
            used.add(im.wga_path)  # one WGA image linked under two uids is one gallery entry
            items.append(GalleryItem(im.wga_path, found[im.wga_path], im.group if im.group in evaluated else None))
    n_grouped = sum(1 for it in items if it.group is not None)
    notes = [f"Replica: {len(replica)} linked images in {n_groups} groups; found {len(found)} ({source.description}); "
             f"{len(evaluated)} groups have 2 or more images present ({n_grouped} images: the queries)"]
    extra = _distractors(source, used, catalog=catalog, count=distractors, kind=distractor_source, seed=seed,
                         progress=progress, notes=notes)
    items += extra
    gallery = Gallery(name="replica-wga", items=items, notes=notes)
    gallery.notes.append(f"search space: {len(items)} images ({len(items) - n_grouped} not in an evaluated group)")
    return gallery


def _distractors(source: ImageSource, used: set[str], *, catalog: Path | None, count: int | None, kind: str,
                 seed: int, progress: bool, notes: list[str]) -> list[GalleryItem]:
    if count == 0:
        notes.append("no distractors")
        return []
    if kind == "folder":
        if source.root is None:
            raise ConfigError("--distractor-source folder needs --images-root")
        paths = sorted(p.relative_to(source.root).as_posix() for p in source.root.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        candidates = [p for p in paths if p not in used]
        chosen = _sample(candidates, count, seed)
        notes.append(f"distractors: {len(chosen)} image files of the folder (of {len(candidates)})")
        return [GalleryItem(p, source.root / p, None) for p in chosen]
    if kind != "catalog":
        raise ConfigError(f"unknown distractor source {kind!r}; use catalog or folder")
    if catalog is None:
        raise ConfigError("distractors come from the WGA catalog: pass --catalog (catalog.xls, its zip, or a CSV), "
                          "or --distractors 0")
    from vislink.ingest.sources.wga import wga_catalog_items

    stream = wga_catalog_items(catalog)  # rows with their URLs; presence is checked below
    paths = [item.metadata["extra"]["wga_path"] for item in stream]
    candidates = [p for p in paths if p not in used]
    if source.root is not None:
        present = source.locate(candidates)
        chosen = _sample([p for p in candidates if p in present], count, seed)
        located = {p: present[p] for p in chosen}
        lost = f"{len(candidates) - len(present)} not in the folder"
    else:
        chosen = _sample(candidates, count, seed)
        located = source.locate(chosen, progress=progress)
        lost = f"{len(chosen) - len(located)} failed to download"
    notes.append(f"distractors: {len(located)} catalog images (of {len(candidates)} catalog rows not linked; {lost})")
    return [GalleryItem(p, located[p], None) for p in chosen if p in located]


def _sample(candidates: list[str], count: int | None, seed: int) -> list[str]:
    if count is None or count >= len(candidates):
        return list(candidates)
    picked = set(random.Random(seed).sample(candidates, count))
    return [c for c in candidates if c in picked]  # catalog order, for stable reports

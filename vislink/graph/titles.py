"""Group titles: what a group is called wherever it is shown ("Leonardo da Vinci, Mona Lisa").

A group made or imported without a title gets one from its members' metadata: the artist and the title most
of them share (ties go to the earliest work: the original usually precedes its copies), with WGA's capitals
softened ("LEONARDO da Vinci" -> "Leonardo da Vinci") and the qualifiers of copies dropped ("Mona Lisa
(copy)" -> "Mona Lisa"). A group whose members carry no artist and no title stays untitled; it is then shown
as "group #12".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.store.models import Image

MAX_TITLE = 300  # the column's width
_ROMAN = re.compile(r"^[IVXLCDM]+$")
_QUALIFIER = re.compile(r"\s*[(\[][^)\]]*[)\]]\s*")  # "(copy)", "[detail]"


@dataclass(frozen=True)
class Work:
    """What a title is made of, for one member."""

    artist: str | None
    title: str | None
    year: int | None = None
    image_id: int = 0


def display_artist(name: str | None) -> str | None:
    """An artist's name as a reader writes it: WGA's all-capital surnames in ordinary case ("BRUEGEL, Pieter
    the Elder" -> "Bruegel, Pieter the Elder"); Roman numerals and names already in mixed case are kept."""
    if not name or not name.strip():
        return None

    def soften(match: re.Match) -> str:
        word = match.group(0)
        if len(word) < 2 or _ROMAN.match(word):
            return word
        return "-".join(part[:1] + part[1:].lower() for part in word.split("-"))

    return re.sub(r"[^\W\d_][^\W\d_'-]*", lambda m: soften(m) if m.group(0).isupper() else m.group(0),
                  " ".join(name.split()))


def _clean_title(title: str) -> str:
    return " ".join(_QUALIFIER.sub(" ", title).split()) or " ".join(title.split())


def _most_common(values: Sequence[tuple[str, tuple]]) -> str | None:
    """The value most members share; ties go to the earliest (smallest sort key)."""
    if not values:
        return None
    counts = Counter(key for key, _ in values)
    first: dict[str, tuple] = {}
    for key, order in values:
        first[key] = min(order, first.get(key, order))
    return min(counts, key=lambda k: (-counts[k], first[k]))


def title_from(works: Iterable[Work]) -> str | None:
    """The default title of a group of these works: "artist, title", either part alone when the other is
    unknown, None when both are."""
    works = list(works)
    order = lambda w: (w.year if w.year is not None else 10**6, w.image_id)  # noqa: E731
    artists = [(a, order(w)) for w in works if (a := display_artist(w.artist))]
    cleaned = {}
    titles = []
    for w in works:
        if w.title and w.title.strip():
            text = _clean_title(w.title)
            key = text.casefold()
            titles.append((key, order(w)))
            if key not in cleaned or len(text) < len(cleaned[key]):
                cleaned[key] = text
    artist = _most_common(artists)
    title_key = _most_common(titles)
    parts = [p for p in (artist, cleaned.get(title_key) if title_key else None) if p]
    if not parts:
        return None
    text = ", ".join(parts)
    return text if len(text) <= MAX_TITLE else text[:MAX_TITLE - 1].rstrip() + "…"


def default_title(session: Session, image_ids: Iterable[int]) -> str | None:
    """The default title of a group of these images (one query)."""
    ids = sorted({int(i) for i in image_ids})
    if not ids:
        return None
    works = [Work(artist, title, year, image_id) for image_id, artist, title, year in session.execute(
        select(Image.id, Image.artist, Image.title, Image.year_start).where(Image.id.in_(ids)))]
    return title_from(works)


def group_label(group_id: int, title: str | None) -> str:
    """How a group is named in messages and lists: "#12 Leonardo da Vinci, Mona Lisa", or "group #12"."""
    return f"#{group_id} {title}" if title else f"group #{group_id}"

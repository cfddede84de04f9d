"""IIIF labels and metadata: text of v3 language maps and v2 values, and the metadata labels institutions use
mapped onto vislink's image fields (artist, date...). Every pair is also kept as published
(``extra["iiif_metadata"]``); the table is in docs/ingest-sources.md."""

from __future__ import annotations

import html
import re
from typing import Any

from vislink.ingest.dates import parse_year_range
from vislink.ingest.sources.base import map_columns

# Label (lower case, any language of a v3 label map) -> field, by priority: a lower number wins when several
# labels give the same field. Labels not listed here still reach the fields through ``map_columns``'s aliases
# (technique/medium, school, object type, holding institution...).
LABEL_FIELDS: dict[str, tuple[str, int]] = {
    # artist
    "artist": ("artist", 0), "artist/maker": ("artist", 0), "artist / maker": ("artist", 0),
    "creator": ("artist", 1), "creator/contributor": ("artist", 1), "author": ("artist", 1),
    "painter": ("artist", 1), "maker": ("artist", 2), "engraver": ("artist", 2), "printmaker": ("artist", 2),
    "draughtsman": ("artist", 2), "illustrator": ("artist", 2), "sculptor": ("artist", 2),
    "designer": ("artist", 3), "photographer": ("artist", 3), "attributed to": ("artist", 3),
    "people": ("artist", 4), "names": ("artist", 4), "contributor": ("artist", 5), "contributors": ("artist", 5),
    "künstler": ("artist", 0), "künstler/in": ("artist", 0), "urheber": ("artist", 1), "artiste": ("artist", 0),
    "auteur": ("artist", 1), "kunstenaar": ("artist", 0), "vervaardiger": ("artist", 1), "artista": ("artist", 0),
    "autore": ("artist", 1), "autor": ("artist", 1),
    # date
    "date": ("date_text", 0), "dated": ("date_text", 0), "date created": ("date_text", 0),
    "date of creation": ("date_text", 0), "creation date": ("date_text", 0), "date made": ("date_text", 0),
    "production date": ("date_text", 0), "date of origin (english)": ("date_text", 1),
    "date of origin": ("date_text", 1), "date statement": ("date_text", 1), "date issued": ("date_text", 2),
    "created": ("date_text", 2), "date published": ("date_text", 3), "year": ("date_text", 3),
    "period": ("date_text", 5), "datierung": ("date_text", 0), "datum": ("date_text", 1),
    "datering": ("date_text", 0), "data": ("date_text", 1), "fecha": ("date_text", 1),
}
# People / Names lists hold sitters and owners too: only a name with one of these roles is the artist.
ARTIST_ROLES = ("artist", "painter", "creator", "author", "maker", "engraver", "printmaker", "draughtsman",
                "illustrator", "sculptor", "photographer", "designer", "artist/maker")
_ROLE_LABELS = {"people", "names", "contributor", "contributors"}
# "Mantegna, Andrea, 1431-1506", "Rembrandt (1606-1669)", "Smith, John, b. 1850": the life dates after a name.
_ARTIST_DATES = re.compile(r"^(?P<name>.*?\D),?\s*\(?(?P<dates>(?:b\.|born|d\.|died|active|fl\.)\s*\d{3,4}\??|"
                           r"\d{3,4}\??\s*-\s*(?:\d{3,4}\??)?)\)?\.?$")


def lang_text(value: Any, language: str = "en") -> str | None:
    """Plain text of a IIIF label or value: a v3 language map, a v2 string, ``{"@value", "@language"}`` or a
    list of those, in ``language`` when available (else language-neutral, else any); HTML tags removed."""
    if value is None:
        return None
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, dict) and "@value" in value:
        texts = [str(value["@value"])]
    elif isinstance(value, dict):  # v3 language map
        key = next((k for k in (language, "none", "@none") if k in value), None)
        if key is None:
            key = next((k for k in value if str(k).split("-")[0] == language), next(iter(value), None))
        texts = value.get(key) or [] if key is not None else []
        texts = [texts] if isinstance(texts, str) else [str(t) for t in texts] if isinstance(texts, list) \
            else [str(texts)]
    elif isinstance(value, list):
        entries = [v if isinstance(v, dict) else {"@value": v} for v in value]
        chosen = [e for e in entries if str(e.get("@language", "")).split("-")[0] == language] or \
                 [e for e in entries if "@language" not in e] or entries
        texts = [str(e.get("@value", "")) for e in chosen]
    else:
        texts = [str(value)]
    cleaned = [html.unescape(re.sub(r"<[^>]+>", " ", t)) for t in texts]
    joined = "; ".join(" ".join(t.split()) for t in cleaned if t.strip())
    return joined or None


def label_texts(label: Any) -> list[str]:
    """Every text of a label, in every language (lower case): how a label is matched to ``LABEL_FIELDS``."""
    if isinstance(label, dict) and "@value" not in label:
        values = [v for vs in label.values() for v in (vs if isinstance(vs, list) else [vs])]
    elif isinstance(label, list):
        values = [v.get("@value") if isinstance(v, dict) else v for v in label]
    else:
        values = [label.get("@value") if isinstance(label, dict) else label]
    return [" ".join(re.sub(r"<[^>]+>", " ", str(v)).split()).lower().rstrip(":") for v in values if v]


def metadata_fields(entries: Any, language: str = "en") -> tuple[dict[str, Any], dict[str, str]]:
    """``(fields, pairs)`` from a IIIF ``metadata`` list: image fields (artist, date_text with year_start /
    year_end, technique...) and every label -> value pair in ``language`` as published."""
    pairs: dict[str, str] = {}
    by_english: dict[str, str] = {}
    chosen: dict[str, tuple[int, str]] = {}  # field -> (priority, value)
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        label, value = lang_text(entry.get("label"), language), lang_text(entry.get("value"), language)
        if not (label and value):
            continue
        if label in pairs and value not in pairs[label].split("; "):
            pairs[label] = f"{pairs[label]}; {value}"  # a label given twice (two subjects): both values kept
        pairs.setdefault(label, value)
        by_english.setdefault(lang_text(entry.get("label"), "en") or label, value)
        for text in label_texts(entry.get("label")):
            if text not in LABEL_FIELDS:
                continue
            fieldname, priority = LABEL_FIELDS[text]
            found = _field_value(fieldname, text, value)
            if found and (fieldname not in chosen or priority < chosen[fieldname][0]):
                chosen[fieldname] = (priority, found)
            break
    fields, _ = map_columns({k: v for k, v in by_english.items() if k.lower() not in LABEL_FIELDS})
    for fieldname, (_, value) in chosen.items():  # the table wins over the generic aliases
        fields[fieldname] = value
    if "artist" in fields and "artist_dates" not in fields:
        m = _ARTIST_DATES.match(fields["artist"])
        if m and m.group("name").strip(" ,"):
            fields["artist"], fields["artist_dates"] = m.group("name").strip(" ,"), m.group("dates").strip()
    if "date_text" in fields and "year_start" not in fields:
        start, end = parse_year_range(fields["date_text"])
        if start is not None:
            fields["year_start"], fields["year_end"] = start, end
    return fields, pairs


def _field_value(fieldname: str, label: str, value: str) -> str | None:
    if fieldname == "date_text" and label == "period":
        return value if parse_year_range(value)[0] is not None else None  # "Renaissance" says no year
    if fieldname == "artist" and label in _ROLE_LABELS:
        return role_name(value, ARTIST_ROLES) if label != "contributor" or ":" in value else value
    if fieldname == "artist":
        return role_name(value, ARTIST_ROLES) or value
    return value


def role_name(value: str, roles: tuple[str, ...]) -> str | None:
    """The first name given with one of ``roles`` in ``Artist: Mantegna, Andrea; Printer: ...`` (or
    ``Mantegna, Andrea (artist)``), or None."""
    for part in re.split(r";|\n|\|", value):
        part = part.strip()
        m = re.match(r"([^:]{2,40}):\s*(.+)", part)
        if m and m.group(1).strip().lower() in roles:
            return m.group(2).strip()
        m = re.match(r"(.+?)\s*[(\[]([^)\]]+)[)\]]\s*$", part)
        if m and m.group(2).strip().lower() in roles:
            return m.group(1).strip()
    return None

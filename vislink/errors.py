"""The exception tree. Each error carries a message written for the user; the CLI and the UI
turn any ``VislinkError`` into a clean message in one place, never a traceback."""


class VislinkError(Exception):
    """Base of every error vislink raises on purpose."""


class ConfigError(VislinkError):
    """A setting is missing, malformed or points at something unusable."""


class NotFound(VislinkError):
    """A named thing (collection, variant, image, weights, group) does not exist."""


class MissingSplit(NotFound):
    """A collection has no split of that name (evaluation needs one to choose its queries)."""

    def __init__(self, collection: str, split: str, existing: list[str]):
        self.collection, self.split, self.existing = collection, split, list(existing)
        super().__init__(
            f"collection {collection!r} has no split named {split!r} (splits: {', '.join(existing) or 'none'}): "
            f"create it with `vislink groups split --collection {collection} --name {split}` (train / val / test "
            "by connected component), or evaluate every linked image with `--split none`")


class BadImage(VislinkError):
    """A file could not be used as an image. ``path`` names it, ``reason`` is a short machine key."""

    def __init__(self, path, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


class WeightsUnavailable(VislinkError):
    """Encoder weights cannot be loaded or fetched (offline, wrong file, unsupported layer)."""


class IndexUnavailable(VislinkError):
    """The vector index (Qdrant) cannot be reached or refused an operation."""


class StoreUnavailable(VislinkError):
    """The SQL database cannot be reached or is not migrated."""


class ConflictError(VislinkError):
    """Somebody else changed the same record since it was read; reload and try again."""


class FetchError(VislinkError):
    """A remote resource could not be downloaded."""


class FormatError(VislinkError):
    """A file in an outside format (Replica's CSV files, WGA paths) is malformed. ``path`` names the file,
    ``line`` the line (None when the whole file or its header is at fault), ``reason`` what is wrong."""

    def __init__(self, path, reason: str, line: int | None = None):
        self.path = str(path)
        self.reason = reason
        self.line = line
        super().__init__(f"{self.path}:{line}: {reason}" if line is not None else f"{self.path}: {reason}")

"""Content hashes: the identity of image files (dedup, the content-addressed store), weights and caches."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path | str) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (images and weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()

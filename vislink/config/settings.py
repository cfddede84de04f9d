from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

IndexBackendName = Literal["auto", "qdrant-local", "qdrant-edge", "qdrant-server", "memory"]


class Settings(BaseSettings):
    """vislink's configuration. Each field is one environment variable (its alias)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    def __init__(self, **values: Any) -> None:
        """Keyword arguments by field name (``Settings(home=...)``) or by variable (``VISLINK_HOME=...``) win over
        the environment; an unknown one is an error, not silently ignored. (Not ``populate_by_name``: with it,
        pydantic-settings also reads each field's bare name from the environment, so $HOME would become the
        data folder and $DEVICE the torch device.)"""
        fields = type(self).model_fields
        known = {name for name in fields} | {field.alias for field in fields.values()}
        unknown = sorted(k for k in values if not k.startswith("_") and k not in known)
        if unknown:
            raise TypeError(f"Settings() got unknown settings {unknown}; valid: {sorted(fields)} or their variables")
        super().__init__(**{fields[k].alias if k in fields and fields[k].alias else k: v for k, v in values.items()})

    home: Path = Field(
        default=Path("vislink-data"),
        alias="VISLINK_HOME",
        description="Data folder: SQLite database, embedded Qdrant, weights, image store, thumbnails, cache.",
    )
    db_url: str | None = Field(
        default=None,
        alias="VISLINK_DB_URL",
        description="SQLAlchemy URL of the SQL store. Default: SQLite file vislink.db in the data folder.",
    )
    qdrant_url: str | None = Field(
        default=None,
        alias="QDRANT_URL",
        description="URL of a Qdrant server or cluster. Default: embedded Qdrant in the data folder.",
    )
    qdrant_api_key: str | None = Field(
        default=None, alias="QDRANT_API_KEY", description="API key for the Qdrant server, if it needs one."
    )
    index_backend: IndexBackendName = Field(
        default="auto",
        alias="VISLINK_INDEX_BACKEND",
        description=(
            "Vector index backend: auto (qdrant-server when QDRANT_URL is set, else qdrant-edge, the embedded "
            "in-process engine), qdrant-local (qdrant-client local mode), qdrant-edge, qdrant-server, memory."
        ),
    )
    qdrant_shards: int = Field(
        default=2, alias="VISLINK_QDRANT_SHARDS", description="Shard number of collections created in server mode."
    )
    qdrant_replication: int = Field(
        default=2,
        alias="VISLINK_QDRANT_REPLICATION",
        description="Replication factor of collections created in server mode.",
    )
    # The index policy (vislink/index/policy.py, docs/index.md "Index policy"): where each default comes from.
    index_hnsw_min_points: int = Field(
        default=50_000,
        alias="VISLINK_INDEX_HNSW_MIN_POINTS",
        description=("Collections with fewer points are searched by an exact scan; `vislink index optimize` (and the "
                     "job an ingest queues) builds an HNSW graph in those with at least this many. Stated for 512-d "
                     "vectors, proportionally fewer above (12,500 at 2048-d). 50,000: the exact scan passes 20-30 ms "
                     "a query at about 50,000 x 512 and 15,000 x 2048 (docs/scaling.md)."),
    )
    index_hnsw_m: int = Field(
        default=16, alias="VISLINK_INDEX_HNSW_M",
        description="Edges per node of the HNSW graphs vislink builds (16: measured at 100k and 1M x 512).",
    )
    index_hnsw_ef_construct: int = Field(
        default=100, alias="VISLINK_INDEX_HNSW_EF_CONSTRUCT",
        description="Candidates per insertion while building an HNSW graph (100: measured at 100k and 1M x 512).",
    )
    index_hnsw_ef: int = Field(
        default=128, alias="VISLINK_INDEX_HNSW_EF",
        description="Smallest search ef of an approximate query (128: top-10 recall 0.986 at 100k x 512, int8).",
    )
    index_hnsw_ef_factor: float = Field(
        default=5.0, alias="VISLINK_INDEX_HNSW_EF_FACTOR",
        description=("Search ef per result asked for: ef = max(VISLINK_INDEX_HNSW_EF, factor x limit), so top-200 "
                     "searches with ef 1,000 (at 1M x 512, int8: recall@200 0.973 at 3.5 ms p50, ef 512 0.94; "
                     "docs/scaling.md). The starting point of each collection's calibration "
                     "(VISLINK_INDEX_TARGET_RECALL)."),
    )
    index_target_recall: float = Field(
        default=0.95, ge=0.0, le=1.0, alias="VISLINK_INDEX_TARGET_RECALL",
        description=("After an HNSW build (`vislink index optimize`, the index-optimize job) the collection's search "
                     "ef factor is doubled from VISLINK_INDEX_HNSW_EF_FACTOR (up to 40, ef 8,000 for top-200) until "
                     "recall@200 on 32 of its own vectors reaches this; 0 turns the calibration off. Measured: pool5 "
                     "vectors reach 0.97 at 1M with the factor 5, SSCD ones 0.82 (docs/scaling.md). qdrant-edge only."),
    )
    index_hnsw_rebuild_above: float = Field(
        default=10.0, ge=0.0, alias="VISLINK_INDEX_HNSW_REBUILD_ABOVE",
        description=("When the calibration (VISLINK_INDEX_TARGET_RECALL) needs an ef factor above this (10: ef 2,000 "
                     "for top-200) or misses the target, the graph is rebuilt once with m and ef_construct doubled "
                     "and calibrated again; 0: never. Measured on SSCD-shaped vectors at 1M: m 16 needed ef 8,000 "
                     "(15 ms) for recall@200 0.96, m 32 reached 0.97 at ef 2,000 (7 ms), building 2.6x longer."),
    )
    index_quantization: Literal["none", "int8"] = Field(
        default="int8", alias="VISLINK_INDEX_QUANTIZATION",
        description=("Quantization built with an HNSW graph: int8 (scalar; searches rescore with the original "
                     "vectors: recall@200 0.992 at ef 200 on 100k x 512 against 0.966 for float32, and faster) or "
                     "none."),
    )
    index_oversampling: float = Field(
        default=2.0, alias="VISLINK_INDEX_OVERSAMPLING",
        description="int8 collections: candidates scored on quantized vectors per result, rescored exactly.",
    )
    device: str = Field(
        default="auto", alias="VISLINK_DEVICE", description="Torch device for the encoder: auto, cpu, cuda, cuda:1."
    )
    threads: int | None = Field(
        default=None, alias="VISLINK_THREADS", description="CPU threads of the encoders, torch and onnxruntime (default: their own choice, one per core)."
    )
    query_side: int | None = Field(
        default=None,
        alias="VISLINK_QUERY_SIDE",
        description=("Shorter side a VGG16 pool5 query image is resized to before encoding (search and UI only; "
                     "stored images keep 256). Unset: 256. Smaller is faster; recall measured in docs/search.md."),
    )
    query_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        alias="VISLINK_QUERY_PRECISION",
        description=("Precision of a query's VGG16 forward pass: auto (bf16 autocast on a GPU or a CPU with AMX / "
                     "AVX512-BF16, fp32 elsewhere, where bf16 is emulated and slower), fp32, bf16."),
    )
    weights: str = Field(
        default="vgg16-caffe-conv",
        alias="VISLINK_WEIGHTS",
        description="Default encoder weights: a registered source name (see `vislink weights list`) or a file.",
    )
    default_variants: str = Field(
        default="auto",
        alias="VISLINK_DEFAULT_VARIANTS",
        description=("Descriptor variants of a new collection when none are named, comma-separated. auto: "
                     "vgg16-pool5-sum and sscd when the SSCD model is installed, else the three pool5 variants."),
    )
    queue_url: str | None = Field(
        default=None,
        alias="VISLINK_QUEUE_URL",
        description="PostgreSQL URL of the distributed ingest task queue (scaled set-up). Default: VISLINK_DB_URL.",
    )
    max_image_pixels: int = Field(
        default=64_000_000,
        alias="VISLINK_MAX_IMAGE_PIXELS",
        description=("Images of more pixels (width x height) are refused (decompression-bomb). 64 million "
                     "(8000 x 8000: a 2 m painting at 100 pixels per inch; the largest file in the reference data "
                     "is 1 MP) is more than any painting scan the encoder needs (it works at 256-288 px), and caps "
                     "what one decode holds: a PNG or TIFF is decoded in full (1-4 bytes a pixel, up to 256 MB) "
                     "before it is reduced, a JPEG at 1/2-1/8 scale. Raise it for gigapixel masters."),
    )
    max_upload_mb: int = Field(
        default=50, alias="VISLINK_MAX_UPLOAD_MB", description="Largest file the UI accepts as an upload."
    )
    secret_key: str | None = Field(
        default=None, alias="VISLINK_SECRET_KEY", description="Secret for UI sessions (generated when unset)."
    )
    oidc_self_register: bool = Field(
        default=False,
        alias="VISLINK_OIDC_SELF_REGISTER",
        description=("UI single sign-on: an identity whose e-mail matches no annotator gets an account (true), or "
                     "is refused until an administrator adds one with that e-mail (false)."),
    )
    fetch_allow_hosts: str | None = Field(
        default=None,
        alias="VISLINK_FETCH_ALLOW_HOSTS",
        description=("Downloads never reach loopback, private, link-local (cloud metadata), multicast or reserved "
                     "addresses, directly or through a redirect, except these: a comma list of host names "
                     "(iiif.museum.local, .museum.local for every name under it), addresses and CIDR networks "
                     "(10.20.0.0/16), e.g. an institution's own IIIF server."),
    )

    # Folders inside the data folder. Derived, never configured separately, so one folder is all.
    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def images_dir(self) -> Path:
        return self.resolved_home / "images"

    @property
    def weights_dir(self) -> Path:
        return self.resolved_home / "weights"

    @property
    def qdrant_path(self) -> Path:
        return self.resolved_home / "qdrant"

    @property
    def cache_dir(self) -> Path:
        return self.resolved_home / "cache"

    @property
    def thumbs_dir(self) -> Path:
        return self.resolved_home / "thumbs"

    @property
    def models_dir(self) -> Path:
        """PCA fits and fine-tuned checkpoints."""
        return self.resolved_home / "models"

    @property
    def reports_dir(self) -> Path:
        return self.resolved_home / "reports"

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.resolved_home / 'vislink.db'}"

    @property
    def effective_index_backend(self) -> str:
        if self.index_backend != "auto":
            return self.index_backend
        return "qdrant-server" if self.qdrant_url else "qdrant-edge"

    def ensure_dirs(self) -> None:
        """The data folder and its sub-folders, created readable by the owner only (``make_private_dir``)."""
        for folder in (self.resolved_home, self.images_dir, self.weights_dir, self.cache_dir, self.thumbs_dir,
                       self.models_dir, self.reports_dir):
            make_private_dir(folder)


def make_private_dir(folder: Path) -> Path:
    """``folder`` and its missing parents, each created with mode 0700 whatever the umask: the data folder holds
    the database (password hashes), the images and the weights. A folder that exists is left as it is (its owner
    may share it on purpose)."""
    import os

    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first: theirs
            continue
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    return folder


# (environment variable, default, help) for every setting: the README's table and a test use it.
SETTINGS_DOC: list[tuple[str, str, str]] = [
    (field.alias, str(field.default) if field.default is not None else "(unset)", field.description or "")
    for field in Settings.model_fields.values()
]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()


def settings_markdown() -> str:
    """The settings as a Markdown table (the README's copy is checked against it by a test)."""
    lines = ["| variable | default | what it sets |", "| --- | --- | --- |"]
    for name, default, help_text in SETTINGS_DOC:
        lines.append(f"| `{name}` | `{default}` | {help_text} |")
    return "\n".join(lines)

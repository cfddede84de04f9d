"""What a fine-tuning run does, as one plain dataclass: saved with every checkpoint (a resumed run must have the
same one) and with the fine-tuned weights (``meta["config"]``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from vislink.errors import ConfigError

# Index in torchvision's ``vgg16().features`` of the first convolution of each trainable stack. Everything
# before it is frozen (and, on the cached path, computed once per image and view).
CUTS: dict[str, int] = {"conv1_1": 0, "conv4_1": 17, "conv5_1": 24, "conv5_2": 26, "conv5_3": 28}
QUERY_MODES = ("links", "transforms", "both")
PATHS = ("cached", "full")
GEOMETRIES = ("keep", "crop")
POOLINGS = ("sum", "max", "sp2x2-sum")
AMP = ("auto", "off", "fp16", "bf16")
DEFAULT_TRANSFORMS = ("detail", "mirror", "grayscale", "engraving", "colour", "resize", "photo")


@dataclass
class TrainConfig:
    """A fine-tuning run (see docs/training.md for what each field changes)."""

    name: str  # run name: the weights become ft:<name>
    collection: str
    base_weights: str | None = None  # None: VISLINK_WEIGHTS (the resolved name is recorded)
    split: str | None = "default"  # None: no split, every image is training data (validation on transforms)
    queries: str = "transforms"  # links | transforms | both
    transforms: tuple[str, ...] = DEFAULT_TRANSFORMS
    views: int = 4  # transformed views per image (names taken in turn from ``transforms``)
    strength: tuple[float, float] = (0.3, 0.8)  # each view's strength, uniform in this range
    max_images: int | None = None  # a seeded sample of the training images (linked ones first)
    use_unassigned: bool = True  # images in no part of the split (distractors) are training data too
    val_distractors: int = 0  # held-out images added to the validation gallery (and as transform queries)
    size: int = 224  # working size: shorter side (keep) or square side (crop)
    geometry: str = "keep"  # keep: aspect kept, longer side at most max_aspect x size; crop: centre square
    max_aspect: float = 2.0
    path: str = "cached"  # cached: train on stored lower-block outputs; full: forward every layer each step
    train_from: str = "conv5_1"  # first trained convolution (conv1_1: every layer)
    pooling: str = "sum"  # the descriptor the loss sees (pool5 sum, max or 2x2 sum-pool)
    margin: float = 0.1
    lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 8  # triplets per step
    epochs: int = 5
    mine_every: int = 1  # epochs between two minings of hard negatives
    negatives: int = 10  # hard negatives kept per query (a triplet draws one, or an annotated negative)
    select_metric: str = "auto"  # validation metric of the best checkpoint: links.mAP, transforms.mAP, ...
    save_every: int = 50  # steps between two mid-epoch checkpoints (and one at the end of every epoch)
    device: str = "auto"
    amp: str = "auto"  # auto: fp16 on CUDA, off on CPU
    cache_dtype: str = "float16"
    seed: int = 0
    extra: dict = field(default_factory=dict)  # free-form notes recorded with the run

    def __post_init__(self):
        from vislink.augment import list_transforms
        from vislink.encoder.weights import check_finetuned_run

        check_finetuned_run(self.name)
        self.transforms = tuple(self.transforms)
        self.strength = (float(self.strength[0]), float(self.strength[1]))
        choices = {"queries": QUERY_MODES, "path": PATHS, "geometry": GEOMETRIES, "pooling": POOLINGS,
                   "amp": AMP, "train_from": tuple(CUTS), "cache_dtype": ("float16", "float32")}
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ConfigError(f"{key} {getattr(self, key)!r}: use one of {', '.join(valid)}")
        unknown = [t for t in self.transforms if t not in list_transforms()]
        if unknown or (not self.transforms and self.queries != "links"):
            raise ConfigError(f"transformations {', '.join(unknown) or '(none)'}: use some of "
                              f"{', '.join(list_transforms())}")
        if not 0 <= self.strength[0] <= self.strength[1] <= 1:
            raise ConfigError(f"strength {self.strength}: two numbers 0 <= low <= high <= 1")
        positive = {"views": self.views, "size": self.size, "batch_size": self.batch_size, "epochs": self.epochs,
                    "mine_every": self.mine_every, "negatives": self.negatives, "save_every": self.save_every}
        for key, value in positive.items():
            if int(value) < 1:
                raise ConfigError(f"{key} must be at least 1, not {value}")
        if self.size < 32 or self.max_aspect < 1:
            raise ConfigError("size must be at least 32 and max_aspect at least 1")
        if self.lr <= 0 or self.margin < 0:
            raise ConfigError("lr must be positive and margin non-negative")
        if self.path == "cached" and self.train_from == "conv1_1":
            raise ConfigError("the cached path trains the top blocks on stored lower-block outputs: train_from "
                              "conv1_1 (every layer) needs path='full'")

    @property
    def cut(self) -> int:
        return CUTS[self.train_from]

    @property
    def uses_links(self) -> bool:
        return self.queries in ("links", "both")

    @property
    def uses_transforms(self) -> bool:
        return self.queries in ("transforms", "both")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["transforms"] = list(self.transforms)
        out["strength"] = list(self.strength)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def training_fields(self) -> dict:
        """The fields that change what is trained: a resumed run must agree on all of them (``epochs`` may
        grow, ``device``, ``save_every`` and ``extra`` may change)."""
        out = self.to_dict()
        for key in ("epochs", "device", "save_every", "extra"):
            out.pop(key)
        return out

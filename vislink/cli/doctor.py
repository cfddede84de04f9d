"""`vislink doctor`: where everything is, and whether each part works."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import typer

MIN_FREE_GB = 2.0


@dataclass
class Check:
    part: str
    ok: bool
    detail: str


def run_checks() -> list[Check]:
    from vislink.config import get_settings
    from vislink.errors import VislinkError

    settings = get_settings()
    checks: list[Check] = []

    from vislink.store import db

    try:
        revision = db.check_migrated(settings.database_url)
        checks.append(Check("database", True, f"{db.make_url(settings.database_url).render_as_string(hide_password=True)} at {revision}"))
    except VislinkError as exc:
        checks.append(Check("database", False, str(exc)))

    try:
        from vislink.index import open_index

        index = open_index(settings)
        names = index.list_collections()
        checks.append(Check("vector index", True, f"{index.name} ({settings.qdrant_url or settings.qdrant_path}), "
                                                  f"{len(names)} collection(s)"))
        checks.extend(collection_checks(index, names))
    except VislinkError as exc:
        checks.append(held_index_check(settings, exc))
    except Exception as exc:  # a lock held by another process, a bad URL: say it, don't crash
        checks.append(Check("vector index", False, f"{type(exc).__name__}: {exc}"))

    try:
        from vislink.encoder.weights import describe_weights

        info = describe_weights(settings.weights, settings)
        checks.append(Check("encoder weights", info.installed, info.message))
    except ImportError:
        checks.append(Check("encoder weights", False, "the encoder stage is not installed"))
    except VislinkError as exc:
        checks.append(Check("encoder weights", False, str(exc)))

    checks.append(backbones_check(settings))

    home = settings.resolved_home
    probe = home if home.exists() else home.parent
    free_gb = shutil.disk_usage(probe).free / 1e9
    checks.append(Check("disk space", free_gb >= MIN_FREE_GB,
                        f"{free_gb:.1f} GB free under {probe}" + ("" if free_gb >= MIN_FREE_GB else
                                                                 f" (need {MIN_FREE_GB} GB)")))
    return checks


def collection_checks(index, names: list[str], *, recall_queries: int = 32) -> list[Check]:
    """One line per collection: points, dimension, index mode (vislink.index.policy) and, for HNSW collections,
    the recall@200 of the graph on ``recall_queries`` of the collection's own stored vectors (approximate vs exact
    top-200; about a second per 100k points). Exact collections are not measured: a scan has recall 1."""
    from vislink.errors import VislinkError
    from vislink.index.policy import collection_dim, measure_recall

    checks = []
    for name in names:
        try:
            points = index.count(name)
            dimension = collection_dim(index, name)
            dim = f"{dimension}-d" if dimension is not None else "empty"
            mode = index.index_mode(name)
            detail = f"{points} points, {dim}, {mode.describe()}"
            if mode.approximate and points:
                factor = index.search_ef_factor(name)
                if factor is not None:
                    detail += f", search ef x{factor:g} (calibrated)"
                detail += f"; {measure_recall(index, name, queries=recall_queries).describe()}"
            elif not mode.approximate:
                detail += " (recall 1 by construction)"
            checks.append(Check(f"collection {name}", True, detail))
        except VislinkError as exc:
            checks.append(Check(f"collection {name}", False, str(exc)))
    return checks


def held_index_check(settings, exc) -> Check:
    """The index check when opening failed: held by a job holder (`vislink ui`, `vislink worker --embedded`),
    that holder answers for it (docs/jobs.md); else the error."""
    from vislink.errors import VislinkError
    from vislink.jobs import ask, held_elsewhere
    from vislink.store import session_scope
    from vislink.store.jobs import live_holders

    if not held_elsewhere(exc):
        return Check("vector index", False, str(exc))
    try:
        with session_scope() as s:
            holders = live_holders(s, index_location=str(settings.qdrant_url or settings.qdrant_path))
        if not holders:
            return Check("vector index", False, f"{exc} (and that process runs no jobs: `vislink jobs` cannot use it)")
        info = ask("index-info", {}, timeout=30)
    except VislinkError as err:
        return Check("vector index", False, f"held by another process, which did not answer: {err}")
    return Check("vector index", True, f"{info['name']} ({settings.qdrant_url or settings.qdrant_path}), "
                                       f"{len(info['collections'])} collection(s); held by {holders[0]}, which "
                                       "runs queued jobs and answered for it")


def _version(dist: str) -> str | None:
    """The installed version of a distribution, without importing it (torch, onnxruntime are heavy)."""
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def backbones_check(settings) -> Check:
    """Which encoder backbones can run here: VGG16 (torch) and the ONNX models (onnxruntime + their files).
    Optional ONNX models that are not installed do not fail the check; a missing torch does."""
    from vislink.encoder.onnx_models import list_onnx_models
    from vislink.encoder.weights import describe_weights

    torch_version = _version("torch")
    ort_version = _version("onnxruntime")
    parts = [f"vgg16 ({'torch ' + torch_version if torch_version else 'NOT usable: torch is not installed'})"]
    missing = []
    for model in list_onnx_models():
        info = describe_weights(model.name, settings)
        if info.installed and ort_version:
            parts.append(f"{model.name} (onnxruntime {ort_version}, {info.path})")
        elif info.installed:
            parts.append(f"{model.name} (NOT usable: onnxruntime is not installed)")
        else:
            missing.append(model)
    if missing:
        hints = sorted({m.install_hint for m in missing if m.install_hint})
        parts.append(f"not installed (optional): {', '.join(m.name for m in missing)}"
                     + (f" ({'; '.join(f'`{h}`' for h in hints)})" if hints else ""))
    return Check("backbones", torch_version is not None, "; ".join(parts))


def doctor() -> None:
    """Print where vislink keeps everything, check each part, exit 1 if one is wrong."""
    from vislink.config import get_settings

    settings = get_settings()
    typer.echo(f"data folder:   {settings.resolved_home}")
    from vislink.index.registry import resolve_backend

    typer.echo(f"index backend: {resolve_backend(settings)}")
    typer.echo(f"weights:       {settings.weights}")
    failed = 0
    for check in run_checks():
        mark = typer.style("ok  ", fg=typer.colors.GREEN) if check.ok else typer.style("FAIL", fg=typer.colors.RED)
        typer.echo(f"[{mark}] {check.part}: {check.detail}")
        failed += not check.ok
    if failed:
        typer.secho(f"{failed} check(s) failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)

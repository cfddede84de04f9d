"""`vislink finetune`: the paper's triplet fine-tuning of VGG16 on a collection (its annotated links and/or
self-supervised link-like transformations), producing the weights ``ft:<name>`` and the descriptor variants
pinned to them (``vgg16-pool5-sum@ft:<name>``...). Parses and prints; the work is ``vislink.training``."""

from __future__ import annotations

from typing import Optional

import typer


def _pct(value) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def _epoch_line(record: dict) -> str:
    metrics = record.get("metrics") or {}
    parts = [f"epoch {record['epoch']}" + (" (base weights)" if record["epoch"] == 0 else "")]
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}, active {_pct(record.get('active'))}%, "
                     f"{record.get('triplets_per_s') or 0:.2f} triplets/s")
    for family, short in (("links", ("R@20", "mAP")), ("transforms", ("top1", "mAP"))):
        if family in metrics:
            parts.append(f"val {family} " + ", ".join(f"{k} {_pct(metrics[family].get(k))}" for k in short))
    return "; ".join(parts)


def finetune(
    collection: str = typer.Option(..., "--collection", "-c", help="Collection whose images and links train."),
    name: str = typer.Option(..., "--name", help="Run name: the weights become ft:NAME (lowercase letters, digits, "
                             "'-')."),
    weights: Optional[str] = typer.Option(None, help="Base VGG16 weights (default: VISLINK_WEIGHTS)."),
    queries: str = typer.Option("transforms", help="links (annotated links of the train split), transforms "
                                "(self-supervised: an image and its transformed views) or both."),
    split: str = typer.Option("default", help="Split whose train part trains and val part validates; 'none': "
                              "every image trains, validation on transformations of --val-distractors images."),
    transformations: str = typer.Option("all", "--transforms", help="Transformations of the self-supervised "
                                        "views, comma-separated, or 'all'."),
    views: int = typer.Option(4, help="Transformed views per image."),
    strength: str = typer.Option("0.3:0.8", help="Strength range LOW:HIGH of the views (0-1)."),
    max_images: Optional[int] = typer.Option(None, help="Train on a seeded sample of this many images."),
    val_distractors: int = typer.Option(0, help="Held-out images added to the validation gallery."),
    unassigned: bool = typer.Option(True, "--unassigned/--no-unassigned", help="Images in no part of the split "
                                    "(distractors) train too."),
    size: int = typer.Option(224, help="Working size: the shorter side of the training inputs."),
    geometry: str = typer.Option("keep", help="keep (aspect kept, longer side capped) or crop (centre square)."),
    path: str = typer.Option("cached", help="cached: train the top block(s) on stored lower-block outputs (CPU); "
                             "full: every layer at every step (GPU, mixed precision)."),
    train_from: Optional[str] = typer.Option(None, help="First trained convolution: conv5_1 (cached default), "
                                             "conv5_2, conv5_3, conv4_1, conv1_1 (every layer, full default)."),
    pooling: str = typer.Option("sum", help="Descriptor the loss sees: sum, max or sp2x2-sum (pool5)."),
    epochs: int = typer.Option(5, help="Epochs (a resumed run may be given more)."),
    batch_size: int = typer.Option(8, help="Triplets per step."),
    lr: float = typer.Option(1e-5, help="SGD learning rate."),
    momentum: float = typer.Option(0.9, help="SGD momentum."),
    margin: float = typer.Option(0.1, help="Margin of the triplet loss."),
    mine_every: int = typer.Option(1, help="Epochs between two minings of hard negatives."),
    negatives: int = typer.Option(10, help="Hard negatives kept per query."),
    select: str = typer.Option("auto", help="Validation metric of the best checkpoint (links.mAP, transforms.mAP, "
                               "links.R@20...; auto: links.mAP when the val split has link queries)."),
    save_every: int = typer.Option(50, help="Steps between two mid-epoch checkpoints."),
    device: str = typer.Option("auto", help="Torch device: auto, cpu, cuda, cuda:N."),
    amp: str = typer.Option("auto", help="Mixed precision: auto (fp16 on CUDA), off, fp16, bf16."),
    seed: int = typer.Option(0, help="Seed of the sample, the views, the triplets."),
    restart: bool = typer.Option(False, "--restart", help="Start again even if an interrupted run of this name "
                                 "exists (default: resume it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing weights ft:NAME."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Fine-tune VGG16 with triplets and hard negatives (Seguin et al. 2016), validate every epoch, keep the best
    epoch, and register its weights as ft:NAME with the variants vgg16-pool5-{sum,max,sp2x2-sum}@ft:NAME.
    An interrupted run continues where its last checkpoint left it when started again with the same options."""
    from vislink.errors import ConfigError
    from vislink.training import TrainConfig
    from vislink.training import finetune as run

    try:
        low, high = (float(x) for x in strength.split(":"))
    except ValueError:
        raise ConfigError(f"--strength takes LOW:HIGH, e.g. 0.3:0.8, not {strength!r}") from None
    names = None if transformations.strip().lower() == "all" else [t.strip() for t in transformations.split(",")
                                                                      if t.strip()]
    options = dict(name=name, collection=collection, base_weights=weights, queries=queries,
                   split=None if split.lower() == "none" else split, views=views, strength=(low, high),
                   max_images=max_images, val_distractors=val_distractors, use_unassigned=unassigned, size=size,
                   geometry=geometry, path=path, train_from=train_from or ("conv1_1" if path == "full" else "conv5_1"),
                   pooling=pooling, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, margin=margin,
                   mine_every=mine_every, negatives=negatives, select_metric=select, save_every=save_every,
                   device=device, amp=amp, seed=seed)
    if names is not None:
        options["transforms"] = tuple(names)
    config = TrainConfig(**options)
    result = run(config, restart=restart, overwrite=overwrite, progress=progress,
                 on_epoch=lambda record: typer.echo(_epoch_line(record)))
    data = result.data
    typer.echo(f"data: {data['train_images']} train images ({data['link_queries']} link queries), "
               f"{data['val_images']} val images ({data['val_link_queries']} link queries), "
               f"{data['held_out_images']} held out")
    if result.resumed_from:
        typer.echo(f"resumed at epoch {result.resumed_from[0] + 1}, step {result.resumed_from[1]}")
    best = result.best or {}
    typer.echo(f"best epoch {best.get('epoch', '-')} by {best.get('metric', '-')} "
               f"({_pct(best.get('score'))} vs {_pct(result.history[0].get('score'))} for the base weights)")
    typer.echo(f"weights {result.weights} ({(result.weights_sha256 or '?')[:12]}) from {result.base_weights['name']}; "
               f"run folder {result.run_dir}")
    typer.echo("descriptor variants: " + ", ".join(result.variants))
    typer.echo(f"encode a collection with one: vislink collection add-variant {collection} {result.variants[0]}")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)

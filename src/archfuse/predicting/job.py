"""One labelling: every image file under the input, read as the training data were, labelled in batches,
written as CSV (one row per image). Files that cannot be read are listed and skipped.

CSV columns: ``path`` (as found under the input), ``class`` (the top class's name), ``probability`` (its
softmax probability); with ``top_k`` = k > 1 also ``class_2``, ``probability_2``, ... ``class_k``,
``probability_k``, in falling probability.
"""

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archfuse.errors import ConfigError
from archfuse.files import folders_removed_on_failure, write_atomic
from archfuse.predicting.images import NativeStderr, Unreadable, read_image
from archfuse.predicting.labeller import labeller
from archfuse.predicting.options import predict_request


@dataclass
class Labelled:
    out: Path
    source: str
    rows: list[list[Any]] = field(default_factory=list)  # path, class, probability, ... (the CSV's rows)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    correct: int | None = None  # against the folder names, when every image lies in a folder named after a class


def header(top_k: int) -> list[str]:
    names = ["path", "class", "probability"]
    for k in range(2, top_k + 1):
        names += [f"class_{k}", f"probability_{k}"]
    return names


def progress(quiet: bool):
    """A progress bar on a terminal's stderr, for more than one batch of files and not under quiet=true.
    It is redrawn between files, never from a thread of its own: stderr is caught while a file is decoded."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=quiet or not console.is_terminal, auto_refresh=False)


def batch_rows(model, paths: list[Path], images: torch.Tensor, top_k: int) -> list[list[Any]]:
    """The CSV rows of a batch: path, then the top ``top_k`` classes' names and probabilities."""
    classes = model.spec["classes"]
    top = model.run(images).float().softmax(-1).topk(top_k, dim=-1)
    table = []
    for path, p, i in zip(paths, top.values.tolist(), top.indices.tolist(), strict=True):
        row: list[Any] = [str(path)]
        for value, index in zip(p, i, strict=True):
            row += [classes[index], f"{value:.6f}"]
        table.append(row)
    return table


def predict(cfg: dict[str, Any]) -> Labelled:
    request = predict_request(cfg)
    files, top_k, batch_size, out = request.files, request.top_k, request.batch_size, request.out
    model = labeller(request.ckpt, cfg.get("data"))
    classes, channels, size = model.spec["classes"], model.spec["channels"], model.spec["image_size"]
    if top_k > len(classes):
        raise ConfigError("top_k", f"must be at most the number of classes ({len(classes)}), got {top_k}")
    result = Labelled(out, model.what)
    native = NativeStderr()
    try:
        with progress(bool(cfg.get("quiet")) or len(files) <= batch_size) as bar:
            task, shown = bar.add_task("labelling", total=len(files)), 0.0
            for start in range(0, len(files), batch_size):
                read, images = [], []
                for path in files[start:start + batch_size]:
                    try:
                        images.append(read_image(path, channels, size, native))
                        read.append(path)
                    except Unreadable as err:
                        result.unreadable.append((str(path), str(err)))
                    bar.advance(task)
                    if time.monotonic() - shown > 0.1:  # redrawn ten times a second at most
                        bar.refresh()
                        shown = time.monotonic()
                if images:
                    result.rows += batch_rows(model, read, torch.stack(images), top_k)
    finally:
        native.close()
    if not result.rows:
        first = result.unreadable[0]
        raise ConfigError("input", f"none of the {len(files)} files could be read; {first[0]}: {first[1]}")
    if request.folder and all(Path(r[0]).parent.name in classes for r in result.rows):
        result.correct = sum(Path(r[0]).parent.name == r[1] for r in result.rows)

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header(top_k))
            writer.writerows(result.rows)

    try:
        with folders_removed_on_failure(out.parent):
            write_atomic(out, write_csv)
    except OSError as err:
        raise ConfigError("out", f"cannot write {out}: {err.strerror or err}") from None
    return result

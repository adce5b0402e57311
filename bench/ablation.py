"""The ablation behind archfuse's training defaults: each change alone, mean +- std over seeds.

Every variant is one ``archfuse-train seeds=N`` run (the same data split, the same seeds), so each row is
a mean and sample standard deviation over N fits. Two families of rows:

- ``+ change``: the former defaults (fp32, no augmentation, constant learning rate, the first of tied
  epochs kept, 10 epochs) with one change alone;
- ``- change``: the current defaults with one change taken back (or one more added).

    python bench/ablation.py                          # seed000 on the digits, 5 seeds (about 1 hour on 2 cores)
    python bench/ablation.py --seeds 3 --only base,defaults
    python bench/ablation.py --extra model=seed003    # another model; any archfuse-train overrides

The table is printed as Markdown, with the fits' training time (the sum over seeds, which moves with
the machine's load) beside each row.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

FORMER = ["trainer.precision=32-true", "data.augment=none", "scheduler=none",
          "callbacks.model_checkpoint.ties=earlier", "trainer.max_epochs=10"]


def former(*changes: str) -> list[str]:
    """The former defaults with ``changes`` over them (an override of the same key replaces it)."""
    keys = {c.split("=", 1)[0] for c in changes}
    return [o for o in FORMER if o.split("=", 1)[0] not in keys] + list(changes)


# name -> (overrides, what the row shows)
VARIANTS: dict[str, tuple[list[str], str]] = {
    "base": (FORMER, "former defaults: fp32, no augmentation, constant lr, first tied epoch, 10 epochs"),
    "+bf16": (former("trainer.precision=bf16-mixed"), "+ bf16 mixed precision"),
    "+ties": (former("callbacks.model_checkpoint.ties=later"), "+ ties to the later epoch"),
    "+cosine": (former("scheduler=cosine"), "+ cosine schedule"),
    "+20ep": (former("trainer.max_epochs=20"), "+ 20 epochs"),
    "+shift": (former("data.augment=shift"), "+ shift augmentation"),
    "+affine": (former("data.augment=affine"), "+ affine augmentation"),
    "+smooth": (former("criterion.label_smoothing=0.1"), "+ label smoothing 0.1"),
    "+adamw": (former("optimizer._target_=torch.optim.AdamW", "optimizer.weight_decay=0.05"),
               "+ AdamW, weight decay 0.05"),
    "defaults": ([], "current defaults: fp32, affine, cosine, later tied epoch, 20 epochs"),
    "bf16": (["trainer.precision=bf16-mixed"], "+ bf16 mixed precision (the speed option)"),
    "-ties": (["callbacks.model_checkpoint.ties=earlier"], "- ties to the later epoch"),
    "-cosine": (["scheduler=none"], "- cosine schedule"),
    "-20ep": (["trainer.max_epochs=10"], "- 20 epochs (10)"),
    "-affine": (["data.augment=none"], "- affine augmentation (none)"),
    "shift": (["data.augment=shift"], "shift instead of affine"),
    "smooth": (["criterion.label_smoothing=0.1"], "+ label smoothing 0.1"),
    "adamw": (["optimizer._target_=torch.optim.AdamW", "optimizer.weight_decay=0.05"],
              "+ AdamW, weight decay 0.05"),
    "warmup": (["scheduler.warmup_epochs=2"], "+ 2 warm-up epochs"),
    "lr2e-3": (["optimizer.lr=0.002"], "learning rate 2e-3 instead of 1e-3"),
}


def run(name: str, overrides: list[str], seeds: int, extra: list[str], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "archfuse.train", f"seeds={seeds}", "quiet=true", *overrides, *extra,
            f"hydra.run.dir={out / name}"]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / name / "summary.json").read_text())


def row(name: str, label: str, s: dict) -> str:
    m = s["metrics"]
    std = lambda k: m.get(f"{k}_std", 0.0)  # noqa: E731
    return (f"| {name} | {label} | {m['test/acc']:.4f} ± {std('test/acc'):.4f} | "
            f"{m['val/acc_best']:.4f} ± {std('val/acc_best'):.4f} | {s['training']['seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--extra", action="append", default=[], help="an override added to every variant")
    parser.add_argument("--out", default="outputs/ablation")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    out = Path(args.out) / time.strftime("%Y-%m-%d_%H-%M-%S")
    from archfuse.host import host_line

    print(host_line())
    print(f"| variant | what | test/acc (mean ± std, {args.seeds} seeds) | val/acc_best | training s |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        overrides, label = VARIANTS[name]
        print(row(name, label, run(name, overrides, args.seeds, args.extra, out)), flush=True)


if __name__ == "__main__":
    main()

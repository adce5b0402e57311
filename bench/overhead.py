"""archfuse's training epoch against a plain PyTorch loop doing the same work.

Both sides train the same Seed000 network (same initial weights) on the same in-memory tensors
(the data module's normalised training split, in the data module's batch order, with its augmentation
drawn from the same random stream), batch size 128, Adam lr 1e-3, the same number of torch threads and
the same precision (``--precision``: 32-true, or bf16-mixed, where the plain loop's forward and loss run
under ``torch.autocast("cpu", dtype=torch.bfloat16)`` as Lightning's do), in one process. The header
names the host's CPU features (AMX, AVX-512, AVX2) and the precision: a ratio holds for that pair.

Before any ratio, a same-work check trains one epoch on each side from the same weights: when the
weights differ by more than the precision's tolerance, or archfuse trained in another precision, the
script stops with an error (exit 1) and prints no ratio. The sides then alternate (plain/archfuse,
then archfuse/plain, ...) so the noise of a shared machine falls on both alike; the result is the
median of the per-round ratios archfuse/plain (their minimum is printed too).

The archfuse side is the real thing: the config is composed by Hydra from conf/ (train.yaml with
``quiet=true data.batch_size=128 trainer.max_epochs=1 trainer.limit_val_batches=0``), the data
module and ClassifierModule come from ``archfuse.validate.validate`` (built by ``archfuse.build``) and the Trainer from
``archfuse.trainer.build_trainer`` -- so TensorBoard logging is on (log_every_n_steps 10),
ModelCheckpoint is as configured (monitor val/acc, save_last), the progress bar and model summary
are off (quiet mode). A fresh Trainer is built for each round, outside the timed window.

Timed windows on the archfuse side (a callback takes perf_counter stamps; Lightning calls it first
at epoch start, and before ModelCheckpoint at epoch end):
  batches  on_train_epoch_start -> on_train_epoch_end: the sampler's iterator and every training
           step (forward, loss, accuracy metric, self.log, backward, Adam step, hooks).
  epoch    on_train_epoch_start -> on_train_end: adds the end-of-epoch work (train/acc compute and
           logging, ModelCheckpoint writing last.ckpt, logger flush).
  fit      the whole trainer.fit call (adds Trainer set-up / tear-down per fit).
The plain side times its epoch: permutation, index batches, the data module's augmentation (affine, from
the same random stream), forward, loss, backward, Adam step.

    python bench/overhead.py                        # digits (1167 training images), 5 rounds, 32-true
    python bench/overhead.py --precision bf16-mixed  # both sides under bf16 autocast
    python bench/overhead.py --data random --samples 6000
    python bench/overhead.py --breakdown             # toggles: what the overhead is made of
    python bench/overhead.py --profile               # cProfile of one archfuse epoch
    python bench/overhead.py --accounting --variants full,no_acc,no_steplog,bare
        # time the shared compute on both sides: the framework's own ms per epoch, per variant
"""

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent


# Largest |weight difference| after one epoch that still counts as the same work. In fp32 both sides run
# the same kernels in the same order (0 here); bf16 autocast rounds the same way on both sides too, the
# margin covers kernels that pick a different reduction order between calls.
TOLERANCE = {"32-true": 1e-5, "bf16-mixed": 1e-3}


# -- configuration -----------------------------------------------------------------------------
def compose_config(threads: int, out_dir: str, extra: list[str] = (), precision: str = "32-true") -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir

    overrides = [
        "quiet=true", "data.batch_size=128", "trainer.max_epochs=1", "trainer.limit_val_batches=0",
        f"trainer.num_threads={threads}", f"paths.output_dir={out_dir}", f"paths.run_dir={out_dir}/run",
        f"trainer.precision={precision}", *extra,
    ]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def random_datamodule(samples: int, seed: int = 0):
    """MNIST-shaped random images (1x28x28, 10 classes) through archfuse's own TensorDataModule."""
    from archfuse.data.datamodule import Arrays, TensorDataModule

    class RandomDataModule(TensorDataModule):
        def load_arrays(self) -> Arrays:
            g = torch.Generator().manual_seed(seed)
            n_test = max(samples // 10, 10)
            x = torch.rand(samples + n_test, 1, 28, 28, generator=g)
            y = torch.randint(0, 10, (samples + n_test,), generator=g)
            return Arrays(x[:samples], y[:samples], x[samples:], y[samples:])

    return RandomDataModule(batch_size=128, num_workers=0, val_fraction=0.1, train_subset=None, seed=0,
                            augment="none", shift=0.0, rotation=0.0, scale=0.0, shear=0.0)


# -- variants of the archfuse side (for --breakdown) --------------------------------------------
def module_class(variant: str):
    from archfuse.module import ClassifierModule

    if variant in ("full", "no_logger", "no_ckpt"):
        return ClassifierModule

    class Variant(ClassifierModule):
        def on_train_epoch_end(self):  # each variant logs train/acc its own way (or not)
            self.train_acc.reset()

        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y)
            if variant == "step_acc":  # the train accuracy as a metric forward with a log every step
                if not hasattr(self, "step_metric"):  # with its argument checks, as it was
                    from torchmetrics.classification import MulticlassAccuracy

                    self.step_metric = MulticlassAccuracy(num_classes=self.num_classes, average="micro")
                self.step_metric(logits, y)
                self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
                self.log("train/acc", self.step_metric, on_step=False, on_epoch=True, batch_size=len(y))
            elif variant == "no_steplog":  # accuracy metric kept, train/loss not logged
                self.train_acc(logits, y)
                self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
            elif variant == "no_acc":  # train/loss logged every step, no accuracy metric
                self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
            elif variant == "acc_update":  # proposed patch: metric.update only, computed at epoch end
                self.train_acc.update(logits.detach(), y)
                self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True,
                         batch_size=len(y))
                self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
            # "bare": neither
            return loss

    Variant.__name__ = f"ClassifierModule_{variant}"
    return Variant


VARIANT_OVERRIDES = {"no_logger": ["~logger"], "no_ckpt": ["callbacks.model_checkpoint=null"]}


# -- the two sides ------------------------------------------------------------------------------
class Stamps:
    """A Lightning callback (built lazily so this module imports without lightning)."""

    @staticmethod
    def make():
        from lightning.pytorch import Callback

        class _Stamps(Callback):
            def __init__(self):
                self.t = {}

            def on_train_epoch_start(self, trainer, pl_module):
                self.t["start"] = time.perf_counter()
                self.t["cpu_start"] = time.process_time()

            def on_train_epoch_end(self, trainer, pl_module):
                self.t["end"] = time.perf_counter()

            def on_train_end(self, trainer, pl_module):
                self.t["train_end"] = time.perf_counter()
                self.t["cpu_train_end"] = time.process_time()

            def on_fit_end(self, trainer, pl_module):  # after ModelCheckpoint.on_train_end (last.ckpt)
                self.t["fit_end"] = time.perf_counter()

        return _Stamps()


def archfuse_epoch(config: dict, dm, init_state: dict, log_dir: Path, variant: str = "full",
                   profiler: cProfile.Profile | None = None) -> dict:
    from archfuse.build import build_module
    from archfuse.module import ClassifierModule
    from archfuse.trainer import build_trainer

    cls = module_class(variant)
    module = build_module(config, dm.input_shape, dm.num_classes)
    if cls is not ClassifierModule:  # the same built objects in the variant's module
        module = cls(net=module.net, criterion=module.criterion, optimizer=module.optimizer_factory,
                     scheduler=module.scheduler_factory, recipe=module.recipe, ensemble=module.ensemble,
                     input_shape=dm.input_shape, num_classes=dm.num_classes, seed=module.seed,
                     fit_epochs=module.fit_epochs, config=config)
    module.net.load_state_dict(init_state)
    trainer = build_trainer(config, log_dir, quiet=True)
    stamps = Stamps.make()
    trainer.callbacks.insert(0, stamps)
    gc.collect()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    trainer.fit(module, datamodule=dm)
    if profiler is not None:
        profiler.disable()
    t1 = time.perf_counter()
    assert trainer.global_step == len(dm.train_dataloader()), "the epoch did not run all batches"
    t = stamps.t
    return {"batches": t["end"] - t["start"], "epoch": t["train_end"] - t["start"], "precision": trainer.precision,
            "to_fit_end": t["fit_end"] - t["start"], "fit": t1 - t0, "module": module,
            "cpu": t["cpu_train_end"] - t["cpu_start"]}


def plain_epoch(dm, init_state: dict, return_net: bool = False, precision: str = "32-true"):
    from archfuse.models.seed000 import Seed000
    from archfuse.randomness import epoch_seed

    x, idx = dm._split["train"]
    y = dm._labels["train"]
    c, h, w = dm.input_shape
    net = Seed000(c, dm.num_classes, (h, w))
    net.load_state_dict(init_state)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    # The data module's streams for epoch 0: the batch order, and the augmentation (conf/data: affine).
    g = torch.Generator().manual_seed(dm.shuffle_seed + 0)
    order = idx[torch.randperm(len(idx), generator=g)]
    stream = torch.Generator().manual_seed(epoch_seed(dm.shuffle_seed, 0, 0) + 1)
    bf16 = precision == "bf16-mixed"
    for batch in order.split(dm.batch_size):
        xb, yb = x[batch], y[batch]
        if dm.augment.active:
            xb = dm.augment(xb, stream, dm._blank)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # Lightning's bf16-mixed does the same
            loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    elapsed = (time.perf_counter() - t0, time.process_time() - c0)
    return (elapsed, net) if return_net else elapsed


# -- main ---------------------------------------------------------------------------------------
def setup(args, out_dir: str, extra: list[str] = ()):
    from archfuse.build import build_module
    from archfuse.validate import validate

    config = compose_config(args.threads, out_dir, list(extra), args.precision)
    if args.data == "digits":
        parts = validate(config)
        dm, module = parts.datamodule, parts.module
    else:
        dm = random_datamodule(args.samples)
        module = build_module(config, dm.input_shape, dm.num_classes)
    dm.setup()
    return config, dm, {k: v.clone() for k, v in module.net.state_dict().items()}


def quiet_warnings() -> None:
    from archfuse.trainer import quiet_lightning

    quiet_lightning(True)
    # With validation off, ModelCheckpoint warns once per fit that val/acc was never logged.
    warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*You defined a `validation_step` but have no `val_dataloader`.*")


def header(args) -> None:
    from archfuse.host import host_line

    print(host_line())
    sides = "both sides" if args.plain_precision == args.precision else f"archfuse; plain loop {args.plain_precision}"
    print(f"precision: {args.precision} on {sides}; threads={torch.get_num_threads()} torch={torch.__version__}")


def same_work(args, config: dict, dm, init: dict, out: Path) -> None:
    """One epoch on each side from the same weights must end at the same weights (within the precision's
    tolerance); otherwise the sides do different work and no ratio of theirs means anything: stop."""
    _, net = plain_epoch(dm, init, return_net=True, precision=args.plain_precision)
    a = archfuse_epoch(config, dm, init, out)
    if str(a["precision"]) != args.precision:
        raise SystemExit(f"error: archfuse trained in {a['precision']}, not {args.precision}; no ratio")
    diff = max((p - q).abs().max().item() for p, q in zip(net.parameters(), a["module"].net.parameters()))
    tol = TOLERANCE[args.precision]
    print(f"check: max |weight difference| after one epoch, plain vs archfuse: {diff:.2e} (tolerance {tol:.0e})")
    if not diff <= tol:
        raise SystemExit(f"error: the two sides did not do the same work (max |weight difference| {diff:.2e} > "
                         f"{tol:.0e} at {args.precision}); no ratio")


def run_ratio(args, out: Path) -> None:
    config, dm, init = setup(args, str(out))
    n = len(dm._split["train"][1])
    print(f"data={args.data} train samples={n} batches/epoch={len(dm.train_dataloader())} batch_size=128")
    print(f"trainer: archfuse.trainer.build_trainer(composed train.yaml, quiet=True): logger="
          f"{config['logger']['_target_'].rsplit('.', 1)[-1]} log_every_n_steps="
          f"{config['trainer']['log_every_n_steps']}, ModelCheckpoint(monitor=val/acc, save_last=True), "
          f"progress bar off, limit_val_batches=0, max_epochs=1")
    same_work(args, config, dm, init, out / "check")
    for w in range(args.warmup):
        plain_epoch(dm, init, precision=args.plain_precision)
        archfuse_epoch(config, dm, init, out / f"warmup{w}")
    rows = []
    for r in range(args.rounds):
        first_plain = r % 2 == 0
        if first_plain:
            p, pc = plain_epoch(dm, init, precision=args.plain_precision)
        a = archfuse_epoch(config, dm, init, out / f"round{r}")
        if not first_plain:
            p, pc = plain_epoch(dm, init, precision=args.plain_precision)
        a.pop("module")
        a.pop("precision")
        rows.append((p, pc, a))
        print(f"round {r}: plain {p:.3f}s (cpu {pc:.3f}s) | archfuse epoch {a['epoch']:.3f}s (cpu {a['cpu']:.3f}s) "
              f"+last.ckpt {a['to_fit_end']:.3f}s fit {a['fit']:.3f}s | ratio wall {a['epoch'] / p:.3f} "
              f"cpu {a['cpu'] / pc:.3f} ({'plain first' if first_plain else 'archfuse first'})")
        sys.stdout.flush()
    med = statistics.median
    print(f"median plain epoch {med([p for p, _, _ in rows]):.3f}s wall / {med([c for _, c, _ in rows]):.3f}s cpu; "
          f"archfuse epoch {med([a['epoch'] for _, _, a in rows]):.3f}s wall / "
          f"{med([a['cpu'] for _, _, a in rows]):.3f}s cpu")
    print(f"median last.ckpt write at train end: {med([a['to_fit_end'] - a['epoch'] for _, _, a in rows]):.3f}s; "
          f"median Trainer set-up+tear-down inside fit (fit - epoch - last.ckpt): "
          f"{med([a['fit'] - a['to_fit_end'] for _, _, a in rows]):.3f}s")
    cpu = [a['cpu'] / c for _, c, a in rows]
    print(f"median ratio archfuse/plain, epoch, process CPU time: {med(cpu):.3f} (min {min(cpu):.3f})")
    for key in ("batches", "epoch", "to_fit_end", "fit"):
        rs = [a[key] / p for p, _, a in rows]
        q = statistics.quantiles(rs, n=4) if len(rs) >= 2 else [rs[0], rs[0], rs[0]]
        print(f"median ratio archfuse/plain, {key:<10} wall time: {med(rs):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}, "
              f"min {min(rs):.3f})")


def run_breakdown(args, out: Path) -> None:
    variants = args.variants.split(",")
    setups = {}
    for v in variants:
        setups[v] = setup(args, str(out / v), VARIANT_OVERRIDES.get(v, []))
    dm0 = setups[variants[0]][1]
    same_work(args, *setups[variants[0]], out / "check")
    print(f"breakdown: data={args.data} train samples={len(dm0._split['train'][1])} "
          f"threads={torch.get_num_threads()}; each variant alternates with the plain loop")
    for v in variants:  # warm-up
        config, dm, init = setups[v]
        archfuse_epoch(config, dm, init, out / v / "warmup", variant=v)
    plain_epoch(dm0, setups[variants[0]][2], precision=args.plain_precision)
    ratios = {v: {"wall": [], "cpu": []} for v in variants}
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            config, dm, init = setups[v]
            if r % 2 == 0:
                p, pc = plain_epoch(dm, init, precision=args.plain_precision)
                a = archfuse_epoch(config, dm, init, out / v / f"round{r}", variant=v)
            else:
                a = archfuse_epoch(config, dm, init, out / v / f"round{r}", variant=v)
                p, pc = plain_epoch(dm, init, precision=args.plain_precision)
            ratios[v]["wall"].append(a["epoch"] / p)
            ratios[v]["cpu"].append(a["cpu"] / pc)
        print(f"round {r} (cpu ratio): " + "  ".join(f"{v} {ratios[v]['cpu'][-1]:.3f}" for v in variants))
        sys.stdout.flush()
    print("median ratio archfuse/plain per variant, epoch window (process CPU time / wall time):")
    descr = {
        "full": "archfuse as it is",
        "no_acc": "training_step without the train accuracy metric",
        "no_steplog": "training_step without self.log('train/loss') every step",
        "bare": "training_step without metric and without step logging",
        "acc_update": "train_acc.update(logits.detach()) + log detached loss, train/acc logged at epoch end",
        "step_acc": "train_acc(logits, y) and self.log('train/acc', metric) every step (archfuse before)",
        "no_logger": "~logger (no TensorBoard logger)",
        "no_ckpt": "callbacks.model_checkpoint=null",
    }
    for v in variants:
        c, w = statistics.median(ratios[v]["cpu"]), statistics.median(ratios[v]["wall"])
        print(f"  {v:<11} cpu {c:.3f}  wall {w:.3f}   {descr.get(v, '')}")


class ComputeTimer:
    """Wraps the compute both sides share (model forward, cross-entropy, backward, Adam's update, zero_grad,
    batch indexing) with perf_counter; epoch time minus this is the framework's own time, a figure far
    less exposed to the machine's noise than a ratio of two whole epochs."""

    def __init__(self):
        import torch.optim.adam as adam_mod

        from archfuse.data.batches import TensorBatches
        from archfuse.models.seed000 import Seed000

        self.total = 0.0
        targets = [(Seed000, "forward"), (F, "cross_entropy"), (torch.autograd, "backward"), (adam_mod, "adam"),
                   (torch.optim.Optimizer, "zero_grad"), (TensorBatches, "__getitem__")]
        for owner, name in targets:
            setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total += time.perf_counter() - t0
        return timed


def run_accounting(args, out: Path) -> None:
    variants = args.variants.split(",") if args.variants_given else ["full"]
    setups = {v: setup(args, str(out / v), VARIANT_OVERRIDES.get(v, [])) for v in variants}
    config, dm, init = setups[variants[0]]
    same_work(args, config, dm, init, out / "check")
    timer = ComputeTimer()
    for v in variants:
        archfuse_epoch(*setups[v][:2], setups[v][2], out / v / "warmup", variant=v)
    plain_epoch(dm, init, precision=args.plain_precision)
    rest = {v: [] for v in ["plain", *variants]}
    comp = []
    for r in range(args.rounds):
        sides = ["plain", *variants] if r % 2 == 0 else [*variants[::-1], "plain"]
        line = []
        for side in sides:
            timer.total = 0.0
            if side == "plain":
                wall = plain_epoch(dm, init, precision=args.plain_precision)[0]
                comp.append(timer.total)
            else:
                c, d, i = setups[side]
                wall = archfuse_epoch(c, d, i, out / side / f"round{r}", variant=side)["epoch"]
            rest[side].append(wall - timer.total)
            line.append(f"{side} {1e3 * rest[side][-1]:.1f}")
        print(f"round {r}: ms/epoch outside the shared compute: " + "  ".join(line))
        sys.stdout.flush()
    med = statistics.median
    steps = len(dm.train_dataloader())
    c = med(comp)
    print(f"median compute (forward, loss, backward, Adam update, zero_grad, indexing) {c:.3f}s/epoch, {steps} steps")
    p = med(rest["plain"])
    print(f"  plain loop   {1e3 * p:6.1f} ms/epoch outside the compute (Adam state set-up, loop, permutation)")
    for v in variants:
        a = med(rest[v])
        print(f"  {v:<12} {1e3 * a:6.1f} ms/epoch outside the compute; {1e3 * (a - p) / steps:5.2f} ms/step more than "
              f"the plain loop; accounting ratio (compute + rest) / (compute + plain rest) {(c + a) / (c + p):.3f}")


def run_profile(args, out: Path) -> None:
    config, dm, init = setup(args, str(out))
    archfuse_epoch(config, dm, init, out / "warmup")
    prof = cProfile.Profile()
    a = archfuse_epoch(config, dm, init, out / "profiled", profiler=prof)
    stats = pstats.Stats(prof)
    total = a["fit"]
    # Inclusive time of the calls that make up a step, and of Lightning's own machinery around them.
    groups = {
        "model forward (Seed000.forward)": ("seed000.py", "forward"),
        "cross_entropy": ("functional.py", "cross_entropy"),
        "backward (Tensor.backward)": ("_tensor.py", "backward"),
        "Adam.step": ("adam.py", "step"),
        "zero_grad": ("optimizer.py", "zero_grad"),
        "train_acc(logits, y) (Metric.forward)": ("metric.py", "forward"),
        "LightningModule.log": ("module.py", "log"),
        "ModelCheckpoint.on_train_epoch_end": ("model_checkpoint.py", "on_train_epoch_end"),
        "logger connector update_train_step_metrics": ("logger_connector.py", "update_train_step_metrics"),
        "logger connector update_train_epoch_metrics": ("logger_connector.py", "update_train_epoch_metrics"),
        "TensorBoardLogger.log_metrics": ("tensorboard.py", "log_metrics"),
        "Trainer._run (fit set-up + loops)": ("trainer.py", "_run"),
        "fit_loop.run": ("fit_loop.py", "run"),
        "training_epoch_loop.advance (all steps)": ("training_epoch_loop.py", "advance"),
        "data fetcher __next__": ("fetchers.py", "__next__"),
    }
    found = {}
    for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
        for label, (f, fn) in groups.items():
            if file.endswith(f) and func == fn:
                found[label] = found.get(label, 0.0) + ct
    print(f"cProfile of one archfuse fit (max_epochs=1; profiler overhead inflates Python-heavy parts): "
          f"fit {total:.3f}s under the profiler")
    for label in groups:
        if label in found:
            print(f"  {found[label]:8.3f}s  {label}")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(args.top)
    print("top functions by own time:")
    print("\n".join(buf.getvalue().splitlines()[-args.top - 2:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=sorted(TOLERANCE), default="32-true",
                    help="both sides: 32-true, or bf16-mixed (the plain loop under the same bf16 autocast)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--data", choices=["digits", "random"], default="digits")
    ap.add_argument("--samples", type=int, default=6000, help="training images for --data random")
    ap.add_argument("--breakdown", action="store_true", help="ratios of archfuse variants (toggles)")
    ap.add_argument("--variants", default="full,no_acc,no_steplog,bare,no_logger")
    ap.add_argument("--profile", action="store_true", help="cProfile one archfuse epoch")
    ap.add_argument("--accounting", action="store_true",
                    help="time the shared compute on both sides; report the framework's own ms per epoch")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--plain-precision", choices=sorted(TOLERANCE), default=None,
                    help="the plain loop's precision if not --precision's (to see the same-work check stop a run)")
    args = ap.parse_args()
    args.plain_precision = args.plain_precision or args.precision
    args.variants_given = any(a.startswith("--variants") for a in sys.argv[1:])
    torch.set_num_threads(args.threads)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    quiet_warnings()
    header(args)
    with tempfile.TemporaryDirectory(prefix="archfuse-overhead-") as tmp:
        out = Path(tmp)
        if args.profile:
            run_profile(args, out)
        elif args.accounting:
            run_accounting(args, out)
        elif args.breakdown:
            run_breakdown(args, out)
        else:
            run_ratio(args, out)


if __name__ == "__main__":
    main()

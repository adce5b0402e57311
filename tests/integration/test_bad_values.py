"""Every bad value is one clear error, through the real command line: exit code 2, stderr exactly one line
``archfuse-train: error: KEY: ...`` (``archfuse-eval: error: ...``), no traceback, nothing on stdout, and
nothing left behind (no run directory, no outputs/eval/<stamp>, no empty outputs/ folder).

One table across every config group, several recipes and ensemble strategies, the sweeper and
archfuse-eval. The cases run two at a time (each process with one torch thread) as soon as the module
starts; each test waits for its own case."""

import os
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import run_cli

HOME = os.path.expanduser("~")
SWEEP = ["-m", "search=width_depth_activation"]
EVAL = "archfuse.eval"

# (arguments, the start of the error after "PROG: error: ", entry point)
CASES: list[tuple[list[str], str, str]] = [
    # data
    (["data.batch_size=0"], "data.batch_size: must be a positive integer, got 0", ""),
    (["data.val_fraction=1.5"], "data.val_fraction: must be between 0 and 1 (exclusive), got 1.5", ""),
    (["data.augment=flip"], "data.augment: unknown augmentation 'flip'; choose one of none, shift, affine", ""),
    # written as users write it: the ~ is expanded, and the data module names the folder it looked in
    (["data=mnist", "data.root=~/no_such_folder"],
     f"data.root: MNIST not found: {HOME}/no_such_folder/MNIST/raw/train-images-idx3-ubyte is missing", ""),
    # model
    (["model=convnet", "model.width=-3"], "model.width: must be a positive int, got -3", ""),
    (["model=convnet", "model.activation=swish"], "model.activation: unknown activation 'swish'; choose one of", ""),
    (["model=convnet", "model.kernel_size=4"], "model.kernel_size: must be odd so the padding keeps the size", ""),
    # recipes
    (["recipe=prune", "recipe.prune.amount=1.5"], "recipe.prune.amount: must be a number in [0, 1), got 1.5", ""),
    (["recipe=prune_channels", "recipe.prune_channels.importance=l3"],
     "recipe.prune_channels.importance: unknown value 'l3'; choose one of l1, l2, bn_scale, taylor", ""),
    (["recipe=distill"], "recipe.distill.teacher: give the teacher", ""),
    (["recipe=quantize", "recipe.quantize.mode=int4"], "recipe.quantize.mode: unknown mode 'int4'", ""),
    (["recipe=cut", "recipe.cut.last=99"], "recipe.cut.last: the model has 3 conv blocks; at most 2 can be cut", ""),
    # ensemble strategies
    (["ensemble=nonsense"], "ensemble: unknown option 'nonsense'; choose one of bagging, cascade, concat, mean, "
                            "none, stack, vote, weighted (the files of conf/ensemble/)", ""),
    (["ensemble=mean", "ensemble.combine=median"], "ensemble.combine: unknown combination 'median'", ""),
    (["ensemble=weighted", "ensemble.fit=ml"], "ensemble.fit: unknown fit 'ml'", ""),
    (["ensemble=bagging", "ensemble.sampling=jackknife"], "ensemble.sampling: unknown sampling 'jackknife'", ""),
    (["ensemble=stack", "ensemble.oof_folds=1"], "ensemble.oof_folds: must be 0 (fit on a held-out share", ""),
    (["ensemble=cascade", "ensemble.target=fastest"], "ensemble.target: unknown target 'fastest'", ""),
    # trainer
    (["trainer.max_epochs=0"], "trainer.max_epochs: must be a positive integer, got 0", ""),
    (["trainer.precision=42"], "trainer: lightning.pytorch.Trainer rejected its arguments: Precision 42 is invalid", ""),
    (["trainer.max_epoch=3"], "trainer.max_epoch: unknown key; trainer accepts: accelerator,", ""),
    # callbacks
    (["callbacks.model_checkpoint.monitor=val_acc"],
     "callbacks.model_checkpoint.monitor: the run logs no metric 'val_acc'; monitor one of val/acc,", ""),
    (["callbacks.model_checkpoint.mode=middle"], "callbacks.model_checkpoint: archfuse.callbacks.BestCheckpoint "
                                                 "rejected its arguments: `mode` can be min, max", ""),
    # scheduler
    (["scheduler=plateau", "scheduler.mode=sideways"],
     "scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau rejected its arguments: mode sideways is unknown", ""),
    (["scheduler.warmup_epochs=-3"], "scheduler.warmup_epochs: must be an integer >= 0, got -3", ""),
    (["scheduler=exponential"], "scheduler: unknown option 'exponential'; choose one of cosine, none, plateau, step",
     ""),
    # optimizer
    (["optimizer.lr=-1"], "optimizer: torch.optim.Adam rejected its arguments: Invalid learning rate", ""),
    (["optimizer._target_=torch.optim.Adamw"], "optimizer._target_: cannot import 'torch.optim.Adamw'", ""),
    # criterion
    (["criterion.label_smoothing=2"], "criterion: torch.nn.CrossEntropyLoss failed on a batch of logits and labels: "
                                      "label_smoothing must be between 0.0 and 1.0", ""),
    # logger
    (["logger.name=[a,b]"], "logger: lightning.pytorch.loggers.TensorBoardLogger cannot name its folder", ""),
    (["logger=wandb"], "logger: unknown option 'wandb'; choose one of tensorboard (the files of conf/logger/)", ""),
    # paths: checked before Hydra creates any directory
    (["paths.output_dir=/proc/forbidden"], "paths.output_dir: cannot create /proc/forbidden: no folder can be made "
                                           "in /proc", ""),
    (["paths.output_dir=/etc/hostname/runs"], "paths.output_dir: cannot create /etc/hostname/runs: /etc/hostname "
                                              "is a file, not a folder", ""),
    # cv, seeds, seed, cost
    (["cv.folds=1"], "cv.folds: must be 0 (no cross-validation) or at least 2, got 1", ""),
    (["cv.folds=1000"], "cv.folds: 1000 folds need at least 1000 images of every class", ""),
    (["cv.nfolds=3"], "cv.nfolds: unknown key; cv accepts: folds", ""),
    (["seeds=2", "seed=null"], "seed: must be an integer >= 0, got None", ""),
    (["seeds=0"], "seeds: must be a positive integer, got 0", ""),
    (["seed=abc"], "seed: must be an integer >= 0, got 'abc'", ""),
    (["cost.batch_size=0"], "cost.batch_size: must be a positive integer, got 0", ""),
    (["cost.max_seconds=-1"], "cost.max_seconds: must be a number of seconds > 0, or null, got -1", ""),
    # objective, ckpt_path
    (["objective=test/acc"], "objective: test/acc is measured on the test split", ""),
    (["objective_direction=sideways"], "objective_direction: must be max or min", ""),
    (["ckpt_path=/no/such/last.ckpt"], "ckpt_path: /no/such/last.ckpt does not exist", ""),
    # experiment, debug
    (["experiment=nonsense"], "experiment: unknown option 'nonsense'; choose one of activations_digits,", ""),
    (["debug=fastest"], "debug: unknown option 'fastest'; choose one of fast, overfit", ""),
    # the sweeper and the search space
    ([*SWEEP, "hydra.sweeper.n_trial=2"], "hydra.sweeper.n_trial: unknown key; hydra.sweeper accepts: constraints,", ""),
    ([*SWEEP, "hydra.sweeper.n_trials=-1"], "hydra.sweeper.n_trials: must be an integer >= 1, got -1", ""),
    ([*SWEEP, "hydra.sweeper.sampler=nope"], "hydra.sweeper.sampler: unknown sampler 'nope'; choose one of:", ""),
    ([*SWEEP, "hydra.sweeper.pruner=nope"], "hydra.sweeper.pruner: unknown pruner 'nope'; choose one of:", ""),
    ([*SWEEP, "hydra.sweeper.max_failure_rate=2"], "hydra.sweeper.max_failure_rate: must be a fraction between", ""),
    ([*SWEEP, "hydra.sweeper.constraints={cost/params:abc}"],
     "hydra.sweeper.constraints.cost/params: must be an upper bound (a number), got 'abc'", ""),
    ([*SWEEP, "hydra.sweeper.grace_period=-1"], "hydra.sweeper.grace_period: must be an integer >= 2, got -1", ""),
    (["-m", "search=nonsense"], "search: unknown option 'nonsense'; choose one of grid, mlp_layers,", ""),
    # archfuse-eval
    ([], "ckpt: missing: give the checkpoint to test, archfuse-eval ckpt=PATH", EVAL),
    (["ckpt=/no/such/best.ckpt"], "ckpt: /no/such/best.ckpt does not exist; give the path of a .ckpt file", EVAL),
    (["ckpt=/etc/hostname"], "ckpt: /etc/hostname is not a readable checkpoint", EVAL),
    (["ckt=a.ckpt"], "ckt: unknown key; the config accepts: ckpt, data, paths, quiet, trainer", EVAL),
    (["ckpt=a.ckpt", "paths.output_dir=/proc/forbidden"], "ckpt: a.ckpt does not exist", EVAL),  # eval writes nothing
]


def case_id(case: tuple[list[str], str, str]) -> str:
    args, message, entry = case
    return ("eval:" if entry else "") + message.split(":")[0].split(" ")[0] + ":" + "|".join(args)[-40:]


def run_case(case: tuple[list[str], str, str], cwd: Path) -> subprocess.CompletedProcess:
    args, _, entry = case
    extra = [] if entry else ["quiet=true"]
    return run_cli(cwd, *args, *extra, entry=entry or "archfuse.train", check=False, timeout=180)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, tuple[Path, Future]]:
    """Every selected case started at once, two processes at a time: id -> (its working directory, result)."""
    selected = {item.callspec.id for item in request.session.items
                if item.module is request.module and "case" in getattr(getattr(item, "callspec", None), "params", {})}
    pool = ThreadPoolExecutor(2)
    started = {}
    for case in CASES:
        if case_id(case) in selected:
            cwd = tmp_path_factory.mktemp("bad")
            started[case_id(case)] = (cwd, pool.submit(run_case, case, cwd))
    yield started
    pool.shutdown(cancel_futures=True)


def test_the_table_covers_every_group():
    keys = {message.split(":")[0].split(".")[0] for _, message, entry in CASES if not entry}
    assert {"data", "model", "recipe", "ensemble", "trainer", "callbacks", "scheduler", "optimizer", "criterion",
            "logger", "paths", "cv", "seeds", "seed", "cost", "objective", "objective_direction", "ckpt_path",
            "experiment", "debug", "hydra", "search"} <= keys
    assert len({m.split(":")[0] for _, m, _ in CASES if m.startswith("recipe.")}) >= 5
    assert len({a[0] for a, m, _ in CASES if m.startswith("ensemble.")}) >= 5
    assert len(CASES) >= 40 and len({case_id(c) for c in CASES}) == len(CASES)


def group_of(case: tuple[list[str], str, str]) -> str:
    """The config group a case is about (data, recipe, hydra, ...); archfuse-eval's cases are one group."""
    _, message, entry = case
    return "eval" if entry else message.split(":")[0].split(".")[0]


def with_marks(cases: list[tuple[list[str], str, str]]) -> list:
    """The first case of each group runs in the default suite, the others with the slow tests (CI runs
    both): each case is a process of its own, about 4 s on 2 cores."""
    seen: set[str] = set()
    params = []
    for case in cases:
        first = group_of(case) not in seen
        seen.add(group_of(case))
        params.append(pytest.param(case, id=case_id(case), marks=() if first else pytest.mark.slow))
    return params


@pytest.mark.parametrize("case", with_marks(CASES))
def test_bad_value_is_one_clear_line(case, outcomes):
    args, message, entry = case
    cwd, future = outcomes[case_id(case)]
    proc = future.result()
    prog = "archfuse-eval" if entry else "archfuse-train"
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: {message}"), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == "", proc.stdout
    # Nothing at all: no file, no run directory, not even an empty outputs/runs
    assert sorted(p.relative_to(cwd).as_posix() for p in cwd.rglob("*")) == []


def test_a_path_from_the_home_directory_is_expanded_and_a_delete_still_works(workdir):
    """``data.root=~/x`` as users type it (the shell leaves it alone after =) reaches the config as the
    home directory's folder; ``~KEY`` is still Hydra's delete."""
    proc = run_cli(workdir, "data=mnist", "data.root=~/x", "~callbacks.resume_checkpoint", "--cfg", "job")
    assert f"  root: {HOME}/x\n" in proc.stdout
    assert "model_checkpoint:" in proc.stdout and "resume_checkpoint" not in proc.stdout

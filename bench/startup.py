"""Start-up time of archfuse-train: ``--help``, and a real run up to its first training step.

The run is the real CLI, ``python -m archfuse.train quiet=true <small overrides>``, with one extra
callback added through the config (no change to src/):

    +callbacks.first_step._target_=bench.startup.FirstStep

``bench`` is importable because this script puts the repository root on PYTHONPATH. The callback
prints wall-clock stamps (time.time()) at the points of the run it sees -- when the Trainer builds
it, fit start, sanity check, train start -- and at ``on_train_batch_start`` of the first batch it
prints the last stamp and ends the process with ``os._exit(0)``. The parent takes time.time()
just before it starts the child, so the figure is "command start -> first training step", including
the interpreter start, imports, Hydra composition, config validation, data loading and Lightning's
sanity-check validation.

    python bench/startup.py [--repeats 5] [--importtime]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAMP = "ARCHFUSE_BENCH_STAMP"
RUN_OVERRIDES = ["quiet=true", "trainer.max_epochs=1", "data.train_subset=256"]


class FirstStep:
    """A Lightning callback in duck type (Lightning only calls the hooks it finds), so that importing
    this module costs nothing; it subclasses lightning's Callback when instantiated."""

    def __new__(cls, *args, **kwargs):
        from lightning.pytorch import Callback

        class _FirstStep(Callback):
            def __init__(self):
                _stamp("trainer_build")

            def on_fit_start(self, trainer, pl_module):
                _stamp("fit_start")

            def on_sanity_check_start(self, trainer, pl_module):
                _stamp("sanity_start")

            def on_sanity_check_end(self, trainer, pl_module):
                _stamp("sanity_end")

            def on_train_start(self, trainer, pl_module):
                _stamp("train_start")

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                _stamp("first_step")
                if _PROFILER is not None:  # --profile: the driver below runs the CLI under cProfile
                    _PROFILER.disable()
                    _PROFILER.dump_stats(os.environ["ARCHFUSE_BENCH_PROFILE"])
                sys.stdout.flush()
                os._exit(0)

        return _FirstStep()


_PROFILER = None


def _stamp(name: str) -> None:
    print(f"{STAMP} {name} {time.time():.6f}", flush=True)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def time_help() -> float:
    exe = Path(sys.executable).parent / "archfuse-train"
    t0 = time.perf_counter()
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=child_env())
    dt = time.perf_counter() - t0
    if out.returncode != 0 or "archfuse-train" not in out.stdout:
        raise SystemExit(f"archfuse-train --help failed:\n{out.stdout}\n{out.stderr}")
    return dt


def time_python(code: str = "pass") -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env(), capture_output=True)
    return time.perf_counter() - t0


FLOORS = {  # what the imports alone cost, outside archfuse
    # os._exit: the archfuse run ends that way too, so interpreter tear-down is left out of both.
    "python -c pass": "import os; os._exit(0)",
    "import torch": "import torch, os; os._exit(0)",
    "import lightning.pytorch (pulls torchmetrics, torchvision, scipy)": "import lightning.pytorch, os; os._exit(0)",
}


def run_cmd(out_dir: str, extra: list[str] = ()) -> list[str]:
    return [sys.executable, *extra, "-m", "archfuse.train", *RUN_OVERRIDES, f"paths.output_dir={out_dir}",
            "+callbacks.first_step._target_=bench.startup.FirstStep"]


HIDE_DRIVER = """
# Experiment (--hide-optional): what torchmetrics' pending lazy imports (Lightning-AI/torchmetrics#3457)
# would save. torchmetrics is told that torchvision, matplotlib and scipy are absent, so importing it
# skips scipy.signal, torchvision.models and matplotlib. Nothing archfuse runs before the first
# training step needs them (sklearn still imports the parts of scipy it uses).
import re, sys
import lightning_utilities.core.imports as li
HIDE = {"torchvision", "matplotlib", "scipy"}
_available = li.package_available
li.package_available = lambda name: False if name in HIDE else _available(name)
_check = li.RequirementCache._check_requirement
def _hidden(self):
    _check(self)
    if re.split(r"[<>=!~\\[]", self.requirement)[0] in HIDE:
        self.available = False
li.RequirementCache._check_requirement = _hidden
sys.argv = ["archfuse-train", *sys.argv[1:]]
import archfuse.train
archfuse.train.main()
"""


def time_first_step(out_dir: str, threads: int | None, variant: list[str] = (), hide: bool = False) -> dict[str, float]:
    cmd = run_cmd(out_dir) + list(variant)
    if hide:
        cmd = [sys.executable, "-c", HIDE_DRIVER, *cmd[3:]]
    if threads:
        cmd.append(f"trainer.num_threads={threads}")
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=out_dir)
    t_exit = time.time()
    stamps = {m.group(1): float(m.group(2)) - t0 for m in re.finditer(rf"{STAMP} (\w+) ([\d.]+)", out.stdout)}
    if "first_step" not in stamps:
        raise SystemExit(f"no first training step seen (rc {out.returncode}):\n{out.stdout[-2000:]}\n"
                         f"{out.stderr[-3000:]}")
    stamps["process_exit"] = t_exit - t0
    return stamps


# -- import-time breakdown ----------------------------------------------------------------------
PACKAGES = ["torch", "lightning", "lightning_fabric", "lightning_utilities", "torchmetrics", "torchvision",
            "tensorboard", "tensorboardX", "hydra", "omegaconf", "sklearn", "scipy", "numpy", "matplotlib",
            "rich", "yaml", "archfuse", "fsspec", "packaging", "sympy", "PIL", "google", "pandas"]


def parse_importtime(stderr: str) -> tuple[dict[str, float], dict[str, tuple[float, list[str]]], float]:
    """Self time per package (every module counted once, in its own package), and for each package
    the cumulative time of its first import with the chain of modules that pulled it in."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    self_us: dict[str, float] = {}
    for self_t, _, _, name in rows:
        top = name.split(".")[0]
        key = top if top in PACKAGES else "other"
        self_us[key] = self_us.get(key, 0.0) + self_t
    first: dict[str, tuple[float, list[str]]] = {}
    for i, (_, cum_t, level, name) in enumerate(rows):  # children are printed before their parent
        top = name.split(".")[0]
        if name == top and top in PACKAGES and top not in first:
            chain, lvl = [], level
            for _, _, lv, nm in rows[i + 1:]:
                if lv < lvl:
                    chain.append(nm)
                    lvl = lv
                    if lv == 0:
                        break
            first[top] = (cum_t / 1e6, [name, *chain])
    return {k: v / 1e6 for k, v in self_us.items()}, first, sum(r[0] for r in rows) / 1e6


def importtime_breakdown(out_dir: str, cmd: list[str], label: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=out_dir)
    self_s, first, total = parse_importtime(out.stderr)
    print(f"\nimport time of {label} (python -X importtime; the tracing itself adds some time): "
          f"{total:.2f}s of imports in all")
    print("  self time of each package's own modules:")
    for k, v in sorted(self_s.items(), key=lambda kv: -kv[1]):
        if v >= 0.01:
            print(f"    {k:<14} {v:6.3f}s")
    print("  first imported by (cumulative time of that import, the chain from the module up):")
    for k in ("torch", "lightning", "torchmetrics", "torchvision", "scipy", "sympy", "matplotlib", "sklearn",
              "tensorboard", "hydra"):
        if k in first:
            cum, chain = first[k]
            shown = chain if len(chain) <= 8 else chain[:6] + ["..."] + chain[-2:]
            print(f"    {k:<14} {cum:6.3f}s  {' <- '.join(shown)}")


PROFILE_DRIVER = """
import cProfile, sys
import bench.startup as b
b._PROFILER = cProfile.Profile()
sys.argv = ["archfuse-train", *sys.argv[1:]]
b._PROFILER.enable()
import archfuse.train
archfuse.train.main()
"""

PROFILE_GROUPS = [  # (label, file suffix, function): inclusive time from cProfile
    ("imports (all, inclusive; some inside the calls below)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("archfuse.train._train (the task: import archfuse.run.job, then run it)", "archfuse/train.py", "_train"),
    ("archfuse.run.job.run_job (everything after composition)", "archfuse/run/job.py", "run_job"),
    ("  validate: check_keys", "archfuse/validate.py", "check_keys"),
    ("  validate: build_datamodule", "archfuse/build.py", "build_datamodule"),
    ("  validate: build_module (network, ClassifierModule, metrics)", "archfuse/build.py", "build_module"),
    ("  validate: check_forward", "archfuse/models/build.py", "check_forward"),
    ("  validate: check_optimizer", "archfuse/validate.py", "check_optimizer"),
    ("  build_trainer", "archfuse/trainer.py", "build_trainer"),
    ("  trainer.fit (to the first step)", "trainer/trainer.py", "fit"),
    ("    data: load_arrays (load_digits, interpolate, split)", "archfuse/data/digits.py", "load_arrays"),
    ("    sanity check (2 validation batches)", "trainer/trainer.py", "_run_sanity_check"),
    ("    logger: log hyperparameters", "loggers/tensorboard.py", "log_hyperparams"),
]


def profile_startup(out_dir: str, threads: int | None) -> None:
    import pstats

    prof_path = str(Path(out_dir) / "startup.prof")
    cmd = [sys.executable, "-c", PROFILE_DRIVER, *RUN_OVERRIDES, f"paths.output_dir={out_dir}",
           "+callbacks.first_step._target_=bench.startup.FirstStep"]
    if threads:
        cmd.append(f"trainer.num_threads={threads}")
    env = child_env()
    env["ARCHFUSE_BENCH_PROFILE"] = prof_path
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out_dir)
    if not Path(prof_path).exists():
        raise SystemExit(f"profile not written (rc {out.returncode}):\n{out.stderr[-3000:]}")
    stamps = {m.group(1): float(m.group(2)) - t0 for m in re.finditer(rf"{STAMP} (\w+) ([\d.]+)", out.stdout)}
    stats = pstats.Stats(prof_path)
    print(f"\ncProfile of the start-up (first step at {stamps['first_step']:.2f}s under the profiler, "
          f"which slows Python-heavy parts):")
    for label, suffix, func in PROFILE_GROUPS:
        hits = [(ct, nc) for (f, _, fn), (cc, nc, tt, ct, _) in stats.stats.items()
                if fn == func and f.replace("\\", "/").endswith(suffix)]
        if hits:
            ct = max(h[0] for h in hits) if suffix.startswith("<frozen") else sum(h[0] for h in hits)
            print(f"  {ct:7.3f}s  {label}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="trainer.num_threads for the run (default: unset)")
    ap.add_argument("--importtime", action="store_true", help="also print the import-time breakdown")
    ap.add_argument("--profile", action="store_true", help="also cProfile one start-up by phase")
    ap.add_argument("--hide-optional", action="store_true",
                    help="experiment: time the run alternately with torchmetrics' optional imports skipped")
    ap.add_argument("--variant", nargs="*", default=[],
                    help="extra overrides for a second run timed alternately, e.g. trainer.num_sanity_val_steps=0")
    args = ap.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="archfuse-startup-") as tmp:
        time_help()  # warm the file-system cache
        if args.repeats > 0:
            time_first_step(tmp, args.threads)
        if args.repeats > 0:
            floors, helps, runs, vruns = {k: [] for k in FLOORS}, [], [], []
            for r in range(args.repeats):  # alternated, so load changes fall on all of them alike
                for k, code in FLOORS.items():
                    floors[k].append(time_python(code))
                helps.append(time_help())
                runs.append(time_first_step(tmp, args.threads))
                if args.variant or args.hide_optional:
                    vruns.append(time_first_step(tmp, args.threads, args.variant, args.hide_optional))
                s = runs[-1]
                v = f" | variant first step {vruns[-1]['first_step']:.3f}s" if vruns else ""
                print(f"repeat {r}: import lightning.pytorch {floors[list(FLOORS)[-1]][-1]:.3f}s | --help "
                      f"{helps[-1]:.3f}s | first step "
                      f"{s['first_step']:.3f}s (trainer built {s['trainer_build']:.2f}s, fit start "
                      f"{s['fit_start']:.2f}s, sanity check {s['sanity_start']:.2f}-{s['sanity_end']:.2f}s, "
                      f"train start {s['train_start']:.2f}s){v}", flush=True)
            med = statistics.median
            print()
            for k in FLOORS:
                print(f"median of {args.repeats}: {k} {med(floors[k]):.3f}s")
            print(f"median of {args.repeats}: archfuse-train --help {med(helps):.3f}s (goal <= 1.0s)")
            print(f"median of {args.repeats}: archfuse-train to first training step {med([s['first_step'] for s in runs]):.3f}s"
                  f" (goal <= 4.5s)")
            if vruns:
                what = " ".join(args.variant + (["(torchmetrics optional imports skipped)"] if args.hide_optional else []))
                print(f"median of {args.repeats}: with {what}: first training step "
                      f"{med([s['first_step'] for s in vruns]):.3f}s; median paired difference "
                      f"{med([a['first_step'] - b['first_step'] for a, b in zip(runs, vruns)]):+.3f}s")
            keys = ["trainer_build", "fit_start", "sanity_start", "sanity_end", "train_start", "first_step"]
            m = {k: med([s[k] for s in runs]) for k in keys}
            print("median phases of the run (seconds from command start):")
            prev, prev_name = 0.0, "start"
            labels = {
                "trainer_build": "interpreter, imports, Hydra compose, validate (data module, module, check_forward)",
                "fit_start": "trainer.fit set-up (data setup: load + normalise digits; strategy, optimizer)",
                "sanity_start": "to sanity check start",
                "sanity_end": "sanity-check validation (2 batches)",
                "train_start": "to train start",
                "first_step": "to the first training batch",
            }
            for k in keys:
                print(f"  {m[k]:6.3f}s (+{m[k] - prev:6.3f}s)  {k:<14} {labels[k]}")
                prev = m[k]
        if args.importtime:
            importtime_breakdown(tmp, [str(Path(sys.executable).parent / "python"), "-X", "importtime", "-c",
                                       "import sys; sys.argv=['archfuse-train','--help']; "
                                       "from archfuse.train import main; main()"],
                                 "archfuse-train --help")
            importtime_breakdown(tmp, run_cmd(tmp, ["-X", "importtime"]), "a run up to its first training step")
        if args.profile:
            profile_startup(tmp, args.threads)


if __name__ == "__main__":
    main()

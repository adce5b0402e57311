"""What the command line needs of a sweep before Hydra composes anything (light: no optuna, no torch)."""

import json
import os
from pathlib import Path
from typing import Any

ENV = "ARCHFUSE_SWEEP_TRIAL"
PREFIX = "hydra.sweeper.params."
OPEN = ("hydra.sweeper.sampler_args.", "hydra.sweeper.pruner_args.", "hydra.sweeper.constraints.")


def params_on_command_line(argv: list[str]) -> list[str]:
    """``hydra.sweeper.params.KEY=EXPR`` on the command line is the sweep override ``KEY=EXPR``: Hydra
    refuses sweep expressions on its own keys, and the sweeper merges both into one search space.
    The sweeper's open mappings (sampler_args, pruner_args, constraints) take new keys without ``+``."""
    out = []
    for arg in argv:
        bare = arg.lstrip("+")
        if bare.startswith(PREFIX) and "=" in bare:
            arg = bare[len(PREFIX):]
        elif bare.startswith(OPEN) and "=" in bare or bare.split("=")[0] + "." in OPEN:
            arg = "++" + bare
        out.append(arg)
    return out


def check_overrides(argv: list[str]) -> str | None:
    """The first malformed override of a multirun command line as ``KEY: why`` (Hydra would stop with a
    stack-trace hint and exit code 1), or None."""
    if not {"-m", "--multirun"} & set(argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_overrides([arg])
        except Exception as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip() and not ln.startswith("See https")]
            return f"{arg.split('=')[0].lstrip('+~')}: malformed override {arg!r}: {lines[-1] if lines else err}"
    return None


def trial_spec() -> dict[str, Any] | None:
    """The sweep trial this process runs, or None: the sweeper sets ``ARCHFUSE_SWEEP_TRIAL`` (through
    hydra.job.env_set) to a small JSON file in the sweep directory naming the study and the trial."""
    path = os.environ.get(ENV)
    return json.loads(Path(path).read_text()) if path else None


def in_sweep() -> bool:
    return bool(os.environ.get(ENV))

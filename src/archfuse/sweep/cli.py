"""What the command line needs of a sweep before Hydra composes anything (light: no optuna, no torch)."""

import json
import os
from typing import Any

ENV = "ARCHFUSE_SWEEP_TRIAL"
PREFIX = "hydra.sweeper.params."


def params_on_command_line(argv: list[str]) -> list[str]:
    """``hydra.sweeper.params.KEY=EXPR`` on the command line is the sweep override ``KEY=EXPR``: Hydra
    refuses sweep expressions on its own keys, and the sweeper merges both into one search space."""
    out = []
    for arg in argv:
        bare = arg.lstrip("+")
        out.append(bare[len(PREFIX):] if bare.startswith(PREFIX) and "=" in bare else arg)
    return out


def trial_spec() -> dict[str, Any] | None:
    """The sweep trial this process runs (set by the sweeper through hydra.job.env_set), or None."""
    text = os.environ.get(ENV)
    return json.loads(text) if text else None


def in_sweep() -> bool:
    return bool(os.environ.get(ENV))

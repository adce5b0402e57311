"""How the sweeper tells a run which trial it is: ``ARCHFUSE_SWEEP_TRIAL``, set through
``hydra.job.env_set`` (so it reaches the run in-process, in a joblib worker or as a cluster job), names a
small JSON file in the sweep directory with the study, the trial and its pruner (light: no optuna)."""

import json
import os
from pathlib import Path
from typing import Any

ENV = "ARCHFUSE_SWEEP_TRIAL"


def trial_spec() -> dict[str, Any] | None:
    """The sweep trial this process runs, or None outside a sweep."""
    path = os.environ.get(ENV)
    return json.loads(Path(path).read_text()) if path else None


def in_sweep() -> bool:
    return bool(os.environ.get(ENV))

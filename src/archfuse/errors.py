"""The errors users see without a traceback: bad input (names the key or path and what to do) and a
failed process of a multi-process run."""


class ConfigError(ValueError):
    """Bad input caught before any expensive work; printed without a traceback, exit code 2."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}" if key else message)

    def __reduce__(self):  # picklable, so a sweep's trial in another process (joblib) reports it intact
        return (type(self), (self.key, self.message))


class RunFailed(RuntimeError):
    """A process of the run (a DDP rank) failed; its own output says why. Exit code 1."""


class RunPruned(RuntimeError):
    """A sweep's pruner stopped the run early (its trial looked worse than others at the same epoch).
    The run's summary.json says ``"status": "pruned"``; a sweeper records the trial as pruned."""

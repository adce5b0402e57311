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


class RunInterrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption) stopped the run. A BaseException, as
    KeyboardInterrupt is, so no ``except Exception`` on the way swallows it. Whoever saves the training
    state on the way out (the resume checkpoint) records what it saved here; the run's summary.json says
    ``"status": "interrupted"`` and the process exits with 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int):
        import signal

        self.signum, self.signal_name = signum, signal.Signals(signum).name
        self.last_checkpoint: str | None = None  # the resume checkpoint written or found on the way out
        self.epochs_done: int | None = None  # the completed epochs it holds
        self.resume: str | None = None  # the command that continues the run from it
        self.reported = False  # its line has been printed (a sweep prints its own)
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def report(self) -> str:
        """The one line the command prints: what was kept and how to continue."""
        said = f"interrupted by {self.signal_name}"
        if self.last_checkpoint is None:
            return f"{said} before an epoch completed: nothing to resume from; run the command again"
        kept = f"{said}; last.ckpt ({self.epochs_done} epoch{'' if self.epochs_done == 1 else 's'}): {self.last_checkpoint}"
        if self.resume is None:
            return f"{kept}; repeated fits (cv.folds, seeds) start again: run the command again"
        return f"{kept}; resume: {self.resume}"

    def __reduce__(self):
        return (type(self), (self.signum,))

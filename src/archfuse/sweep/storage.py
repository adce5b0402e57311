"""Where a study lives: SQLite in the sweep directory by default, or any database URL Optuna's RDB
storage takes (``postgresql+psycopg://...`` for several processes or machines on one study).

Every running trial sends a heartbeat; a trial whose heartbeat stopped (its process was killed) is
marked FAIL by the next process that asks for a trial, and run again once with the same parameters."""

import threading
import time
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from archfuse.errors import ConfigError

KEY = "hydra.sweeper.storage"


def default_url(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_storage(url: str, heartbeat_interval: int, grace_period: int) -> RDBStorage:
    """The study's storage, connected now: an unreachable server fails here, before any trial."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(KEY, f"must be a database URL such as sqlite:///study.db or "
                          f"postgresql+psycopg://user@host/db, got {url!r}")
    if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
        raise ConfigError("hydra.sweeper.grace_period", f"must exceed heartbeat_interval ({heartbeat_interval} s), "
                          f"got {grace_period}")
    kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {"connect_args": {"timeout": 60}}
    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except Exception as err:  # sqlalchemy's OperationalError, a missing driver, a bad URL
            if "already exists" in str(err) and attempt < 4:  # another worker is creating the tables right now
                time.sleep(0.5 + attempt)
                continue
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(KEY, f"cannot open {_redact(url)}: {first}") from None
    raise AssertionError("unreachable")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, _, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@")[0]:
        user = rest.split("@")[0].split(":")[0]
        rest = f"{user}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}://{rest}"


class Heartbeat:
    """Records the heartbeat of the trials this process runs, every ``interval`` seconds, in a thread."""

    def __init__(self, storage: RDBStorage, interval: int):
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.add(trial_id)
        self.storage.record_heartbeat(trial_id)

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a finished trial, a database hiccup: the next beat tries again
                    pass

    def stop(self) -> None:
        self._stop.set()


def fail_stale(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed process (no heartbeat for grace_period): FAIL, and retried once."""
    optuna.storages.fail_stale_trials(study)


INTERRUPTED = "interrupted"


def fail_interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
    """A trial whose run SIGINT or SIGTERM stopped: FAIL with error "interrupted", and the same parameters
    queued to run first when the study is continued (it then no longer counts as failed)."""
    trial.set_user_attr("error", INTERRUPTED)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    frozen = study._storage.get_trial(trial._trial_id)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params=frozen.params,
                                              distributions=frozen.distributions,
                                              system_attrs={"failed_trial": frozen.number}))

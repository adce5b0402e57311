"""The HPARAMS tab as a person reads it: the keys a run was given on the command line first, and a
Trial ID that starts with what tells runs apart.

TensorBoard's hparams plugin orders its columns by (``differs`` first, then name) and shows the first
five hyperparameters and the first five metrics by default; the others stay available in the
"Hyperparameters" / "Metrics" check lists. ``differs`` comes from the experiment summary, so every run
writes one that marks its overridden keys (in a multirun or sweep: the swept or searched keys; over
folds and seeds: ``cv.fold`` and ``seed``). The Trial ID column shows a session's group name; by
default that is the run's path, ``multiruns/2026-.../0_model.width-8``, cut off after the time stamp.
"""

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archfuse.summary import HPARAMS_COLUMNS

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_?")


def overridden_keys(overrides: Iterable[str]) -> set[str]:
    """``["model=convnet", "+x.y=1", "model.width=8"]`` -> ``{"model", "x.y", "model.width"}``."""
    keys = set()
    for item in overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key and not key.startswith("hydra"):
            keys.add(key)
    return keys


def hydra_job() -> dict[str, Any]:
    """What the Hydra job running in this process was given: its overrides, and in a multirun or sweep
    its number and the swept keys (sweeps in the command line, as saved in multirun.yaml, and the
    sweeper's ``params``). Empty outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return {}
        hc = HydraConfig.get()
        job: dict[str, Any] = {"overrides": list(hc.overrides.task)}
        if hc.mode == RunMode.MULTIRUN:
            job["num"] = hc.job.num
            job["swept"] = _swept_keys(Path(hc.sweep.dir), hc.sweeper.get("params"))
        return job
    except Exception:  # noqa: BLE001 - how the table is laid out must never fail a finished run
        return {}


def _swept_keys(sweep_dir: Path, params: Any) -> set[str]:
    return {str(k) for k in (params or {})} | _command_line_sweeps(str(sweep_dir / "multirun.yaml"))


@functools.lru_cache(maxsize=4)
def _command_line_sweeps(saved: str) -> frozenset[str]:
    """The keys swept on the multirun's command line, from its multirun.yaml (written once when the
    multirun starts, so read once per process rather than once per job)."""
    if not Path(saved).is_file():
        return frozenset()
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    task = OmegaConf.load(saved).hydra.overrides.task
    return frozenset(o.key_or_group for o in OverridesParser.create().parse_overrides(list(task))
                     if o.is_sweep_override())


def varied_keys(hparams: dict[str, Any], job: dict[str, Any]) -> set[str]:
    """The hyperparameters that set this run apart: those overridden on the command line, in a multirun
    or sweep also the swept or searched keys; and the fold, and the seed over seeds."""
    overridden = overridden_keys(job.get("overrides") or ())
    keys = set(job.get("swept") or ()) | overridden | {"cv.fold"} | ({"seed"} if "seeds" in overridden else set())
    return {k for k in keys if k in hparams}


def job_label(job: dict[str, Any], keys: set[str] = frozenset()) -> str | None:
    """A short name TensorBoard's narrow Trial ID column can show: in a multirun the job's number and
    its values of the swept keys (``0 width=8``), else its values of ``keys`` (``width=8,activation=tanh``)."""
    chosen = set(job.get("swept") or ()) if "num" in job else set(keys)
    own = [str(o).lstrip("+~").split("=", 1) for o in job.get("overrides") or ()]
    own = [(k, v) for k, v in (o for o in own if len(o) == 2) if k in chosen]
    leaves = [k.rsplit(".", 1)[-1] for k, _ in own]
    names = [leaf if leaves.count(leaf) == 1 else key for leaf, (key, _) in zip(leaves, own)]
    text = ",".join(f"{name}={value}" for name, (_, value) in zip(names, own))
    if "num" in job:
        return f"{job['num']} {text}".strip()
    return text or None


def trial_id(log_dir: str | Path, output_dir: str | Path, label: str | None = None) -> str:
    """The name TensorBoard shows in the Trial ID column: the part of the path that tells runs apart
    first (``label``, else the run directory's name without its time stamp; then fold or seed), then
    where it lives, so that the name stays unique.

    ``multiruns/2026-12-02_07-00-00/0_model.width-8`` with label ``0 width=8`` -> ``0 width=8 · multiruns/2026-12-02_07-00-00``;
    ``runs/2026-12-02_07-00-00_model-seed003/fold_1`` -> ``model-seed003/fold_1 · runs/2026-12-02_07-00-00``.
    """
    log_dir, output_dir = Path(log_dir).resolve(), Path(output_dir).resolve()
    try:
        parts = list(log_dir.relative_to(output_dir).parts)
    except ValueError:
        parts = list(log_dir.parts[-3:])
    head, tail = parts[:-1], parts[-1:]  # no time stamp (a sweep's <n>_<params>): the last part
    for i, part in enumerate(parts):
        match = _STAMP.match(part)
        if match and match.end() < len(part):  # runs/<stamp>_<name>
            head, tail = parts[:i] + [match.group(0).rstrip("_")], [part[match.end():]] + parts[i + 1:]
            break
        if match and i + 1 < len(parts):  # multiruns/<stamp>/<num>_<name>
            head, tail = parts[:i + 1], parts[i + 1:]
            break
    if label and tail:
        tail[0] = label
    name = "/".join(tail) or "default"
    return f"{name} · {'/'.join(head)}" if head else name


def _value(struct_value: Any, value: Any) -> None:
    if isinstance(value, bool):
        struct_value.bool_value = value
    elif isinstance(value, int | float):
        struct_value.number_value = value
    else:
        struct_value.string_value = str(value)


def hparams_summaries(hparams: dict[str, Any], metrics: Iterable[str], varied: set[str], group: str) -> list[Any]:
    """The experiment, session-start and session-end summaries of one finished run (protocol buffers for
    a SummaryWriter's ``file_writer.add_summary``)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(group_name=group)
    infos = []
    for name, value in hparams.items():
        _value(start.hparams[name], value)
        kind = ("DATA_TYPE_BOOL" if isinstance(value, bool) else
                "DATA_TYPE_FLOAT64" if isinstance(value, int | float) else "DATA_TYPE_STRING")
        infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind), differs=name in varied))
    infos.sort(key=lambda info: (not info.differs, info.name))  # the order TensorBoard shows them in
    metrics = list(metrics)
    # metric columns in archfuse.summary's order (TensorBoard shows the first five), then any others
    ordered = [m for m in HPARAMS_COLUMNS if m in metrics] + [m for m in metrics if m not in HPARAMS_COLUMNS]
    experiment = api_pb2.Experiment(hparam_infos=infos,
                                    metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in ordered])
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))

    def summary(tag: str, **data: Any) -> Any:
        content = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **data)
        meta = metadata.create_summary_metadata(content)
        return Summary(value=[Summary.Value(tag=tag, metadata=meta)])

    return [summary(metadata.EXPERIMENT_TAG, experiment=experiment),
            summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)]

"""One table of runs: the config keys that differ between them, their metrics and cost; filtered,
sorted, aggregated over a key (``seed``: mean +- std over the runs that differ only in it), written as
text, CSV or Markdown."""

import csv
import io
import statistics
from dataclasses import dataclass, field
from typing import Any

from archfuse.comparison.runs import Run
from archfuse.errors import ConfigError
from archfuse.summary import std_dev

METRICS = ("cv/val_acc_mean", "val/acc_best", "test/acc")
COSTS = ("cost/params", "cost/macs", "cost/latency_ms")
_MISSING = object()


@dataclass
class Row:
    """A run, or (aggregated) the runs that differ only in the aggregated keys."""

    label: str
    config: dict[str, Any]
    mean: dict[str, float]
    std: dict[str, float | None]
    n: int
    status: str = "ok"
    runs: list[Run] = field(default_factory=list)

    def value(self, key: str) -> Any:
        if key in self.mean:
            return self.mean[key]
        return {"n": self.n, "status": self.status}.get(key, self.config.get(key))


@dataclass
class Table:
    keys: list[str]  # config keys that differ between the rows
    metrics: list[str]  # metric and cost columns
    rows: list[Row]
    aggregated: list[str] = field(default_factory=list)

    @property
    def show_n(self) -> bool:
        return bool(self.aggregated) or any(r.n > 1 for r in self.rows)

    @property
    def show_status(self) -> bool:
        return any(r.status != "ok" for r in self.rows)


def higher_is_better(key: str) -> bool:
    return not (key.startswith("cost/") or "loss" in key)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def _matches(value: Any, wanted: str) -> bool:
    if value is None:
        return wanted in ("None", "null")
    if isinstance(value, bool):
        return wanted.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    return str(value) == wanted


def _order_key(value: Any) -> tuple:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return (0, value, "") if numeric else (1, 0, str(value))


def _known_keys(runs: list[Run]) -> set[str]:
    return {k for r in runs for k in (*r.config, *r.metrics)} | {"status", "n"}


def apply_where(runs: list[Run], where: list[str]) -> list[Run]:
    """Keep the runs where every ``KEY=VALUE`` holds (``KEY=A,B``: either value)."""
    known = _known_keys(runs)
    for condition in where:
        key, sep, values = condition.partition("=")
        if not sep or not key:
            raise ConfigError("--where", f"{condition!r} is not KEY=VALUE (e.g. --where model.activation=relu)")
        if key not in known:
            raise ConfigError("--where", f"no run has the key {key!r}; keys that differ between the runs: "
                                         f"{', '.join(differing_keys(runs)) or '(none)'}")
        kept = [r for r in runs if any(_matches(r.value(key), v) for v in values.split(","))]
        if not kept:
            seen = [str(v) for v in sorted({r.value(key) for r in runs}, key=_order_key)]
            raise ConfigError("--where", f"no run has {condition}; {key} is {', '.join(seen)} in the runs given")
        runs = kept
    return runs


def differing_keys(runs: list[Run], exclude: tuple[str, ...] = ()) -> list[str]:
    """Config keys whose values are not the same in every run, in the order the configs list them."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.config if k not in keys and k not in exclude]
    first = runs[0].config if runs else {}
    differ = [k for k in keys if any(not _same(r.config.get(k, _MISSING), first.get(k, _MISSING)) for r in runs)]
    return [k for k in differ if not _told_by_choice(k, runs)]


def _told_by_choice(key: str, runs: list[Run]) -> bool:
    """``GROUP._target_`` where the runs that chose the same GROUP name the same class: the column
    GROUP tells it already. Where one run put its own class under a chosen name, the key stays."""
    group, _, leaf = key.rpartition(".")
    if leaf != "_target_" or not group or not all(group in r.config for r in runs):
        return False
    targets: dict[str, Any] = {}
    return all(targets.setdefault(repr(r.config[group]), r.config.get(key)) == r.config.get(key) for r in runs)


def _row_of(run: Run) -> Row:
    return Row(label=run.name, config=run.config, mean=dict(run.metrics),
               std={k: run.std.get(k) for k in run.metrics}, n=run.n, status=run.status, runs=[run])


def _aggregate(runs: list[Run], keys: list[str]) -> list[Row]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(repr(run.config.get(k)) for k in keys), []).append(run)
    rows = []
    for members in groups.values():
        if len(members) == 1:
            rows.append(_row_of(members[0]))
            continue
        names = [m for m in members[0].metrics if all(m in r.metrics for r in members)]
        mean = {m: statistics.fmean(r.metrics[m] for r in members) for m in names}
        std = {m: std_dev([r.metrics[m] for r in members]) for m in names}
        statuses = {r.status for r in members}
        rows.append(Row(label=f"{len(members)} runs", config=members[0].config, mean=mean, std=std,
                        n=sum(r.n for r in members), status=statuses.pop() if len(statuses) == 1 else "mixed",
                        runs=members))
    return rows


def _sort(rows: list[Row], key: str, reverse: bool) -> list[Row]:
    best_first = key in {k for r in rows for k in r.mean} and higher_is_better(key)

    def order(row: Row) -> tuple:
        value = row.value(key)
        if value is None:
            return (1, 0, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, -value if best_first else value, "")
        return (0, 0, str(value))

    ranked = sorted(rows, key=order)
    return ranked[::-1] if reverse else ranked


def build_table(runs: list[Run], where: list[str] = (), sort: str | None = None, aggregate: list[str] = (),
                reverse: bool = False, extra_metrics: list[str] = ()) -> Table:
    runs = apply_where(list(runs), list(where))
    known = _known_keys(runs)
    for key in aggregate:
        if key not in known:
            raise ConfigError("--aggregate", f"no run has the config key {key!r} (e.g. --aggregate seed)")
    if sort and sort not in known:
        raise ConfigError("--sort", f"no run has the key {sort!r}; metrics: "
                                    f"{', '.join(sorted({k for r in runs for k in r.metrics}))}")
    keys = differing_keys(runs, exclude=tuple(aggregate))
    rows = _aggregate(runs, keys) if aggregate else [_row_of(r) for r in runs]
    present = {k for r in rows for k in r.mean}
    metrics = [m for m in (*METRICS, *extra_metrics, *([sort] if sort else []), *COSTS) if m in present]
    metrics = list(dict.fromkeys(metrics))
    if sort:
        rows = _sort(rows, sort, reverse)
    elif reverse:
        rows = rows[::-1]
    return Table(keys=keys, metrics=metrics, rows=rows, aggregated=list(aggregate))


# -- output ----------------------------------------------------------------------------------------

def _fmt_number(key: str, value: float) -> str:
    if key in ("cost/params", "cost/macs", "cost/size_bytes"):
        return f"{value:,.0f}"
    if key == "cost/latency_ms":
        return f"{value:.3f}"
    return f"{value:.4f}"


def format_metric(row: Row, key: str) -> str:
    if key not in row.mean:
        return ""
    text = _fmt_number(key, row.mean[key])
    std = row.std.get(key)
    return f"{text} ± {_fmt_number(key, std)}" if std is not None and not key.startswith("cost/") else text


def _fmt_config(value: Any) -> str:
    return "" if value is None else str(value)


def header(table: Table) -> list[str]:
    return (["run", *table.keys, *table.metrics] + (["n"] if table.show_n else [])
            + (["status"] if table.show_status else []))


def text_rows(table: Table) -> list[list[str]]:
    out = []
    for row in table.rows:
        cells = [row.label, *(_fmt_config(row.config.get(k)) for k in table.keys),
                 *(format_metric(row, m) for m in table.metrics)]
        cells += [str(row.n)] if table.show_n else []
        cells += [row.status] if table.show_status else []
        out.append(cells)
    return out


def to_csv(table: Table) -> str:
    """Plain numbers: one column per metric and, where there is one, its ``_std`` beside it."""
    with_std = [m for m in table.metrics if any(r.std.get(m) is not None for r in table.rows)]
    columns = ["run", *table.keys]
    for m in table.metrics:
        columns += [m] + ([f"{m}_std"] if m in with_std else [])
    columns += ["n", "status", "path"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table.rows:
        cells = [row.label, *(_fmt_config(row.config.get(k)) for k in table.keys)]
        for m in table.metrics:
            cells.append(row.mean.get(m, ""))
            if m in with_std:
                cells.append("" if row.std.get(m) is None else row.std[m])
        writer.writerow([*cells, row.n, row.status, ";".join(str(r.path) for r in row.runs)])
    return buffer.getvalue()


def to_markdown(table: Table) -> str:
    head = header(table)
    right = [i for i, h in enumerate(head) if h in table.metrics or h == "n"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in text_rows(table)]
    return "\n".join(lines) + "\n"


def to_text(table: Table, width: int = 10_000) -> str:
    """A box table at its natural width (no cell is folded; a narrow terminal wraps whole lines)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    title = f"{len(table.rows)} row{'s' if len(table.rows) != 1 else ''}" + (f", aggregated over {', '.join(table.aggregated)}" if table.aggregated
                                          else "")
    rich_table = RichTable(title=f"archfuse-compare: {title}")
    for name in header(table):
        numeric = name in table.metrics or name == "n"
        rich_table.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    for cells in text_rows(table):
        rich_table.add_row(*cells)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(rich_table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def render(table: Table, fmt: str) -> str:
    formats = {"table": to_text, "csv": to_csv, "markdown": to_markdown}
    if fmt not in formats:
        raise ConfigError("--format", f"unknown format {fmt!r}; choose table, csv or markdown")
    return formats[fmt](table)

"""Accuracy against cost, one point per row of the table, the Pareto front (no other row is at least as
accurate and at most as costly, and better in one) marked and labelled."""

from pathlib import Path

from archfuse.comparison.table import Row, Table
from archfuse.errors import ConfigError


LABEL_LENGTH = 40  # a point's label; the table holds the whole configuration


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points no other point dominates (lower cost, higher accuracy),
    cheapest first."""
    front = []
    for i, (cost, acc) in enumerate(points):
        dominated = any(c <= cost and a >= acc and (c < cost or a > acc) for j, (c, a) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def _compact(x: float, _: object = None) -> str:
    """Axis numbers that fit beside each other: 400k, 1.2M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def point_label(row: Row, table: Table) -> str:
    """What tells the row apart: its values of the differing keys (``model.width=8``), else its name."""
    parts = [f"{k.rsplit('.', 1)[-1]}={row.config.get(k)}" for k in table.keys]
    label = ", ".join(parts) or row.label
    return label if len(label) <= LABEL_LENGTH else label[:LABEL_LENGTH - 1] + "…"


def _label_points(ax, labels: list[str], points: list[tuple[float, float]], front: list[int], log_x: bool) -> None:
    """Each point's label beside it, on the side with room: points in the right half of the axes get
    theirs on the left. Front points are labelled in black, the others in grey."""
    import math

    xs = [math.log(p[0]) if log_x else p[0] for p in points]
    middle = (min(xs) + max(xs)) / 2
    for i, (label, point) in enumerate(zip(labels, points)):
        right_half = xs[i] > middle
        ax.annotate(label, point, textcoords="offset points", xytext=(-6 if right_half else 6, -10), fontsize=7,
                    ha="right" if right_half else "left", color="black" if i in front else "0.5",
                    annotation_clip=False)


def plot(table: Table, path: str | Path, metric: str = "val/acc_best", cost: str = "cost/params") -> list[Row]:
    """Write the plot as PNG; return the rows on the front, cheapest first."""
    rows = [r for r in table.rows if metric in r.mean and cost in r.mean]
    if not rows:
        missing = metric if not any(metric in r.mean for r in table.rows) else cost
        raise ConfigError("--metric" if missing == metric else "--cost", f"no run records {missing}")
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--plot", "needs matplotlib: pip install 'archfuse[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r.mean[cost], r.mean[metric]) for r in rows]
    front = pareto_front(points)
    # Constrained layout makes room for the axis labels and title at any number of points (tight_layout
    # gives up with a warning); labels near the right edge point left so they stay inside the axes.
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120, layout="constrained")
    errors = [r.std.get(metric) or 0.0 for r in rows]
    ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=errors if any(errors) else None,
                fmt="o", color="0.6", ecolor="0.8", zorder=2)
    fx, fy = [points[i][0] for i in front], [points[i][1] for i in front]
    ax.step(fx, fy, where="post", color="tab:red", alpha=0.6, zorder=3)
    ax.scatter(fx, fy, s=60, color="tab:red", zorder=4)
    costs = [p[0] for p in points]
    log_x = min(costs) > 0 and max(costs) / min(costs) > 20
    if log_x:
        ax.set_xscale("log")
    ax.margins(0.12)
    _label_points(ax, [point_label(row, table) for row in rows], points, front, log_x)
    ax.set_xlabel(cost + (" (lower is better)"))
    ax.set_ylabel(metric + (" (mean ± std)" if any(errors) else ""))
    ax.set_title(f"{metric} against {cost}:\n{len(rows)} points, {len(front)} on the Pareto front (red)",
                 fontsize=10)
    if cost != "cost/latency_ms":
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(_compact))
    ax.grid(alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return [rows[i] for i in front]

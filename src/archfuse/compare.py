"""archfuse-compare PATH...: one table of finished runs (run, multirun or sweep directories, outputs/),
read from their summary.json files alone, so it answers at once (no torch)."""

import argparse
import sys

from archfuse.errors import ConfigError

EPILOG = """examples:
  archfuse-compare outputs/
  archfuse-compare outputs/multiruns/2026-12-02_07-01-25 --sort test/acc
  archfuse-compare outputs/ --where model.activation=relu --where model.depth=2,3 --format markdown
  archfuse-compare outputs/ --aggregate seed --plot front.png --cost cost/macs
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archfuse-compare", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Compare finished runs: the config keys that differ between them, "
                                            "their metrics and their cost.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="run directories, multirun or sweep directories, outputs/")
    p.add_argument("--sort", metavar="KEY", help="sort by a metric (best first) or config key (ascending)")
    p.add_argument("--reverse", action="store_true", help="reverse the order")
    p.add_argument("--where", metavar="KEY=VALUE", action="append", default=[],
                   help="keep runs with this value (KEY=A,B: either); repeat to combine")
    p.add_argument("--aggregate", metavar="KEY", action="append", default=[],
                   help="runs that differ only in KEY (e.g. seed) become one row: mean ± std, n")
    p.add_argument("--format", choices=("table", "csv", "markdown"), default="table")
    p.add_argument("--plot", metavar="FILE.png", help="draw accuracy against cost with the Pareto front")
    p.add_argument("--metric", default="val/acc_best", metavar="KEY", help="accuracy axis of --plot (val/acc_best)")
    p.add_argument("--cost", default="cost/params", choices=("cost/params", "cost/macs", "cost/latency_ms"),
                   help="cost axis of --plot (cost/params)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from archfuse.comparison.runs import load_runs
    from archfuse.comparison.table import build_table, render

    try:
        runs = load_runs(args.paths)
        table = build_table(runs, where=args.where, sort=args.sort, aggregate=args.aggregate, reverse=args.reverse,
                            extra_metrics=[args.metric] if args.plot else [])
        sys.stdout.write(render(table, args.format))
        if args.plot:
            from archfuse.comparison.plot import plot

            front = plot(table, args.plot, metric=args.metric, cost=args.cost)
            print(f"plot: {args.plot} ({len(front)} of {len(table.rows)} rows on the Pareto front of "
                  f"{args.metric} against {args.cost})", file=sys.stderr)
    except ConfigError as err:
        print(f"archfuse-compare: error: {err}", file=sys.stderr)
        return 2
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()

"""Comparing finished runs from their summary.json files alone (no torch): ``archfuse-compare``.

runs.py finds and reads the runs, table.py builds the table (differing config keys, metrics, cost;
filters, sorting, aggregation over seeds) and writes it as text, CSV or Markdown, plot.py draws accuracy
against cost with the Pareto front.
"""

from archfuse.comparison.runs import Run, load_runs
from archfuse.comparison.table import Table, build_table

__all__ = ["Run", "Table", "build_table", "load_runs"]

"""summary.json, the one file a run leaves that says what it did: its sections and their JSON Schema
(docs/summary.schema.json, printed by ``python -m archfuse.summary``), the one list of metric names, a
metric read by name, and the builders and reader every writer and reader of the file goes through.

The writers are archfuse.run (job, fit, repeats); the readers archfuse-compare, the sweeper and
``ensemble.from_sweep`` (archfuse.sweep_dir)."""

from archfuse.summary.metrics import (COST, FAMILIES, HPARAMS_COLUMNS, METRICS, REPEATED, SELECTABLE, STD, TEST,
                                      Metric, metric_value, reported_metrics, std_dev)
from archfuse.summary.record import (FILE, cv_section, fit_sections, interrupted_summary, pruned_summary,
                                     read_summary, repeats_sections, run_summary, seeds_section, summary_file,
                                     training_record, versions, write_summary)
from archfuse.summary.sections import SECTIONS, VERSION, schema, schema_text

__all__ = ["COST", "FAMILIES", "FILE", "HPARAMS_COLUMNS", "METRICS", "REPEATED", "SECTIONS", "SELECTABLE", "STD",
           "TEST", "VERSION", "Metric", "cv_section", "fit_sections", "interrupted_summary", "metric_value",
           "pruned_summary",
           "read_summary", "repeats_sections", "reported_metrics", "run_summary", "schema", "schema_text",
           "seeds_section", "std_dev", "summary_file", "training_record", "versions", "write_summary"]

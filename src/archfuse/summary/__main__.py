"""``python -m archfuse.summary > docs/summary.schema.json``: the JSON Schema of summary.json."""

import sys

from archfuse.summary.sections import schema_text

sys.stdout.write(schema_text())

"""Ensemble strategies: several member networks combined into one classifier.

A strategy is one file named after it, implementing :class:`archfuse.ensembles.base.Ensemble`, with
its options in ``conf/ensemble/<name>.yaml`` (the one place their values are written). It imports nothing
from what runs it: the run hands it what it needs (``archfuse.context``, ``ensembles.base.CombinerData``).
"""

"""Ensemble strategies: several member networks combined into one classifier.

A strategy is one file named after it, implementing :class:`archfuse.ensembles.base.Ensemble`, with
its config beside it as ``conf/ensemble/<name>.yaml``.
"""

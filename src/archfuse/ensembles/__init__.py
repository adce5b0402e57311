"""Ensemble strategies: how member networks are built and their outputs combined.

A strategy is one file named after it, implementing :class:`archfuse.ensembles.base.Ensemble`,
with its config beside it as ``conf/ensemble/<name>.yaml``.
"""

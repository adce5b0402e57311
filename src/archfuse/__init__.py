"""archfuse: config-driven experiments on CNN structure and ensembles.

Importing the package is cheap (no torch) so that ``archfuse-train --help`` starts fast.
"""

__version__ = "0.1.0"

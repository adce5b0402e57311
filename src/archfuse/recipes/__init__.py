"""Structure-optimization recipes: steps applied around training (prune, distill, quantize, ...).

A recipe is one file named after it, implementing :class:`archfuse.recipes.base.Recipe`, with
its options in ``conf/recipe/<name>.yaml`` (the one place their values are written); several run in order as a
:class:`archfuse.recipes.chain.RecipeChain` (``recipe=[a,b]``). A recipe imports nothing from what runs it:
the run hands it what it needs (``archfuse.context``, ``recipes.base.AfterFit``).
"""

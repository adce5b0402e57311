"""Structure-optimization recipes: steps applied around training (prune, distill, quantize, ...).

A recipe is one file named after it, implementing :class:`archfuse.recipes.base.Recipe`, with
its config beside it as ``conf/recipe/<name>.yaml``; several run in order as a
:class:`archfuse.recipes.chain.RecipeChain` (``recipe=[a,b]``).
"""

"""A run, from a validated config to summary.json: one fit (fit.py) or several over seeds and folds
(repeats.py, with the recipe reports over the fits in recipe_over_fits.py), the steps after training
(after_fit.py), plain evaluations outside the Trainer (evaluation.py), the whole job (job.py). What
summary.json holds is defined in archfuse.summary."""

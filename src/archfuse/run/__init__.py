"""A run, from a validated config to summary.json: one fit (fit.py) or several (cv.py), the steps after
training (after_fit.py), plain evaluations outside the Trainer (evaluation.py), the whole job (job.py)."""

"""archfuse's Hydra sweeper on Optuna (``hydra/sweeper=optuna``); the work is done in archfuse.sweep."""

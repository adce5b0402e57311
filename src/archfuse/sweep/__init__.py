"""archfuse's Optuna sweeps (the Hydra sweeper plugin is hydra_plugins.archfuse_sweeper): the search
space grammar, samplers and pruners, the study's storage, the sweep loop and its results. The search
spaces are the options of the ``search`` config group (conf/search/)."""

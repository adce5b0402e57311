"""The OmegaConf resolvers the configs use to name and place a run's files."""

from omegaconf import OmegaConf

from archfuse.config_dir import run_name
from archfuse.ranks import claim_dir, claim_subdir, launch_stamp, on_rank_zero


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("launch_stamp", launch_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("on_rank_zero", on_rank_zero, replace=True)
    # ${claim_dir:PATH}: PATH made this run's own (PATH-2, PATH-3, ... when another run has it)
    OmegaConf.register_new_resolver("claim_dir", claim_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("claim_subdir", claim_subdir, use_cache=True, replace=True)
    # ${repeat:VALUE,N}: a list of N copies (search=mlp_layers: N layers of VALUE neurons each)
    OmegaConf.register_new_resolver("repeat", lambda value, n: [value] * int(n), replace=True)

"""Base models. Every model is built by ``_target_`` with the data's shape as keyword arguments:

    Model(in_channels=C, num_classes=K, input_size=(H, W), **other_config_keys)

A user's own ``nn.Module`` plugs in the same way: ``model._target_=package.module.Class``. The
constructor's signature is the schema of its config (archfuse.options): its keyword-only options
take their values from conf/model/<name>.yaml, the one place they are written down.
"""

# The parameters archfuse fills in from the data, not from the model's config.
DATA_SHAPE_ARGS = ("in_channels", "num_classes", "input_size")

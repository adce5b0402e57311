"""Shape arithmetic shared by the models, so each computes its flatten size from the input."""

from archfuse.errors import ConfigError


def conv_out(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def require_min_size(model: str, input_size: tuple[int, int], minimum: int, why: str) -> None:
    if min(input_size) < minimum:
        h, w = input_size
        raise ConfigError(
            "model",
            f"{model} needs inputs of at least {minimum}x{minimum} ({why}), but the data gives {h}x{w}; "
            "choose model=convnet or model=mlp, or data with larger images",
        )

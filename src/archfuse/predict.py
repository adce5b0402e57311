"""archfuse-predict ckpt=PATH input=FILE|DIR [out=preds.csv] [top_k=1]: label image files with a checkpoint
or an exported file; one CSV row per image (columns in archfuse.predicting.job)."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.command_line import refuse_bad_command_line
from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError
from archfuse.process import exit_now, importable_cwd


def report(result, input_path: str, ckpt: str) -> None:
    print(f"labelled {len(result.rows)} images under {input_path} with {ckpt} ({result.source}): {result.out}")
    if result.correct is not None:
        print(f"accuracy against the folder names: {result.correct / len(result.rows):.4f} "
              f"({result.correct} of {len(result.rows)})")
    if result.unreadable:
        print(f"unreadable: {len(result.unreadable)} file{'s' if len(result.unreadable) > 1 else ''}, not labelled:")
        for path, why in result.unreadable:
            print(f"  {path}: {why}")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def _predict(cfg: DictConfig) -> None:
    from archfuse.predicting.options import predict_request

    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        predict_request(plain)  # bad input refused before torch and the model load

        from archfuse.predicting.job import predict

        report(predict(plain), plain["input"], plain["ckpt"])
    except ConfigError as err:
        print(f"archfuse-predict: error: {err}", file=sys.stderr)
        sys.exit(2)


def main(fast_exit: bool = True) -> None:
    importable_cwd()
    refuse_bad_command_line("archfuse-predict", config_dir(), "predict")
    _predict()
    if fast_exit:
        exit_now(0)


if __name__ == "__main__":
    main()

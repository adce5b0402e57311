"""archfuse-export ckpt=PATH format=pt2|onnx [out=FILE]: a checkpoint's network as a file that runs
without archfuse, verified against archfuse's own network, its spec in FILE.json beside it."""

import sys
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.command_line import refuse_bad_command_line
from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError
from archfuse.process import exit_now, importable_cwd


def report(meta: dict[str, Any], ckpt: str) -> None:
    v = meta["verification"]
    kind = {"exported_program": "torch.export program", "aoti_package": "AOTInductor package",
            "onnx": "ONNX"}[meta["kind"]]
    print(f"checkpoint: {ckpt}")
    print(f"wrote {meta['path']} ({kind}{', int8' if meta['int8'] else ''}, {meta['size_bytes'] / 1024:.1f} KiB): "
          f"{'x'.join(map(str, meta['input_shape']))} images in [0, 1], normalisation inside, any batch size")
    print(f"load: {meta['load']}")
    print(f"spec: {meta['path']}.json ({len(meta['classes'])} classes: {', '.join(meta['classes'][:5])}"
          f"{', ...' if len(meta['classes']) > 5 else ''})")
    print(f"verified on {v['images']} test images: max |logit difference| {v['max_abs_logit_difference']:.3g} "
          f"(tolerance {v['tolerance']:g}), top-1 agreement {v['top1_agreement']:.4f}")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
def _export(cfg: DictConfig) -> None:
    from archfuse.exporting.options import ExportMismatch, export_request

    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        export_request(plain)  # bad input refused before torch and the checkpoint load

        from archfuse.exporting.job import export

        report(export(plain), plain["ckpt"])
    except ConfigError as err:
        print(f"archfuse-export: error: {err}", file=sys.stderr)
        sys.exit(2)
    except ExportMismatch as err:
        print(f"archfuse-export: error: {err}", file=sys.stderr)
        sys.exit(1)


def main(fast_exit: bool = True) -> None:
    importable_cwd()
    refuse_bad_command_line("archfuse-export", config_dir(), "export")
    _export()
    if fast_exit:
        exit_now(0)


if __name__ == "__main__":
    main()

"""Classical baselines on exactly the split a data config produces: what a CNN must beat.

The data module of the composed config (the same one a run builds: same seed, same stratified split)
gives the training pool (train + validation, which the networks use for training and model selection)
and the test split. scikit-learn's logistic regression and RBF support vector machine are trained on the
pool's pixels and tested on the test split; each accuracy is printed beside the number of test errors.

    python bench/baselines.py                                   # data=digits (the 8x8 pixels)
    python bench/baselines.py data=mnist data.root=DIR          # e.g. the MNIST split of bench/prepare_mnist.py

Overrides are the ones archfuse-train takes for the data group. For the digits the baselines see the
original 8x8 images (``data.image_size=8`` is added unless given): upsampling adds no information, and
the split is the same either way.
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))


def data_module(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from archfuse.build import build_datamodule
    from archfuse.config_dir import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    return build_datamodule({"data": data}), data


def baselines() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
        "RBF SVM (C=5, gamma=scale)": SVC(C=5, gamma="scale"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="data overrides, e.g. data=mnist data.root=DIR")
    args = parser.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)
    overrides = list(args.overrides)
    is_digits = not any(o.startswith("data=") for o in overrides) or "data=digits" in overrides
    if is_digits and not any(o.startswith("data.image_size=") for o in overrides):
        overrides.append("data.image_size=8")
    dm, data = data_module(overrides)
    dm.setup()
    x_pool, y_pool = dm._pool
    x_test, y_test = dm.split_tensors("test")
    features = lambda x: x.flatten(1).numpy()  # noqa: E731
    print(f"data: {data['_target_'].rsplit('.', 1)[-1]} {' '.join(overrides)}")
    print(f"split: {len(y_pool)} training-pool images (train + val), {len(y_test)} test images, "
          f"{x_pool[0].numel()} features")
    print(f"{'baseline':<30} {'test acc':>9} {'errors':>7} {'fit s':>7}")
    for name, model in baselines().items():
        start = time.perf_counter()
        model.fit(features(x_pool), y_pool.numpy())
        seconds = time.perf_counter() - start
        predicted = model.predict(features(x_test))
        errors = int((predicted != y_test.numpy()).sum())
        print(f"{name:<30} {1 - errors / len(y_test):>9.4f} {errors:>7} {seconds:>7.1f}")


if __name__ == "__main__":
    main()

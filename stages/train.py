"""Stage `train`: fits the model chosen by `train.model` on data/prepared and saves it to data/model.

`mnist_dvc.training.train_and_save` does the work: neural models checkpoint after each epoch to
data/checkpoints (a DVC `persist` output), so a killed run resumes where it stopped and ends with
the same weights as one that never stopped; scikit-learn baselines fit in one go.

Several cooperating processes can run it as one training (`mnist_dvc.training.distributed`), started by
`mnist-dvc launch --processes N -- python -m stages.train` on one machine or by `srun` on a Slurm
cluster; the first process writes every output, the others only compute.

Outputs: data/model/ (model.json + weights), eval/train.json (metrics), eval/train_history.csv
(per-epoch curves for `dvc plots`). A committee member (committee/dvc.yaml) is the same training
with another model and seed, written under its own folder:

    python -m stages.train --model vgg_bn --seed 3 --out data/committee/vgg_bn-3
"""

import argparse
import os
from pathlib import Path

from mnist_dvc.config import paths
from mnist_dvc.config.params import CLASSICAL_MODELS, NEURAL_MODELS, check_train_fits, load_params
from mnist_dvc.errors import run_stage
from mnist_dvc.io.prepared_sets import load_split
from mnist_dvc.io.stage_outputs import read_json
from mnist_dvc.training.distributed import start_if_asked
from mnist_dvc.training.train_and_save import train_model


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 2**32)")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description="Trains the model that params.yaml's train section describes.")
    parser.add_argument("--model", choices=NEURAL_MODELS + CLASSICAL_MODELS, help="instead of train.model (committee members)")
    parser.add_argument("--seed", type=_seed, help="instead of train.seed (committee members)")
    parser.add_argument("--out", type=Path, help="write everything under this folder instead of data/model and eval/")
    return parser.parse_args(argv)


def what_ran(args: argparse.Namespace) -> str:
    """The run as its messages name it: "train", followed by the options a committee member is
    started with, so that the line names the member (`train --model vgg_bn --seed 3 --out ...`)."""
    given = (("model", args.model), ("seed", args.seed), ("out", args.out))
    return " ".join(["train", *(f"--{option} {value}" for option, value in given if value is not None)])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start_if_asked(os.environ)
    overrides = {key: value for key, value in (("model", args.model), ("seed", args.seed)) if value is not None}
    cfg = load_params("train").model_copy(update=overrides)
    out = paths.TrainOutputs.under(args.out) if args.out else paths.TRAIN
    # preparation.json is stored with the model, so new digits are prepared alike.
    train, val = load_split(paths.TRAIN_NPZ), load_split(paths.VAL_NPZ)
    preparation = read_json(paths.PREPARATION_JSON, "preprocess")
    import jax

    from mnist_dvc.training.loop import fingerprint, report_divergence  # imports JAX's training code: after start_if_asked

    check_train_fits(cfg, len(train[1]), jax.device_count())
    with report_divergence(what_ran(args), cfg):
        train_model(cfg, train, val, out, preparation, run_id=fingerprint(cfg, [paths.TRAIN_NPZ, paths.VAL_NPZ]))


if __name__ == "__main__":
    run_stage(main)

"""`mnist-dvc`: the trained model for digits from outside MNIST.

    mnist-dvc predict PATH...                     files or folders of images; one line per digit
    mnist-dvc predict PATH... --json | --csv      the same for machines
    mnist-dvc predict PATH... --show sheet.png    each input beside the 28x28 digit the model saw
                                                  (the first own_digits.SHEET_DIGITS digits)
    mnist-dvc predict --kaggle test.csv --out submission.csv   Kaggle's Digit Recognizer format
                                                  (with --json, --csv or --show as well, if asked)
    mnist-dvc serve [--port 8000]                 a page to draw or upload a digit (127.0.0.1)
    mnist-dvc launch --processes N [--cpu-devices D] -- python -m stages.train
                                                  one command as N cooperating JAX processes here

The model is data/model and the ambiguity cutoffs come from data/ambiguous/summary.json, both
made by `dvc repro` (or `--model` / `--ambiguous` elsewhere), with the temperature that calibrated
the probabilities the cutoffs were drawn from: every probability shown is calibrated with it.
Results go to stdout; status lines (a file written) and errors to stderr, so `--json` and `--csv`
stay machine-readable. Exit status 1 when any input failed (a file that is no readable digit, a
folder without image files: each named on its own line), 0 otherwise.
"""

import argparse
import sys
from pathlib import Path

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError, one_line


def run_predict(args: argparse.Namespace) -> int:
    from mnist_dvc.analysis.ambiguity import load_cutoffs
    from mnist_dvc.app import own_digits
    from mnist_dvc.models.saved import load_classifier, preparation

    cutoff, temperature = load_cutoffs(args.ambiguous)
    prepared_as = preparation(args.model)
    if args.kaggle:
        batch = own_digits.from_kaggle(args.kaggle, prepared_as)
    else:
        batch = own_digits.from_files(args.paths, prepared_as, keep_inputs=own_digits.SHEET_DIGITS if args.show else 0)
    table = own_digits.predict(load_classifier(args.model), batch, cutoff, temperature)
    for failure in batch.failures:
        print(f"error: {failure}", file=sys.stderr)
    if args.kaggle:
        from mnist_dvc.digits.kaggle_csv import write_submission

        write_submission(args.out, table["prediction"].to_numpy())
        print(f"{args.out}: {len(table)} predictions", file=sys.stderr)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    elif args.csv:
        print(table.to_csv(index=False, lineterminator="\n"), end="")
    elif not args.kaggle:
        for row in table.itertuples():
            verdict = f"ambiguous: {row.ambiguous}" if row.ambiguous else "clear"
            print(f"{row.name}: {row.prediction} (p={row.confidence:.3f}), second {row.second} "
                  f"(p={row.second_confidence:.3f}), {verdict}")
    if args.show:
        shown = own_digits.save_sheet(batch, table, args.show)
        count = f"{shown} digits" if shown == len(table) else f"the first {shown} of {len(table)} digits"
        print(f"{args.show}: {count}", file=sys.stderr)
    return 1 if batch.failures else 0


def run_serve(args: argparse.Namespace) -> int:
    from mnist_dvc.analysis.ambiguity import load_cutoffs
    from mnist_dvc.app.web import serve

    serve(args.model, *load_cutoffs(args.ambiguous), host=args.host, port=args.port)
    return 0


def run_launch(args: argparse.Namespace) -> int:
    import os

    from mnist_dvc.app.launch import launch, process_environments

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        parser().error("launch: give the command to run after --")
    return launch(command, process_environments(os.environ, args.processes, args.cpu_devices))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mnist-dvc", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="predict the digits in image files, folders or a Kaggle CSV")
    predict.add_argument("paths", nargs="*", type=Path, help="image files (PNG, JPEG, BMP, GIF, WebP) or folders of them")
    predict.add_argument("--kaggle", type=Path, help="a Kaggle Digit Recognizer CSV (pixel0..pixel783, optional label)")
    predict.add_argument("--out", type=Path, help="with --kaggle: the submission CSV to write (ImageId,Label)")
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON records instead of lines (also with --kaggle)")
    output.add_argument("--csv", action="store_true", help="print CSV instead of lines (also with --kaggle)")
    predict.add_argument("--show", type=Path, help="write a PNG sheet: each input beside the digit the model saw "
                                                   "(the first ones, if there are many)")
    for command in (predict, commands.add_parser("serve", help="a local page to draw or upload digits")):
        command.add_argument("--model", type=Path, default=paths.MODEL, help=f"the trained model's folder (default {paths.MODEL})")
        command.add_argument("--ambiguous", type=Path, default=paths.AMBIGUOUS_SUMMARY,
                             help=f"the ambiguous stage's summary, for its cutoffs and calibration temperature (default {paths.AMBIGUOUS_SUMMARY})")
    launch = commands.add_parser("launch", help="run a command as N cooperating JAX processes on this machine")
    launch.add_argument("--processes", type=int, required=True, help="how many processes")
    launch.add_argument("--cpu-devices", type=int, help="JAX CPU devices per process (JAX_NUM_CPU_DEVICES), for trying it on a CPU")
    launch.add_argument("command_line", nargs=argparse.REMAINDER, help="-- then the command, e.g. -- python -m stages.train")
    serve = commands.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "predict" and bool(args.kaggle) == bool(args.paths):
        parser().error("predict: give image files/folders or --kaggle CSV, not both and not neither")
    if args.command == "predict" and bool(args.kaggle) != bool(args.out):
        parser().error("predict: --kaggle and --out go together")
    try:
        status = {"predict": run_predict, "serve": run_serve, "launch": run_launch}[args.command](args)
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        status = 1
    raise SystemExit(status)

"""`mnist-dvc`: the trained model for digits from outside MNIST.

    mnist-dvc predict PATH...                     files or folders of images; one line per digit
    mnist-dvc predict PATH... --json | --csv      the same for machines
    mnist-dvc predict PATH... --show sheet.png    each input beside the 28x28 digit the model saw
                                                  (the first own_digits.SHEET_DIGITS digits)
    mnist-dvc predict --kaggle test.csv --out submission.csv   Kaggle's Digit Recognizer format
                                                  (with --json, --csv or --show as well, if asked)
    mnist-dvc serve [--port 8000]                 a page to draw or upload a digit (127.0.0.1)
    mnist-dvc predict|serve ... --stage prod      the model at a stage of the model registry instead
                                                  (fetched once into data/registry/<commit>/)
    mnist-dvc predict ... --runtime onnx [--onnx data/export/model.onnx]
                                                  onnxruntime on the exported model instead of JAX
    mnist-dvc export --format onnx [--model data/model] [--out data/export/model.onnx]
                                                  the model as ONNX, written only if it gives JAX's
                                                  answers on the test digits (docs/export.md)
    mnist-dvc promote                             gate HEAD's model against prod's; if it passes, tag
                                                  it as the next version at prod (docs/registry.md)
    mnist-dvc launch --processes N [--cpu-devices D] -- python -m stages.train
                                                  one command as N cooperating JAX processes here
    mnist-dvc review [QUEUE_FOLDER] [--verdicts labels/review.csv] [--port 8000]
                                                  a page to judge a review queue's labels, one digit at a
                                                  time, by keyboard (127.0.0.1; docs/label-review.md)
    mnist-dvc review --merge THEIRS.csv [--verdicts labels/review.csv]
                                                  another reviewer's verdicts merged into yours; a digit
                                                  judged differently becomes ambiguous, each listed

The model is data/model and the ambiguity cutoffs come from data/ambiguous/summary.json, both
made by `dvc repro` (or `--model` / `--ambiguous` elsewhere; with `--stage`, the model at that stage
and the summary of its commit), with the temperature that calibrated the probabilities the cutoffs
were drawn from: every probability shown is calibrated with it.
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

    use_stage(args)
    cutoff, temperature = load_cutoffs(args.ambiguous)
    prepared_as = preparation(args.model)
    if args.kaggle:
        batch = own_digits.from_kaggle(args.kaggle, prepared_as)
    else:
        batch = own_digits.from_files(args.paths, prepared_as, keep_inputs=own_digits.SHEET_DIGITS if args.show else 0)
    if args.runtime == "onnx":
        from mnist_dvc.release.onnx_export import load_onnx_classifier

        classifier = load_onnx_classifier(args.onnx, args.model)
    else:
        classifier = load_classifier(args.model)
    table = own_digits.predict(classifier, batch, cutoff, temperature)
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

    use_stage(args)
    serve(args.model, *load_cutoffs(args.ambiguous), host=args.host, port=args.port)
    return 0


def use_stage(args: argparse.Namespace) -> None:
    """Sets `args.model` and `args.ambiguous`: with `--stage`, the model at that stage of the registry
    and the ambiguous stage's summary of the same commit (unless --ambiguous names one), else the defaults."""
    if args.stage:
        from mnist_dvc.release.registry import fetch

        fetched = fetch(Path("."), args.stage)
        print(f"{fetched.version}, at stage {args.stage}: {fetched.model}", file=sys.stderr)
        args.model, args.ambiguous = fetched.model, args.ambiguous or fetched.summary
    args.model, args.ambiguous = args.model or paths.MODEL, args.ambiguous or paths.AMBIGUOUS_SUMMARY


def run_promote(args: argparse.Namespace) -> int:
    from mnist_dvc.config.params import load_params
    from mnist_dvc.release.registry import promote

    promotion = promote(Path("."), load_params("gate"))
    if not promotion.decision.passed:
        print(promotion.decision.line, file=sys.stderr)
        return 1
    print(promotion.decision.line)
    print("\n".join(promotion.tags))
    print(f"the tags are local until pushed: git push origin {' '.join(promotion.tags)}", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from mnist_dvc.io.prepared_sets import load_split
    from mnist_dvc.models.inference import PREDICT_BATCH
    from mnist_dvc.release.onnx_export import export_checked

    digits, _ = load_split(args.digits)
    record = export_checked(args.model, args.out, digits, PREDICT_BATCH)
    print(f"{args.out}: {record['model']}, {record['file_bytes']:,} bytes, opset {record['opset']} ({record['converter']}); "
          f"JAX's top-1 digit on {record['top1_agreement']:,} of {record['digits_compared']:,} digits of {args.digits}, "
          f"largest probability difference {record['max_prob_diff']:.1e}", file=sys.stderr)
    return 0


def run_review(args: argparse.Namespace) -> int:
    if not args.merge:
        from mnist_dvc.app.review import serve

        serve(args.queue or paths.REVIEW_QUEUE_TEST, args.verdicts, host=args.host, port=args.port)
        return 0
    if args.queue:
        parser().error("review: --merge merges two verdicts files and takes no queue folder")
    from mnist_dvc.errors import read_user_file
    from mnist_dvc.io.verdicts import merge, read_verdicts, write_verdicts

    read_user_file(args.merge)  # a missing file is a mistake here, not an empty review
    mine, theirs = read_verdicts(args.verdicts), read_verdicts(args.merge)
    both = mine.merge(theirs, on=["split", "index"], suffixes=("", "_theirs"))
    for row in both[both["given_label"] != both["given_label_theirs"]].itertuples():
        raise UserError(f"{row.split} digit {row.index}: given_label {row.given_label} in {args.verdicts}, "
                        f"{row.given_label_theirs} in {args.merge}; one was made on other data")
    merged, conflicts = merge(mine, theirs)
    write_verdicts(args.verdicts, merged)
    for row in conflicts.itertuples():
        print(f"conflict: {row.split} digit {row.index} (given {row.given_label}): mine {row.mine}, theirs {row.theirs}; now ambiguous")
    print(f"{args.verdicts}: {len(merged)} verdicts: {len(mine) - len(both)} mine only, {len(theirs) - len(both)} from "
          f"{args.merge} only, {len(both)} in both, {len(conflicts)} of them in conflict", file=sys.stderr)
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
    predict.add_argument("--runtime", choices=("jax", "onnx"), default="jax",
                         help="jax (default), or onnxruntime on the exported model (needs the extra: pip install -e \".[export]\")")
    predict.add_argument("--onnx", type=Path, default=paths.EXPORT_ONNX,
                         help=f"with --runtime onnx: the exported model (default {paths.EXPORT_ONNX}), an export of the --model folder")
    for command in (predict, commands.add_parser("serve", help="a local page to draw or upload digits")):
        model = command.add_mutually_exclusive_group()
        model.add_argument("--model", type=Path, help=f"the trained model's folder (default {paths.MODEL})")
        model.add_argument("--stage", help="the model at this stage of the model registry (e.g. prod), and the ambiguous "
                                           "summary of its commit (docs/registry.md)")
        command.add_argument("--ambiguous", type=Path,
                             help=f"the ambiguous stage's summary, for its cutoffs and calibration temperature (default {paths.AMBIGUOUS_SUMMARY})")
    commands.add_parser("promote", help="gate HEAD's model against the one at stage prod; if it passes, register it and assign it prod")
    export = commands.add_parser("export", help="write the trained model as ONNX, checked against JAX on the test digits")
    export.add_argument("--format", choices=("onnx",), required=True, help="the format to write (onnx)")
    export.add_argument("--model", type=Path, default=paths.MODEL, help=f"the trained model's folder (default {paths.MODEL})")
    export.add_argument("--out", type=Path, default=paths.EXPORT_ONNX, help=f"the file to write (default {paths.EXPORT_ONNX})")
    export.add_argument("--digits", type=Path, default=paths.TEST_NPZ,
                        help=f"prepared digits (.npz) both runtimes must agree on (default {paths.TEST_NPZ})")
    launch = commands.add_parser("launch", help="run a command as N cooperating JAX processes on this machine")
    launch.add_argument("--processes", type=int, required=True, help="how many processes")
    launch.add_argument("--cpu-devices", type=int, help="JAX CPU devices per process (JAX_NUM_CPU_DEVICES), for trying it on a CPU")
    launch.add_argument("command_line", nargs=argparse.REMAINDER, help="-- then the command, e.g. -- python -m stages.train")
    review = commands.add_parser("review", help="a local page to judge MNIST labels, or --merge another reviewer's verdicts")
    review.add_argument("queue", nargs="?", type=Path,
                        help=f"the review queue's folder (default {paths.REVIEW_QUEUE_TEST}; the audit's: "
                             f"{paths.AUDIT_REVIEW}/train, {paths.AUDIT_REVIEW}/test)")
    review.add_argument("--verdicts", type=Path, default=paths.REVIEW_CSV, help=f"the verdicts file (default {paths.REVIEW_CSV})")
    review.add_argument("--merge", type=Path, metavar="THEIRS.csv",
                        help="merge another reviewer's verdicts file into --verdicts instead (docs/label-review.md)")
    for command in (commands.choices["serve"], review):
        command.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
        command.add_argument("--port", type=int, default=8000)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "predict" and bool(args.kaggle) == bool(args.paths):
        parser().error("predict: give image files/folders or --kaggle CSV, not both and not neither")
    if args.command == "predict" and bool(args.kaggle) != bool(args.out):
        parser().error("predict: --kaggle and --out go together")
    try:
        status = {"predict": run_predict, "serve": run_serve, "promote": run_promote, "export": run_export, "launch": run_launch,
                  "review": run_review}[args.command](args)
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        status = 1
    raise SystemExit(status)

"""The reliability suite: bad inputs and injected faults, tried on the real stages.

Every case runs a stage as a real process (`python -m stages.<stage>`) in a temporary copy of the
project and holds it to the promise of mnist_dvc/errors.py and mnist_dvc/io/atomic.py:
- a non-zero exit and no traceback;
- a last line, as a terminal shows it, that starts with `error:` and names the file or parameter;
- no partial output: every file under data/ and eval/ is as it was before the run (the earlier
  output kept, or still none) and no temporary file is left beside them.
Faults a stage is meant to get over (a server error that goes away) must instead end with exit 0
and complete output. Each case is marked `fault_case`, which conftest.py counts in one line.
"""

import gzip
import hashlib
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax.serialization import msgpack_restore
from http_mirror import Mirror, dead_url

RAW_FILES = (  # in the order the download stage fetches them
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FIRST, LAST = RAW_FILES[0], RAW_FILES[-1]
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
# A small slice, so that a good run of any stage takes seconds.
SMALL_PARAMS = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": 500, "preprocess.val_size": 200,
    "train.width": 8, "train.epochs": 1, "evaluate.examples": 4, "ambiguous.top_n": 5,
}
# Found by trying: SGD with momentum at the largest allowed rate sends the 8-layer MLP's loss to NaN
# within the first few steps of the small slice (at step 4; training is seeded, so on every run).
BLOW_UP_PARAMS = {
    "train.model": "flat_mlp", "train.optimizer": "sgd", "train.schedule": "constant",
    "train.learning_rate": 10.0, "train.batch_size": 64,
}


# --- running stages and checking how they end --------------------------------------------------


def run_stage(project: Path, stage: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=timeout,
    )


def start_stage(project: Path, stage: str, env: dict, log: Path) -> subprocess.Popen:
    """Starts a stage in the background, its output going to `log` (a pipe could fill and block it).

Ctrl-C is restored first: a shell starts background jobs with SIGINT ignored and Python keeps an
ignored SIGINT ignored, so a test run from such a job would otherwise interrupt nothing. (Done in
the child's own code rather than a `preexec_fn`, which would fork this multithreaded JAX process.)"""
    run = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
           f"runpy.run_module('stages.{stage}', run_name='__main__', alter_sys=True)")
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-c", run], cwd=project, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_until(condition, process: subprocess.Popen, timeout: float = 120) -> bool:
    """Polls `condition` every millisecond; False if the process ended first or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.001)
    return False


def visible_lines(stderr: str) -> list[str]:
    """The lines a terminal shows: text after a carriage return redraws its line (progress bars do
    this, and clear themselves with spaces), and blank lines show nothing."""
    lines = []
    for line in stderr.split("\n"):
        drawn = [segment for segment in line.split("\r") if segment]
        if drawn and drawn[-1].strip():
            lines.append(drawn[-1].strip())
    return lines


def outputs(project: Path) -> dict[str, str]:
    """Every file under data/ and eval/, with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("data", "eval") if (project / folder).exists()
        for path in sorted((project / folder).rglob("*")) if path.is_file()
    }


def temporary_files(project: Path) -> list[str]:
    """Leftovers of an unfinished atomic write (`.<name>.<random>.tmp`, files or folders)."""
    return sorted(str(path.relative_to(project)) for path in project.rglob(".*.tmp"))


def assert_clean_failure(result, project: Path, before: dict[str, str], *names: str) -> str:
    """The stage failed as promised; returns its error line, which must contain every one of `names`."""
    assert result.returncode == 1, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = visible_lines(result.stderr)
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("error: "), f"last line shown is not the error: {last!r}"
    for name in names:
        assert name in last, f"{name!r} not in {last!r}"
    assert outputs(project) == before, "outputs changed or were added by a failed run"
    assert temporary_files(project) == []
    return last


# --- projects: a template per stage, copied for every case -------------------------------------


@pytest.fixture(scope="module")
def raw_project(make_project, edit_params, tmp_path_factory, stage_env) -> Path:
    """The project with the small params and data/raw filled by the download stage."""
    project = make_project(tmp_path_factory.mktemp("faults") / "raw")
    edit_params(project, SMALL_PARAMS)
    result = run_stage(project, "download", stage_env)
    assert result.returncode == 0, result.stderr
    return project


def with_stage_run(template: Path, stage: str, folder: Path, stage_env: dict) -> Path:
    """A copy of `template` in `folder` with `stage` run in it, successfully."""
    project = shutil.copytree(template, folder)
    result = run_stage(project, stage, stage_env)
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture(scope="module")
def prepared_project(raw_project, tmp_path_factory, stage_env) -> Path:
    """... plus data/prepared from the preprocess stage."""
    return with_stage_run(raw_project, "preprocess", tmp_path_factory.mktemp("faults") / "prepared", stage_env)


@pytest.fixture(scope="module")
def trained_project(prepared_project, tmp_path_factory, stage_env) -> Path:
    """... plus a trained model, its checkpoint and curves from the train stage (one short epoch)."""
    return with_stage_run(prepared_project, "train", tmp_path_factory.mktemp("faults") / "trained", stage_env)


def copy_of(template: Path, tmp_path: Path) -> Path:
    return shutil.copytree(template, tmp_path / "project")


# --- a local HTTP mirror that misbehaves on request (tests/http_mirror.py) ---------------------


@pytest.fixture
def mirror(mnist_mirror):
    server = Mirror(mnist_mirror)
    yield server
    server.stop()


# --- data: one raw file replaced by a broken one -----------------------------------------------


def idx_file(magic: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """A gzip'd IDX file with the given header, and `data` after it whether or not they agree."""
    return gzip.compress(struct.pack(f">{1 + len(dims)}I", magic, *dims) + data)


def idx_data(mnist_mirror: Path, name: str) -> bytes:
    """The data after the header of a real file."""
    content = gzip.decompress((mnist_mirror / name).read_bytes())
    return content[16:] if "images" in name else content[8:]


def truncated(mirror: Path) -> bytes:
    good = (mirror / "t10k-images-idx3-ubyte.gz").read_bytes()
    return good[: len(good) // 2]


def bit_flipped(mirror: Path) -> bytes:
    good = bytearray((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes())
    good[len(good) // 2 : len(good) // 2 + 8] = bytes(8)  # zeros in the middle of the deflate stream
    return bytes(good)


def short_of_its_header(mirror: Path) -> bytes:
    images = idx_data(mirror, "t10k-images-idx3-ubyte.gz")
    return idx_file(IMAGES_MAGIC, (10_000, 28, 28), images[:-784])  # one image fewer than announced


def one_label_missing(mirror: Path) -> bytes:
    return idx_file(LABELS_MAGIC, (9_999,), idx_data(mirror, "t10k-labels-idx1-ubyte.gz")[:-1])


def label_ten(mirror: Path) -> bytes:
    labels = bytearray(idx_data(mirror, "train-labels-idx1-ubyte.gz"))
    labels[7] = 10
    return idx_file(LABELS_MAGIC, (len(labels),), bytes(labels))


def wrong_image_size(mirror: Path) -> bytes:
    images = idx_data(mirror, "t10k-images-idx3-ubyte.gz")
    return idx_file(IMAGES_MAGIC, (10_000, 28, 27), images[: 10_000 * 28 * 27])


# case: (raw file replaced, its new bytes from the mirror folder or None to delete it, words the error must contain)
DATA_CASES = {
    "truncated-gz": ("t10k-images-idx3-ubyte.gz", truncated, ["truncated gzip"]),
    "not-gzip": ("t10k-labels-idx1-ubyte.gz", lambda m: b"<html><body>503 Service Unavailable</body></html>",
                 ["not a gzip file"]),
    "corrupt-gzip": ("t10k-labels-idx1-ubyte.gz", bit_flipped, ["corrupt gzip data"]),
    "wrong-magic": ("t10k-labels-idx1-ubyte.gz", lambda m: (m / "t10k-images-idx3-ubyte.gz").read_bytes(),
                    ["wrong magic number 2051 (images); expected 2049 (labels)"]),
    "size-not-matching-header": ("t10k-images-idx3-ubyte.gz", short_of_its_header,
                                 ["data too short: header says 10000 x 28 x 28"]),
    "wrong-image-size": ("t10k-images-idx3-ubyte.gz", wrong_image_size, ["images are 28x27 pixels"]),
    "label-count-mismatch": ("t10k-labels-idx1-ubyte.gz", one_label_missing,
                             ["9999 labels but", "t10k-images-idx3-ubyte.gz holds 10000 images"]),
    "label-out-of-range": ("train-labels-idx1-ubyte.gz", label_ten, ["label 10 at position 7 is not a digit 0-9"]),
    "empty-file": ("train-labels-idx1-ubyte.gz", lambda m: b"", ["empty file"]),
    "missing-file": ("t10k-images-idx3-ubyte.gz", None, ["not found"]),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("case", DATA_CASES)
def test_preprocess_rejects_a_broken_raw_file(case, prepared_project, mnist_mirror, tmp_path, stage_env):
    name, bad_bytes, words = DATA_CASES[case]
    project = copy_of(prepared_project, tmp_path)
    raw = project / "data" / "raw" / name
    if bad_bytes is None:
        raw.unlink()
    else:
        raw.write_bytes(bad_bytes(mnist_mirror))
    before = outputs(project)  # includes the data/prepared of an earlier good run, which must survive
    result = run_stage(project, "preprocess", stage_env)
    assert_clean_failure(result, project, before, f"data/raw/{name}", *words)


# --- a person's verdicts on labels (labels/review.csv, written by `mnist-dvc review`) -------------

VERDICTS_HEADER = "split,index,given_label,verdict,corrected_label,time\n"
# case: (labels/review.csv's text, words the error must contain besides the file's name). Training
# digit 0 of the official file is a 5, test digit 0 a 7.
VERDICT_CASES = {
    "label-outside-0-9": (VERDICTS_HEADER + "train,0,5,right,,t\ntrain,1,0,wrong,10,t\n", ["row 3", "corrected_label = '10'", "0 to 9"]),
    "no-such-digit": (VERDICTS_HEADER + "test,10000,7,right,,t\n", ["row 2", "index = '10000'", "0 to 9999"]),
    "not-the-official-label": (VERDICTS_HEADER + "test,0,3,wrong,7,t\n", ["test digit 0", "given_label = 3", "official label is 7"]),
    "extra-field": (VERDICTS_HEADER + "train,0,5,right,,t\ntrain,1,0,right,,t,extra\n", ["row 3", "7 fields: expected 6"]),
    "wrong-header": ("split;index;given_label\n", ["header 'split;index;given_label'"]),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("case", VERDICT_CASES)
def test_preprocess_rejects_a_bad_verdict_file(case, prepared_project, tmp_path, stage_env):
    text, words = VERDICT_CASES[case]
    project = copy_of(prepared_project, tmp_path)
    (project / "labels" / "review.csv").write_text(text)
    before = outputs(project)  # the data/prepared of an earlier good run, which must survive
    result = run_stage(project, "preprocess", stage_env)
    assert_clean_failure(result, project, before, "labels/review.csv: ", *words)


# --- download: bad files in a local mirror, and a misbehaving HTTP mirror ----------------------


def download_params(edit_params, project: Path, mirrors: list[str], retries: int = 0, timeout_s: float = 2.0) -> None:
    edit_params(project, {"download.mirrors": mirrors, "download.retries": retries, "download.timeout_s": timeout_s})


def local_mirror(folder: Path, mnist_mirror: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of the MNIST folder in which `replace` maps file names to other bytes, or None to leave one out."""
    folder.mkdir()
    for name in RAW_FILES:
        data = replace.get(name, (mnist_mirror / name).read_bytes())
        if data is not None:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("earlier_download", [False, True], ids=["first-run", "earlier-data-raw-kept"])
def test_download_rejects_a_local_file_with_the_wrong_checksum(
    earlier_download, raw_project, make_project, edit_params, mnist_mirror, tmp_path, stage_env
):
    project = copy_of(raw_project, tmp_path) if earlier_download else make_project(tmp_path / "project")
    wrong = gzip.compress(b"\0\0\x08\x01" + bytes(10))  # well-formed gzip, not the official labels
    folder = local_mirror(tmp_path / "mirror", mnist_mirror, {"t10k-labels-idx1-ubyte.gz": wrong})
    dead = dead_url()
    download_params(edit_params, project, [dead])
    before = outputs(project)
    result = run_stage(project, "download", {**stage_env, "MNIST_MIRROR": str(folder)})
    last = assert_clean_failure(result, project, before, "t10k-labels-idx1-ubyte.gz: no source worked")
    assert f"{folder} (sha256 mismatch: got " in last
    assert f"{dead} (connection refused)" in last


@pytest.mark.fault_case("bad input")
def test_download_rejects_a_local_mirror_missing_a_file(raw_project, edit_params, mnist_mirror, tmp_path, stage_env):
    project = copy_of(raw_project, tmp_path)  # three new good files must not replace the earlier four
    folder = local_mirror(tmp_path / "mirror", mnist_mirror, {LAST: None})
    dead = dead_url()
    download_params(edit_params, project, [dead])
    before = outputs(project)
    result = run_stage(project, "download", {**stage_env, "MNIST_MIRROR": str(folder)})
    last = assert_clean_failure(result, project, before)
    assert last == f"error: {LAST}: no source worked: {folder} (missing); {dead} (connection refused)"


# case: (faults queued for the first file, params, words the error must contain, earlier data/raw present)
NETWORK_CASES = {
    "404": (None, {}, ["(HTTP 404)"], False),
    "500-retries-exhausted": ([500, 500], {"retries": 1}, ["(HTTP 500; 2 attempts)"], True),
    "dropped-mid-body": (["drop"], {}, ["(connection dropped after ", " bytes)"], True),
    "stall-before-headers": (["stall"], {"timeout_s": 0.5}, ["(timed out (no data for 0.5 s))"], False),
    "stall-mid-body": (["stall-body"], {"timeout_s": 0.5}, ["(timed out (no data for 0.5 s))"], True),
    "wrong-checksum-body": ([gzip.compress(b"not the digits")], {"retries": 3}, ["(sha256 mismatch: got "], False),
}


@pytest.mark.fault_case("fault injected")
@pytest.mark.parametrize("case", NETWORK_CASES)
def test_download_fails_cleanly_when_the_mirror_misbehaves(
    case, mirror, raw_project, make_project, edit_params, tmp_path, stage_env
):
    faults, params, words, earlier_download = NETWORK_CASES[case]
    if case == "404":
        mirror.folder = tmp_path / "nothing-here"
    if faults:
        mirror.faults[FIRST] = list(faults)
    project = copy_of(raw_project, tmp_path) if earlier_download else make_project(tmp_path / "project")
    download_params(edit_params, project, [mirror.url], **params)
    before = outputs(project)
    result = run_stage(project, "download", {**stage_env, "MNIST_MIRROR": ""})
    assert_clean_failure(result, project, before, f"{FIRST}: no source worked: {mirror.url} ", *words)
    if case == "wrong-checksum-body":
        assert mirror.requests[FIRST] == 1, "a wrong file is not worth asking for again"


@pytest.mark.fault_case("fault injected", recovers=True)
def test_download_recovers_when_a_server_error_goes_away(
    mirror, mnist_mirror, make_project, edit_params, tmp_path, stage_env
):
    mirror.faults[FIRST] = [500]
    project = make_project(tmp_path / "project")
    download_params(edit_params, project, [mirror.url], retries=1)
    result = run_stage(project, "download", {**stage_env, "MNIST_MIRROR": ""})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert mirror.requests[FIRST] == 2
    raw = project / "data" / "raw"
    assert sorted(path.name for path in raw.iterdir()) == sorted(RAW_FILES)
    for name in RAW_FILES:
        assert (raw / name).read_bytes() == (mnist_mirror / name).read_bytes()
    assert temporary_files(project) == []


# --- parameters: every stage checks the whole params.yaml before it starts ---------------------

# case: (stage run, params changed (or the whole file's text), words the error must contain)
PARAM_CASES = {
    "unknown-key": ("download", {"train.epoch": 3}, ["train.epoch: unknown key", "allowed here:", "epochs"]),
    "wrong-type": ("download", {"train.epochs": "ten"}, ["train.epochs = 'ten'", "valid integer"]),
    "float-for-int": ("evaluate", {"evaluate.batch_size": 1.5}, ["evaluate.batch_size = 1.5", "valid integer"]),
    "string-for-bool": ("preprocess", {"preprocess.deskew": "yes"}, ["preprocess.deskew = 'yes'", "valid boolean"]),
    "epochs-zero": ("download", {"train.epochs": 0}, ["train.epochs = 0", "greater than or equal to 1"]),
    "negative-learning-rate": ("download", {"train.learning_rate": -0.1},
                               ["train.learning_rate = -0.1", "greater than 0"]),
    "val-size-too-large": ("preprocess", {"preprocess.val_size": 5000},
                           ["val_size = 5000", "at most 1990 of the 2000 training images"]),
    "top-n-zero": ("ambiguous", {"ambiguous.top_n": 0}, ["ambiguous.top_n = 0", "greater than or equal to 1"]),
    "unknown-model": ("train", {"train.model": "resnet9000"}, ["train.model = 'resnet9000'", "'vgg_bn'", "'knn'"]),
    "no-mirrors": ("download", {"download.mirrors": []}, ["download.mirrors = []", "at least 1 item"]),
    "batch-larger-than-data": ("train", {"train.batch_size": 4096},
                               ["train.batch_size = 4096", "larger than the 1800 training images"]),
    "invalid-yaml": ("download", "train:\n  epochs: [1\n", ["params.yaml: not valid YAML"]),
    "not-a-mapping": ("download", "- download\n- train\n", ["params.yaml: expected a mapping of sections, got list"]),
    "missing-file": ("download", None, ["params.yaml: not found"]),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("case", PARAM_CASES)
def test_a_bad_parameter_stops_the_stage_before_it_starts(case, trained_project, edit_params, tmp_path, stage_env):
    stage, changes, words = PARAM_CASES[case]
    project = copy_of(trained_project, tmp_path)
    if isinstance(changes, dict):
        edit_params(project, changes)
    elif changes is None:
        (project / "params.yaml").unlink()
    else:
        (project / "params.yaml").write_text(changes)
    before = outputs(project)
    result = run_stage(project, stage, stage_env)
    assert_clean_failure(result, project, before, *words)


# --- the trained model: damaged, missing, or not the one model.json describes ------------------


def random_bytes(model: Path) -> bytes:
    return np.random.default_rng(0).bytes((model / "model.msgpack").stat().st_size)


# case: (file in data/model, its new bytes from the model folder or None to delete it, words the error must contain)
MODEL_CASES = {
    "weights-random-bytes": ("model.msgpack", random_bytes, ["data/model/model.msgpack: corrupt"]),
    "weights-truncated": ("model.msgpack", lambda m: (m / "model.msgpack").read_bytes()[:5000],
                          ["data/model/model.msgpack: corrupt"]),
    "weights-missing": ("model.msgpack", None, ["data/model/model.msgpack: not found"]),
    "weights-are-a-training-checkpoint": ("model.msgpack", lambda m: (m.parent / "checkpoints" / "last.msgpack").read_bytes(),
                                          ["data/model/model.msgpack: holds", "arrays, but this model needs"]),
    "weights-of-another-width": ("model.json", lambda m: b'{"model": "vgg_bn", "width": 16}',
                                 ["data/model/model.msgpack: array", "but this model needs"]),
    "description-missing": ("model.json", None, ["data/model/model.json: not found"]),
    "description-not-json": ("model.json", lambda m: b'{"model": "vgg_b', ["data/model/model.json: corrupt, not JSON"]),
    "description-unknown-model": ("model.json", lambda m: b'{"model": "resnet9000", "width": 8}',
                                  ["data/model/model.json: unknown model 'resnet9000'", "vgg_bn"]),
    "description-without-width": ("model.json", lambda m: b'{"model": "vgg_bn"}', ["data/model/model.json", "width"]),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("case", MODEL_CASES)
def test_evaluate_rejects_a_broken_model(case, trained_project, tmp_path, stage_env):
    name, bad_bytes, words = MODEL_CASES[case]
    project = copy_of(trained_project, tmp_path)
    model = project / "data" / "model"
    if bad_bytes is None:
        (model / name).unlink()
    else:
        (model / name).write_bytes(bad_bytes(model))
    before = outputs(project)
    result = run_stage(project, "evaluate", stage_env)
    assert_clean_failure(result, project, before, *words)


# --- the arrays one stage hands to the next: damaged or missing ----------------------------------

# case: (stage run, file damaged, its new bytes or None to delete it, words the error must contain)
HANDOVER_CASES = {
    "train-set-truncated": ("train", "data/prepared/train.npz", lambda data: data[: len(data) // 2],
                            ["data/prepared/train.npz", "rerun the preprocess stage"]),
    "test-set-empty": ("evaluate", "data/prepared/test.npz", lambda data: b"",
                       ["data/prepared/test.npz", "rerun the preprocess stage"]),
    "probabilities-missing": ("ambiguous", "data/eval/probs.npz", None,
                              ["data/eval/probs.npz: not found", "evaluate stage"]),
    # The shipped committee's first member, vgg_bn with seed 1, was never trained here.
    "committee-member-missing": ("vote", "data/committee/vgg_bn-1/model/model.json", None,
                                 ["data/committee/vgg_bn-1/model/model.json: not found", "train stage"]),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("case", HANDOVER_CASES)
def test_a_damaged_intermediate_file_names_the_stage_to_rerun(case, trained_project, tmp_path, stage_env):
    stage, name, damage, words = HANDOVER_CASES[case]
    project = copy_of(trained_project, tmp_path)
    path = project / name
    if damage is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(damage(path.read_bytes()))
    before = outputs(project)
    result = run_stage(project, stage, stage_env)
    assert_clean_failure(result, project, before, *words)


# --- faults during a run: a loss that blows up, a process killed or interrupted mid-write ------


@pytest.mark.fault_case("fault injected")
def test_training_that_goes_non_finite_stops_and_keeps_the_earlier_model(
    trained_project, edit_params, tmp_path, stage_env
):
    project = copy_of(trained_project, tmp_path)
    edit_params(project, BLOW_UP_PARAMS)
    before = outputs(project)  # the earlier run's model, checkpoint and curves
    assert {"data/model/model.msgpack", "data/checkpoints/last.msgpack"} <= set(before)
    result = run_stage(project, "train", stage_env)
    last = assert_clean_failure(result, project, before, "train: the loss became ", "train.learning_rate")
    assert any(f"the loss became {value} at epoch 1, step " in last for value in ("nan", "inf", "-inf")), last


@pytest.mark.fault_case("fault injected", recovers=True)
def test_training_ignores_a_damaged_checkpoint_and_starts_afresh(trained_project, tmp_path, stage_env):
    project = copy_of(trained_project, tmp_path)
    checkpoint = project / "data/checkpoints/last.msgpack"
    checkpoint.write_bytes(np.random.default_rng(0).bytes(checkpoint.stat().st_size))
    (project / "data/model/model.msgpack").unlink()
    result = run_stage(project, "train", stage_env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "ignoring the checkpoint: data/checkpoints/last.msgpack: corrupt" in result.stdout
    assert "resuming" not in result.stdout
    assert (project / "data/model/model.msgpack").read_bytes() == (trained_project / "data/model/model.msgpack").read_bytes()
    assert msgpack_restore(checkpoint.read_bytes())["meta"]["epoch"] == 1  # a good one again
    assert temporary_files(project) == []


def prepared_complete(project: Path) -> bool:
    """Whether data/prepared holds the three full-size splits (what a finished run writes)."""
    folder = project / "data" / "prepared"
    with np.load(folder / "train.npz") as train, np.load(folder / "val.npz") as val, \
            np.load(folder / "test.npz") as test:
        return (len(train["labels"]) + len(val["labels"]) == 60_000 and test["images"].shape == (10_000, 28, 28)
                and len(test["index"]) == 10_000)


def writing_prepared(project: Path) -> bool:
    """True once the preprocess stage has begun writing a file inside its temporary folder."""
    return any(path.is_file() for path in (project / "data").glob(".prepared.*.tmp/*"))


@pytest.mark.fault_case("fault injected")
def test_preprocess_killed_while_writing_leaves_no_half_output(raw_project, edit_params, tmp_path, stage_env):
    project = copy_of(raw_project, tmp_path)
    edit_params(project, {"preprocess.train_subset": 0, "preprocess.test_subset": 0, "preprocess.val_size": 5000})
    process = start_stage(project, "preprocess", stage_env, tmp_path / "log")
    caught = wait_until(lambda: writing_prepared(project), process)
    process.send_signal(signal.SIGKILL)
    status = process.wait(30)
    assert caught, "the stage ended before it began writing: " + (tmp_path / "log").read_text()
    assert status == -signal.SIGKILL
    # Nothing can clean up after SIGKILL: a hidden temporary folder may stay, but data/prepared is
    # either absent or complete, never a folder a later stage would read half of.
    prepared = project / "data" / "prepared"
    assert not prepared.exists() or prepared_complete(project)
    assert all(Path(name).parts[1].startswith(".prepared.") for name in temporary_files(project))


@pytest.mark.fault_case("fault injected")
def test_preprocess_interrupted_while_writing_keeps_the_earlier_output(prepared_project, edit_params, tmp_path, stage_env):
    project = copy_of(prepared_project, tmp_path)
    edit_params(project, {"preprocess.train_subset": 0, "preprocess.test_subset": 0, "preprocess.val_size": 5000})
    before = outputs(project)
    process = start_stage(project, "preprocess", stage_env, tmp_path / "log")
    caught = wait_until(lambda: writing_prepared(project), process)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    status = process.wait(30)
    output = (tmp_path / "log").read_text()
    assert caught, "the stage ended before it began writing: " + output
    assert status == 130, output
    assert "Traceback" not in output
    assert visible_lines(output)[-1] == "error: interrupted"
    assert outputs(project) == before
    assert temporary_files(project) == []


@pytest.mark.fault_case("fault injected")
def test_download_interrupted_mid_transfer_leaves_nothing(mirror, make_project, edit_params, tmp_path, stage_env):
    mirror.faults[FIRST] = ["stall-body"]
    project = make_project(tmp_path / "project")
    download_params(edit_params, project, [mirror.url], timeout_s=60.0)
    before = outputs(project)  # the committed eval/ files only; nothing under data/ yet
    process = start_stage(project, "download", {**stage_env, "MNIST_MIRROR": ""}, tmp_path / "log")
    caught = wait_until(lambda: mirror.requests[FIRST] == 1, process)
    time.sleep(0.5)  # let the client read the first bytes of the body and wait for more
    process.send_signal(signal.SIGINT)
    status = process.wait(30)
    output = (tmp_path / "log").read_text()
    assert caught, output
    assert status == 130, output
    assert "Traceback" not in output
    assert visible_lines(output)[-1] == "error: interrupted"
    assert outputs(project) == before
    assert temporary_files(project) == []

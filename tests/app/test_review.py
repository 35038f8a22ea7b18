"""`mnist-dvc review` (mnist_dvc/app/review.py and its CLI) on a real queue of MNIST test digits: the API
over a real uvicorn server on 127.0.0.1, every bad request answered with one line and a 4xx status
while labels/review.csv stays byte for byte as it was (fault-suite cases), and the command itself:
the page served by a real `mnist-dvc review` process, and `--merge` of two reviewers' files."""

import concurrent.futures
import re
import socket
import subprocess
import sys
import time

import httpx2
import pytest
from live_server import live_server
from review_queues import write_queue_folder

from mnist_dvc.app import review
from mnist_dvc.app.queue_folder import read_queue
from mnist_dvc.errors import UserError
from mnist_dvc.io import verdicts
from mnist_dvc.io.idx import read_split

HEADER = ",".join(verdicts.COLUMNS)
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MNIST_DVC = [sys.executable, "-c", "from mnist_dvc.app.cli import main; main()"]


@pytest.fixture(scope="module")
def queue(tmp_path_factory, mnist_mirror, mnist_train):
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return write_queue_folder(tmp_path_factory.mktemp("queue"), "test", 10, images, labels, *mnist_train)


@pytest.fixture(scope="module")
def digits(queue):
    return read_queue(queue).digits


@pytest.fixture(scope="module")
def verdicts_file(tmp_path_factory):
    return tmp_path_factory.mktemp("labels") / "review.csv"


@pytest.fixture(scope="module")
def server(queue, verdicts_file):
    with live_server(review.create_app(queue, verdicts_file)) as url:
        yield url


@pytest.fixture
def http(server, verdicts_file):
    """A client of the module's server, with its verdicts file back to the shipped one: a header only."""
    verdicts_file.write_text(HEADER + "\n")
    with httpx2.Client(base_url=server, timeout=30) as client:
        yield client


def give(http, split, index, verdict, corrected=None):
    return http.post("/api/verdict", json={"split": split, "index": index, "verdict": verdict, "corrected_label": corrected})


# --- The queue and its pictures ------------------------------------------------------------------


def test_the_queue_lists_every_digit_in_rank_order_with_its_verdict(http, digits):
    listing = http.get("/api/queue").json()
    assert [digit["index"] for digit in listing["digits"]] == [digit.index for digit in digits]
    first = listing["digits"][0]
    assert set(first) == {"rank", "split", "index", "given_label", "suggested_label", "label_quality", "flagged", "margin",
                          "entropy", "probs", "digit_url", "explained_url", "verdict"}
    assert first["rank"] == 1 and len(first["probs"]) == 10 and first["verdict"] is None
    assert give(http, "test", digits[1].index, "ambiguous").status_code == 200
    assert http.get("/api/queue").json()["digits"][1]["verdict"]["verdict"] == "ambiguous"


def test_each_digit_s_pictures_are_served_and_nothing_else(http, digits, queue):
    digit = http.get("/api/queue").json()["digits"][0]
    for url, path in ((digit["digit_url"], digits[0].digit), (digit["explained_url"], digits[0].explained)):
        response = http.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert response.content == path.read_bytes()
    (queue.parent / "secret.txt").write_text("not for the page")
    for url, words in ((f"/api/pictures/test/{digits[0].index}/gallery", "no picture 'gallery'"),
                       ("/api/pictures/test/9999/digit", "test digit 9999: not in the queue"),
                       ("/api/pictures/test/..%2F..%2Fsecret.txt/digit", "Not Found"),  # no route: the path has more parts
                       ("/api/pictures/test/-1/digit", "not in the queue")):
        response = http.get(url)
        assert response.status_code == 404 and words in response.json()["error"], url


def test_the_page_is_served_with_nothing_external(http):
    response = http.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    for element in ("digit", "explained", "bars", "given", "suggested", "quality", "rank", "progress", "verdict", "error", "done"):
        assert f'id="{element}"' in response.text
    assert "http://" not in response.text and "https://" not in response.text


# --- Verdicts --------------------------------------------------------------------------------------


def test_a_verdict_is_saved_at_once_with_the_queue_s_given_label(http, verdicts_file, digits):
    digit = digits[0]
    other = (digit.given_label + 1) % 10
    response = give(http, "test", digit.index, "wrong", other)
    assert response.status_code == 200
    saved = response.json()
    assert {key: saved[key] for key in ("split", "index", "verdict", "corrected_label")} == {
        "split": "test", "index": digit.index, "verdict": "wrong", "corrected_label": other}
    assert TIME.match(saved["time"])
    assert verdicts_file.read_text() == f"{HEADER}\ntest,{digit.index},{digit.given_label},wrong,{other},{saved['time']}\n"


def test_a_second_verdict_replaces_the_first_and_rows_stay_sorted(http, verdicts_file, digits):
    for digit in digits[:3]:
        assert give(http, "test", digit.index, "right").status_code == 200
    assert give(http, "test", digits[1].index, "ambiguous").status_code == 200
    table = verdicts.read_verdicts(verdicts_file)
    assert table["index"].tolist() == sorted(digit.index for digit in digits[:3])
    assert dict(zip(table["index"], table["verdict"])) == {digits[0].index: "right", digits[1].index: "ambiguous",
                                                           digits[2].index: "right"}


def test_verdicts_given_at_once_all_land(server, verdicts_file, digits):
    """Eight verdicts sent together: each is read, changed and written whole in turn, so none is lost."""
    verdicts_file.write_text(HEADER + "\n")

    def send(digit):
        with httpx2.Client(base_url=server, timeout=30) as client:
            return give(client, "test", digit.index, "ambiguous").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(send, digits[:8])) == [200] * 8
    assert sorted(verdicts.read_verdicts(verdicts_file)["index"]) == sorted(digit.index for digit in digits[:8])


JSON = {"content-type": "application/json"}


def good(digit) -> dict:
    return {"split": "test", "index": digit.index, "verdict": "right", "corrected_label": None}


# name -> function of a queued digit giving (the request's keyword arguments, status, words of the error)
BAD_REQUESTS = {
    "not JSON": lambda d: ({"content": b'{"split": "test", ', "headers": JSON}, 400, "request body: not valid JSON"),
    "not UTF-8": lambda d: ({"content": b'{"split": "\xff"}', "headers": JSON}, 400, "request body: not valid JSON"),
    "a list": lambda d: ({"json": [good(d)]}, 400, "request body: expected a JSON object with the fields split, index, verdict, corrected_label"),
    "a field missing": lambda d: ({"json": {"split": "test", "index": d.index}}, 400, "missing field 'verdict'"),
    "an unknown field": lambda d: ({"json": {**good(d), "label": 3}}, 400, "unknown field 'label'"),
    "index as text": lambda d: ({"json": {**good(d), "index": str(d.index)}}, 400, f'index = "{d.index}": expected a whole number'),
    "index as a boolean": lambda d: ({"json": {**good(d), "index": True}}, 400, "index = true: expected a whole number"),
    "label as text": lambda d: ({"json": {**good(d), "verdict": "wrong", "corrected_label": "3"}}, 400,
                                'corrected_label = "3": expected a whole number or null'),
    "an unknown split": lambda d: ({"json": {**good(d), "split": "val"}}, 422, "split = 'val': expected train or test"),
    "an unknown digit": lambda d: ({"json": {**good(d), "index": 9999}}, 404, "test digit 9999: not in the queue"),
    "a training digit": lambda d: ({"json": {**good(d), "split": "train"}}, 404, f"train digit {d.index}: not in the queue"),
    "a wrong verdict word": lambda d: ({"json": {**good(d), "verdict": "maybe"}}, 422,
                                       "verdict = 'maybe': expected one of right, wrong, ambiguous"),
    "a label of 10": lambda d: ({"json": {**good(d), "verdict": "wrong", "corrected_label": 10}}, 422,
                                "corrected_label = 10: expected a digit from 0 to 9"),
    "a label of -1": lambda d: ({"json": {**good(d), "verdict": "wrong", "corrected_label": -1}}, 422,
                                "corrected_label = -1: expected a digit from 0 to 9"),
    "the given label as a correction": lambda d: ({"json": {**good(d), "verdict": "wrong", "corrected_label": d.given_label}}, 422,
                                                  f"corrected_label = {d.given_label} is the given label of test digit {d.index}"),
    "wrong without a label": lambda d: ({"json": {**good(d), "verdict": "wrong"}}, 422, "a `wrong` verdict needs the label"),
    "right with a label": lambda d: ({"json": {**good(d), "corrected_label": 3}}, 422, "corrected_label = 3: only a `wrong` verdict has one"),
    "an oversized body": lambda d: ({"json": {**good(d), "note": "x" * 5000}}, 413, "request body too large: 5,"),
    "a form, not JSON": lambda d: ({"data": {"split": "test"}}, 415, "send the verdict as JSON (Content-Type: application/json)"),
    "JSON sent as text": lambda d: ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415, "send the verdict as JSON"),
    "no Content-Length": lambda d: ({"content": iter([b"{}"]), "headers": JSON}, 411, "must declare its size (Content-Length)"),
    "a foreign Host": lambda d: ({"json": good(d), "headers": {"host": "attacker.example"}}, 400,
                                 "Host 'attacker.example': this page answers to 127.0.0.1, localhost, ::1 only"),
}


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_a_bad_request_is_one_clear_error_and_the_file_is_untouched(http, verdicts_file, digits, name):
    assert give(http, "test", digits[2].index, "wrong", (digits[2].given_label + 5) % 10).status_code == 200
    before = verdicts_file.read_bytes()
    request, status, words = BAD_REQUESTS[name](digits[0])
    response = http.post("/api/verdict", **request)
    assert response.status_code == status
    message = response.json()["error"]
    assert words in message and "\n" not in message
    assert verdicts_file.read_bytes() == before
    assert [entry.name for entry in verdicts_file.parent.iterdir()] == ["review.csv"]  # no temporary file left either
    assert give(http, "test", digits[3].index, "right").status_code == 200  # and the server carries on


@pytest.mark.fault_case("bad input")
def test_a_verdicts_file_broken_while_the_page_runs_is_named_and_left_alone(http, verdicts_file, digits):
    verdicts_file.write_text(f"{HEADER}\ntest,{digits[0].index},{digits[0].given_label},perhaps,,t\n")
    before = verdicts_file.read_bytes()
    for response in (give(http, "test", digits[1].index, "right"), http.get("/api/queue")):
        assert response.status_code == 500
        assert response.json()["error"] == f"{verdicts_file}: row 2: verdict = 'perhaps': expected one of right, wrong, ambiguous"
    assert verdicts_file.read_bytes() == before


def test_verdicts_made_on_other_data_stop_the_page_before_it_starts(queue, tmp_path, digits):
    path = tmp_path / "review.csv"
    other = (digits[0].given_label + 1) % 10
    path.write_text(f"{HEADER}\ntest,{digits[0].index},{other},right,,t\n")
    with pytest.raises(UserError, match=f"test digit {digits[0].index}: given_label = {other}, but the queue .* gives "
                                        f"{digits[0].given_label}; the verdict was made on other data"):
        review.create_app(queue, path)


# --- The command ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mnist_dvc_review_serves_the_page_and_saves_verdicts(queue, tmp_path, digits):
    port = free_port()
    path = tmp_path / "labels" / "review.csv"
    process = subprocess.Popen([*MNIST_DVC, "review", str(queue), "--verdicts", str(path), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                try:
                    listing = client.get("/api/queue").json()
                    break
                except httpx2.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline, "mnist-dvc review did not start"
                    time.sleep(0.2)
            assert len(listing["digits"]) == 10 and listing["verdicts_file"] == str(path)
            assert give(client, "test", digits[0].index, "ambiguous").status_code == 200
            assert client.get("/").status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert out.startswith(f"Label review of {queue}, verdicts to {path}: open http://127.0.0.1:{port}/")
    assert "Traceback" not in err
    assert verdicts.read_verdicts(path)["verdict"].tolist() == ["ambiguous"]


def test_mnist_dvc_review_without_its_queue_says_which_command_makes_it(tmp_path):
    done = subprocess.run([*MNIST_DVC, "review"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == "error: data/ambiguous/review/queue.csv: not found; `dvc repro` makes it (stage ambiguous)\n"


def merge(cwd, *args):
    return subprocess.run([*MNIST_DVC, "review", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_merge_joins_two_reviewers_and_lists_each_conflict(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "review.csv").write_text(f"{HEADER}\ntest,3,5,wrong,3,2026-12-06T10:00:00Z\ntest,8,5,right,,2026-12-06T10:00:01Z\n"
                                       "test,9,4,right,,2026-12-06T10:00:02Z\n")
    (tmp_path / "theirs.csv").write_text(f"{HEADER}\ntest,3,5,ambiguous,,2026-12-06T11:00:00Z\ntest,9,4,right,,2026-12-06T11:00:02Z\n"
                                         "train,0,5,wrong,3,2026-12-06T11:00:03Z\n")
    done = merge(tmp_path, "--merge", "theirs.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "conflict: test digit 3 (given 5): mine wrong: 3, theirs ambiguous; now ambiguous\n"
    assert done.stderr == ("labels/review.csv: 4 verdicts: 1 mine only, 1 from theirs.csv only, 2 in both, 1 of them in conflict\n")
    assert (labels / "review.csv").read_text() == (
        f"{HEADER}\ntest,3,5,ambiguous,,2026-12-06T11:00:00Z\ntest,8,5,right,,2026-12-06T10:00:01Z\n"
        "test,9,4,right,,2026-12-06T11:00:02Z\ntrain,0,5,wrong,3,2026-12-06T11:00:03Z\n")
    again = merge(tmp_path, "--merge", "theirs.csv")  # merging the same file twice changes nothing more
    assert again.returncode == 0 and again.stdout == "" and "0 of them in conflict" in again.stderr


@pytest.mark.fault_case("bad input")
@pytest.mark.parametrize(("theirs", "message"), [
    (None, "error: theirs.csv: not found"),
    (f"{HEADER}\ntest,3,5,wrong,5,t\n", "error: theirs.csv: row 2: corrected_label = 5 is the given label"),
    (f"{HEADER}\ntest,3,6,right,,t\n", "error: test digit 3: given_label 5 in mine.csv, 6 in theirs.csv; one was made on other data"),
], ids=["missing", "a bad row", "other data"])
def test_a_merge_that_cannot_be_made_changes_nothing(tmp_path, theirs, message):
    mine = tmp_path / "mine.csv"
    mine.write_text(f"{HEADER}\ntest,3,5,right,,t\n")
    if theirs is not None:
        (tmp_path / "theirs.csv").write_text(theirs)
    done = merge(tmp_path, "--merge", "theirs.csv", "--verdicts", "mine.csv")
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and done.stderr.startswith(message)
    assert done.stdout == "" and mine.read_text() == f"{HEADER}\ntest,3,5,right,,t\n"


def test_merge_takes_no_queue_folder(tmp_path):
    done = merge(tmp_path, "data/ambiguous/review", "--merge", "theirs.csv")
    assert done.returncode == 2 and "--merge merges two verdicts files and takes no queue folder" in done.stderr

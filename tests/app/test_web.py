"""The page of "Your own digits" (mnist_dvc/app/web.py) with a real model trained by the train stage:
the API through FastAPI's TestClient and a real uvicorn server, and the page itself driven in a
real headless Chromium (tests marked `browser`, skipped where /usr/bin/chromium is missing).

With the environment variable MNIST_SCREENSHOT set to a file name, the browser test that draws a
one also copies its screenshot of the page there (the README's picture:
`MNIST_SCREENSHOT=bench/results/page.png python -m pytest tests/app/test_web.py -k drawn_one`)."""

import io
import os
import shutil
from pathlib import Path

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from live_server import live_server
from PIL import Image

from mnist_dvc.analysis.calibration import apply_temperature, logits_from_probs
from mnist_dvc.app import web
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.digits.deskew import deskew
from mnist_dvc.io.atomic import save_npz, write_json
from mnist_dvc.io.idx import read_split
from stages import train as train_stage

TRAIN_IMAGES, VAL_IMAGES = 5000, 500
PAD = 280  # the page's drawing pad, in CSS pixels
# Strokes on the pad, in pad pixels: a one is a single upright stroke.
ONE = [[(140, 40), (140, 240)]]
SEVEN = [[(70, 60), (210, 60), (120, 240)]]


# --- A real model, the app and a live server -------------------------------------------------


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, repo_root, mnist_train, edit_params) -> Path:
    """A vgg_bn of width 8 trained by the real train stage for 6 epochs on 5,000 MNIST digits,
    preprocessed as params.yaml says: small and quick, yet it reads clearly drawn digits."""
    project = tmp_path_factory.mktemp("web_project")
    shutil.copy(repo_root / "params.yaml", project)
    edit_params(project, {"train.model": "vgg_bn", "train.width": 8, "train.epochs": 6, "train.batch_size": 64})
    deskewed = load_params("preprocess", project / "params.yaml").deskew
    images, labels = mnist_train
    if deskewed:
        images = deskew(images[: TRAIN_IMAGES + VAL_IMAGES])
    prepared = project / paths.PREPARED
    prepared.mkdir(parents=True)
    save_npz(prepared / paths.TRAIN_NPZ.name, images=images[:TRAIN_IMAGES], labels=labels[:TRAIN_IMAGES])
    save_npz(prepared / paths.VAL_NPZ.name, images=images[TRAIN_IMAGES : TRAIN_IMAGES + VAL_IMAGES],
             labels=labels[TRAIN_IMAGES : TRAIN_IMAGES + VAL_IMAGES])
    write_json(prepared / paths.PREPARATION_JSON.name, {"deskew": deskewed})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        train_stage.main([])
    return project / paths.MODEL


# Cutoffs as the ambiguous stage's summary would give them (`ambiguity.cutoffs`): a digit below 50%
# confidence, within 0.2 of its runner-up or above 1 nat of entropy would have made its lists.
CUTOFF = {"least_confident": 0.5, "smallest_margin": 0.2, "highest_entropy": 1.0}
TEMPERATURE = 0.8  # as the summary would record it; not 1, so that a page ignoring it is caught


@pytest.fixture(scope="module")
def app(model_folder):
    return web.create_app(model_folder, CUTOFF, TEMPERATURE)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_url(app):
    """http://127.0.0.1:<free port> of a real uvicorn server running the app in a background thread."""
    with live_server(app) as url:
        yield url


# --- Pictures ------------------------------------------------------------------------------------


def paper_png(digit: np.ndarray, size: int = 280) -> bytes:
    """An MNIST digit as a photo of paper would show it: dark ink on white, `size` pixels square, PNG."""
    picture = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def test_digits(mnist_mirror):
    """The first two test digits of each class: (uint8 (20, 28, 28) images, labels)."""
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    chosen = np.concatenate([np.flatnonzero(labels == digit)[:2] for digit in range(10)])
    return images[chosen], labels[chosen]


def post(client, data: bytes, name: str = "digit.png", content_type: str = "image/png"):
    return client.post("/api/predict", files={"file": (name, data, content_type)})


@pytest.fixture(scope="module")
def sure_digit(client, test_digits) -> tuple[bytes, int]:
    """(PNG, label) of a test digit the model gets right with at least 90% confidence."""
    for image, label in zip(*test_digits):
        answer = post(client, paper_png(image)).json()
        if answer["prediction"] == label and answer["confidence"] >= 0.9:
            return paper_png(image), int(label)
    pytest.fail("the small model is sure and right about none of the 20 test digits")


# --- The verdict on one digit --------------------------------------------------------------------


def test_a_clear_digit_gets_a_clear_verdict():
    probs = np.full(10, 0.01)
    probs[3] = 0.91
    answer = web.verdict(probs, CUTOFF)
    assert answer["prediction"] == 3 and answer["confidence"] == pytest.approx(0.91)
    assert answer["second"] == 0 and answer["margin"] == pytest.approx(0.90)  # equal runners-up: the lower digit
    assert answer["ambiguous"] is False and answer["reasons"] == []
    assert 0 < answer["entropy"] < np.log(10)


def test_a_close_call_is_ambiguous_and_says_why():
    probs = np.array([0.0, 0.0, 0.0, 0.25, 0.0, 0.35, 0.1, 0.1, 0.1, 0.1])
    answer = web.verdict(probs, CUTOFF)
    assert (answer["prediction"], answer["second"], answer["ambiguous"]) == (5, 3, True)
    assert [reason.split(":")[0] for reason in answer["reasons"]] == ["least_confident", "smallest_margin", "highest_entropy"]
    assert answer["reasons"][1].startswith("smallest_margin: margin 0.100 is below 0.200")
    assert web.verdict(probs, {"least_confident": 0.3, "smallest_margin": 0.05})["ambiguous"] is False


# --- The API ---------------------------------------------------------------------------------


def test_photos_of_test_digits_are_read_as_their_labels(client, test_digits):
    images, labels = test_digits
    right = 0
    for image, label in zip(images, labels):
        response = post(client, paper_png(image))
        assert response.status_code == 200, response.text
        answer = response.json()
        digit = np.array(answer["digit28"])
        assert digit.shape == (28, 28) and digit.min() == 0 and 200 < digit.max() <= 255
        assert len(answer["probs"]) == 10 and sum(answer["probs"]) == pytest.approx(1.0, abs=1e-4)
        assert answer["prediction"] == int(np.argmax(answer["probs"]))
        right += answer["prediction"] == label
    assert right >= 16, f"only {right} of 20 test digits read right"


def test_the_probabilities_are_calibrated_with_the_summary_s_temperature(client, test_digits, model_folder):
    """The page shows the model's probabilities scaled by the temperature, the terms the cutoffs are in."""
    from mnist_dvc.models.saved import load_classifier

    answer = post(client, paper_png(test_digits[0][0])).json()
    raw = load_classifier(model_folder)(np.array(answer["digit28"], dtype=np.uint8)[None])
    assert answer["probs"] == pytest.approx(apply_temperature(logits_from_probs(raw), TEMPERATURE)[0].tolist(), abs=1e-6)
    assert answer["probs"] != pytest.approx(raw[0].tolist(), abs=1e-3)


def test_the_digit_the_model_sees_is_the_mnist_digit_again(client, test_digits):
    """A photo of an MNIST digit comes back as (nearly) the deskewed MNIST digit: the page shows what the model sees."""
    image = test_digits[0][0]
    seen = np.array(post(client, paper_png(image)).json()["digit28"], dtype=np.float64)
    correlation = np.corrcoef(seen.ravel(), deskew(image[None])[0].ravel().astype(np.float64))[0, 1]
    assert correlation > 0.8


@pytest.mark.parametrize(("name", "data", "status", "words"), [
    ("notes.txt", b"not a picture at all", 422, "notes.txt: not a PNG"),
    ("cut.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 422, "cut.png: "),
    ("empty.png", b"", 400, "empty.png: empty file"),
    ("blank.png", paper_png(np.zeros((28, 28), dtype=np.uint8)), 422, "blank.png: no digit found"),
])
def test_a_file_without_a_digit_is_a_clear_error(client, sure_digit, name, data, status, words):
    response = post(client, data, name=name)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert post(client, sure_digit[0]).json()["prediction"] == sure_digit[1]  # and the next request is answered


def test_too_many_pixels_is_a_413_with_the_limit(client, sure_digit):
    """A plain sheet of 5000x4000 pixels is a small file, refused from its header before decoding."""
    buffer = io.BytesIO()
    Image.new("L", (5000, 4000), 255).save(buffer, "PNG")
    response = post(client, buffer.getvalue(), name="scan.png")
    assert response.status_code == 413
    assert response.json()["error"] == "scan.png: too large: 5000x4000 pixels; the limit is 16,777,216 (4096x4096), so scale the picture down"
    assert post(client, sure_digit[0]).json()["prediction"] == sure_digit[1]


def test_a_request_without_a_file_is_a_400(client):
    response = client.post("/api/predict", data={"picture": "x"})
    assert response.status_code == 400 and "field `file`" in response.json()["error"]


def test_too_large_an_upload_is_a_413_before_or_after_reading(client, sure_digit):
    declared = post(client, b"\0" * (web.MAX_UPLOAD_BYTES + web.FORM_OVERHEAD_BYTES + 1))
    assert declared.status_code == 413 and "upload too large" in declared.json()["error"]
    just_over = post(client, b"\0" * (web.MAX_UPLOAD_BYTES + 1), name="huge.png")
    assert just_over.status_code == 413 and just_over.json()["error"] == "huge.png: too large; the limit is 5 MB"
    assert post(client, sure_digit[0]).status_code == 200


def test_an_upload_without_a_declared_size_is_a_411(client):
    chunks = iter([b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nx\r\n--b--\r\n"])
    response = client.post("/api/predict", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 411 and "Content-Length" in response.json()["error"]


def test_a_bug_is_a_500_with_a_message_and_the_next_request_is_answered(app, sure_digit, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web, "prepare_digit", broken)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = post(test_client, sure_digit[0])
        assert response.status_code == 500 and "RuntimeError" in response.json()["error"]
        monkeypatch.undo()
        assert post(test_client, sure_digit[0]).json()["prediction"] == sure_digit[1]


def test_the_page_is_served_with_nothing_external(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    for element in ("pad", "clear", "upload", "digit28", "bars", "prediction", "verdict", "error"):
        assert f'id="{element}"' in response.text
    assert "http://" not in response.text and "https://" not in response.text


def test_a_real_server_keeps_answering_after_errors(live_url, sure_digit):
    with httpx2.Client(base_url=live_url, timeout=30) as http:
        for name, data, status in (("notes.txt", b"hello", 422), ("empty.png", b"", 400), ("huge.png", b"\0" * 20_000_000, 413)):
            assert http.post("/api/predict", files={"file": (name, data)}).status_code == status
        assert http.post("/api/predict", files={"file": ("digit.png", sure_digit[0])}).json()["prediction"] == sure_digit[1]
        assert http.get("/").status_code == 200


# --- The page in a real browser ------------------------------------------------------------------


@pytest.fixture
def page(browser, live_url):
    """A fresh tab (touch enabled) on the page, failing the test on any script error or any request
    that leaves the server."""
    context = browser.new_context(viewport={"width": 1000, "height": 700}, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    problems = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def check_request(request):
        if not request.url.startswith(live_url + "/"):
            problems.append(f"external request: {request.url}")

    tab.on("request", check_request)
    tab.goto(live_url + "/")
    yield tab
    context.close()
    assert problems == []


def answered(page) -> int:
    return int(page.get_attribute("body", "data-answered"))


def wait_for_answer(page, before: int) -> None:
    """Waits until an answer newer than the `before`-th is shown and nothing more is on its way."""
    page.wait_for_selector(f'body[data-busy="0"]:not([data-answered="{before}"])', state="attached")


def draw(page, strokes) -> None:
    """Draws `strokes` (lists of (x, y) pad pixels) with the mouse, then waits for the last answer."""
    before = answered(page)
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()
    wait_for_answer(page, before)


def ink_seen(page) -> int:
    """How many of the 28x28 preview's pixels show ink."""
    return page.evaluate("""() => {
        const data = document.getElementById("digit28").getContext("2d").getImageData(0, 0, 28, 28).data;
        let count = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && data[i] > 0) count++;
        return count;
    }""")


def bar_probs(page) -> dict[int, float]:
    return {int(bar.get_attribute("data-digit")): float(bar.get_attribute("data-prob")) for bar in page.locator("#bars > *").all()}


def shown_prediction(page) -> int:
    return int(page.locator("#prediction").inner_text())


def assert_consistent_answer(page) -> dict[int, float]:
    """The bars are ten probabilities summing to one, the tallest is the digit shown, and a verdict is shown."""
    probs = bar_probs(page)
    assert sorted(probs) == list(range(10)) and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert shown_prediction(page) == max(probs, key=probs.get)
    assert page.locator("#verdict").inner_text().split(" ")[0] in ("Clear", "Ambiguous")
    assert page.locator("#error").inner_text() == ""
    return probs


@pytest.mark.browser
def test_a_drawn_one_is_seen_and_read_live(page, tmp_path):
    draw(page, ONE)
    assert ink_seen(page) > 20
    assert_consistent_answer(page)
    assert shown_prediction(page) == 1
    page.screenshot(path=tmp_path / "page.png")
    if os.environ.get("MNIST_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["MNIST_SCREENSHOT"])


@pytest.mark.browser
def test_the_answer_follows_the_strokes_and_clear_resets_it(page):
    draw(page, SEVEN)
    first = assert_consistent_answer(page)
    assert shown_prediction(page) == 7
    draw(page, [[(80, 150), (200, 150)]])  # a second stroke changes the digit, and the answer with it
    assert bar_probs(page) != first
    page.click("#clear")
    assert page.locator("#prediction").inner_text() == "" and ink_seen(page) == 0
    assert set(bar_probs(page).values()) == {0.0}


@pytest.mark.browser
def test_a_digit_drawn_with_a_finger_is_read(page):
    before = answered(page)
    box = page.locator("#pad").bounding_box()
    touch = page.context.new_cdp_session(page)
    points = [(box["x"] + 140, box["y"] + y) for y in range(40, 241, 10)]
    for kind, (x, y) in [("touchStart", points[0])] + [("touchMove", point) for point in points[1:]]:
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_answer(page, before)
    assert ink_seen(page) > 20
    assert_consistent_answer(page)


@pytest.mark.browser
def test_an_uploaded_photo_is_read_and_a_bad_file_shows_an_error(page, tmp_path, sure_digit):
    photo, label = sure_digit
    (tmp_path / "digit.png").write_bytes(photo)
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "huge.png").write_bytes(b"\0" * 20_000_000)
    Image.new("L", (5000, 4000), 255).save(tmp_path / "scan.png")
    before = answered(page)
    page.set_input_files("#upload", tmp_path / "digit.png")
    wait_for_answer(page, before)
    assert_consistent_answer(page)
    assert shown_prediction(page) == label and ink_seen(page) > 20

    for name, message in (("notes.txt", "notes.txt: not a PNG"), ("huge.png", "upload too large"),
                          ("scan.png", "scan.png: too large: 5000x4000 pixels; the limit is 16,777,216 (4096x4096)")):
        before = answered(page)
        page.set_input_files("#upload", tmp_path / name)
        wait_for_answer(page, before)
        assert message in page.locator("#error").inner_text()
        assert page.locator("#error").is_visible() and page.locator("#prediction").inner_text() == ""

    draw(page, ONE)  # the page and the server keep working
    assert_consistent_answer(page)

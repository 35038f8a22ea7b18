"""The page of `mnist-dvc review` used as a person uses it: Debian's Chromium (through Playwright)
reviews a queue of ten real MNIST test digits with the keyboard, reloads the page half-way, resumes
at the first digit without a verdict and finishes; labels/review.csv then holds exactly the verdicts
given. Marked `browser`: skipped where /usr/bin/chromium is missing.

With the environment variable MNIST_SCREENSHOT set to a file name, the keyboard test copies its
screenshot of the page, taken just after the reload, there (docs/label-review.md's picture:
`MNIST_SCREENSHOT=bench/results/review-page.png python -m pytest tests/app/test_review_browser.py -k keyboard`)."""

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from live_server import live_server
from review_queues import write_queue_folder

from mnist_dvc.app import review
from mnist_dvc.app.queue_folder import read_queue
from mnist_dvc.config import paths
from mnist_dvc.io import verdicts
from mnist_dvc.io.idx import read_split

# Read now, before the tests move into their project folder, so that a relative name means where pytest started.
SCREENSHOT = Path(os.environ["MNIST_SCREENSHOT"]).absolute() if os.environ.get("MNIST_SCREENSHOT") else None
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_mirror, mnist_train):
    """A folder holding a review queue of ten test digits where `dvc repro` leaves it, and the
    project's working directory for this module, so that the page runs on its default paths."""
    folder = tmp_path_factory.mktemp("project")
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    write_queue_folder(folder / paths.REVIEW_QUEUE_TEST, "test", 10, images, labels, *mnist_train)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder


@pytest.fixture(scope="module")
def digits(project):
    return read_queue(paths.REVIEW_QUEUE_TEST).digits


@pytest.fixture
def verdicts_file(project):
    path = project / paths.REVIEW_CSV
    path.parent.mkdir(exist_ok=True)
    path.write_text(",".join(verdicts.COLUMNS) + "\n")  # as the project ships it
    return path


@pytest.fixture
def url(verdicts_file):
    with live_server(review.create_app(paths.REVIEW_QUEUE_TEST, paths.REVIEW_CSV)) as address:
        yield address


@pytest.fixture
def page(browser, url):
    """A fresh tab on the page, loaded, failing the test on any script error or any request that
    leaves the server."""
    context = browser.new_context(viewport={"width": 1100, "height": 830})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    problems = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("request", lambda request: None if request.url.startswith(url + "/") else problems.append(f"external request: {request.url}"))
    open_page(tab, url + "/")
    yield tab
    context.close()
    assert problems == []


def open_page(tab, address: str) -> None:
    tab.goto(address)
    tab.wait_for_selector('body[data-busy="0"]:not([data-view="loading"])', state="attached")


def shown(page) -> tuple[str, int] | None:
    """(split, index) of the digit the page shows, None when it shows the end of the queue."""
    split, index = page.get_attribute("body", "data-split"), page.get_attribute("body", "data-index")
    return (split, int(index)) if split else None


def press(page, key: str) -> None:
    """Presses `key` on a digit and waits until its verdict is saved and the next digit shown."""
    saved = page.get_attribute("body", "data-saved")
    page.keyboard.press(key)
    page.wait_for_selector(f'body[data-busy="0"]:not([data-saved="{saved}"])', state="attached")
    assert page.locator("#error").inner_text() == ""


def progress(page) -> str:
    return page.locator("#progress").inner_text()


def assert_shows(page, digit) -> None:
    """The page shows `digit` whole: its place, labels, ten bars and both pictures, loaded."""
    assert shown(page) == (digit.split, digit.index)
    assert page.locator("#given").inner_text() == str(digit.given_label)
    assert page.locator("#suggested").inner_text() == str(digit.suggested_label)
    assert page.locator("#rank").inner_text() == str(digit.rank)
    assert page.locator("#quality").inner_text() == f"{digit.label_quality:.3f}"
    bars = [float(value) for value in page.eval_on_selector_all("#bars .track", "tracks => tracks.map(t => t.dataset.prob)")]
    assert bars == pytest.approx(list(digit.probs))
    page.wait_for_function("""() => ["digit", "explained"].every(id => {
        const img = document.getElementById(id);
        return img.complete && img.naturalWidth > 0 && img.getAttribute("src").includes(document.body.dataset.index);
    })""")
    assert page.locator("#digit").bounding_box()["width"] >= 336  # large: each of the 28x28 pixels 12 screen pixels wide


def other_label(digit, step: int = 1) -> int:
    return (digit.given_label + step) % 10


def test_ten_digits_reviewed_by_keyboard_with_a_reload_half_way(page, url, digits, verdicts_file, tmp_path):
    expected = {}  # index -> (verdict, corrected label) as the page must save it

    assert progress(page) == "0 of 10 reviewed" and page.locator("#verdict").inner_text() == "Not reviewed yet"
    assert_shows(page, digits[0])
    press(page, "Enter")
    expected[digits[0].index] = ("right", None)

    assert_shows(page, digits[1])
    should_be = digits[1].suggested_label if digits[1].suggested_label != digits[1].given_label else other_label(digits[1])
    press(page, str(should_be))
    expected[digits[1].index] = ("wrong", should_be)

    assert_shows(page, digits[2])
    press(page, "a")
    expected[digits[2].index] = ("ambiguous", None)

    assert_shows(page, digits[3])
    press(page, str(digits[3].given_label))  # the given label's own key: the label is right
    expected[digits[3].index] = ("right", None)

    assert_shows(page, digits[4])
    press(page, str(other_label(digits[4], 2)))
    assert progress(page) == "5 of 10 reviewed" and shown(page) == ("test", digits[5].index)

    page.keyboard.press("Backspace")  # back to the digit just judged: its verdict is shown and can be changed
    assert shown(page) == ("test", digits[4].index)
    assert page.locator("#verdict").inner_text() == f"Your verdict: the label should be {other_label(digits[4], 2)}"
    press(page, "a")
    expected[digits[4].index] = ("ambiguous", None)
    assert shown(page) == ("test", digits[5].index)

    open_page(page, url + "/")  # a reload loses nothing and resumes at the first digit without a verdict
    assert progress(page) == "5 of 10 reviewed"
    assert page.locator("#source").inner_text() == "queue data/ambiguous/review, verdicts saved to labels/review.csv"
    assert_shows(page, digits[5])
    page.screenshot(path=tmp_path / "review-page.png")
    if SCREENSHOT:
        shutil.copy(tmp_path / "review-page.png", SCREENSHOT)

    for digit, key, verdict in ((digits[5], "Enter", ("right", None)),
                                (digits[6], str(other_label(digits[6], 3)), ("wrong", other_label(digits[6], 3))),
                                (digits[7], "A", ("ambiguous", None)),
                                (digits[8], "Enter", ("right", None)),
                                (digits[9], str(other_label(digits[9], 7)), ("wrong", other_label(digits[9], 7)))):
        assert_shows(page, digit)
        press(page, key)
        expected[digit.index] = verdict

    assert page.get_attribute("body", "data-view") == "done" and progress(page) == "10 of 10 reviewed"
    assert page.locator("#done").inner_text().startswith("All 10 digits reviewed")
    table = verdicts.read_verdicts(verdicts_file)
    saved = {int(index): (verdict, None if pd.isna(corrected) else int(corrected))
             for index, verdict, corrected in zip(table["index"], table["verdict"], table["corrected_label"])}
    assert saved == expected
    assert table["split"].eq("test").all() and table["index"].is_monotonic_increasing
    assert table["given_label"].tolist() == [next(d.given_label for d in digits if d.index == index) for index in table["index"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time) for time in table["time"])

    page.keyboard.press("Backspace")  # from the end, back to the last digit, its verdict shown
    assert shown(page) == ("test", digits[9].index)
    assert page.locator("#verdict").inner_text() == f"Your verdict: the label should be {other_label(digits[9], 7)}"


def test_the_buttons_do_what_the_keys_do(page, digits, verdicts_file):
    page.click("#ambiguous")
    page.wait_for_selector('body[data-saved="1"][data-busy="0"]', state="attached")
    page.click(f"#digits button:nth-child({other_label(digits[1]) + 1})")
    page.wait_for_selector('body[data-saved="2"][data-busy="0"]', state="attached")
    page.click("#back")
    assert shown(page) == ("test", digits[1].index)
    page.click("#right")
    page.wait_for_selector('body[data-saved="3"][data-busy="0"]', state="attached")
    assert shown(page) == ("test", digits[2].index) and progress(page) == "2 of 10 reviewed"
    table = verdicts.read_verdicts(verdicts_file)
    assert dict(zip(table["index"], table["verdict"])) == {digits[0].index: "ambiguous", digits[1].index: "right"}


def test_a_verdict_that_cannot_be_saved_is_shown_and_the_digit_stays(page, digits, verdicts_file):
    verdicts_file.write_text(",".join(verdicts.COLUMNS) + f"\ntest,{digits[9].index},{digits[9].given_label},perhaps,,t\n")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not(:empty)")
    assert "row 2: verdict = 'perhaps'" in page.locator("#error").inner_text()
    assert shown(page) == ("test", digits[0].index) and page.locator("#verdict").inner_text() == "Not reviewed yet"
    verdicts_file.write_text(",".join(verdicts.COLUMNS) + "\n")  # mended: the same key now saves
    press(page, "Enter")
    assert shown(page) == ("test", digits[1].index)

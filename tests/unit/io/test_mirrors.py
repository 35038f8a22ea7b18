"""Fetching the MNIST files (mnist_dvc/io/mirrors.py) against a real HTTP server on 127.0.0.1 that
serves the real files.

The server's faults are queued per file name, one per request, so each test states exactly what
the network does: fail once and then work, drop a body half-way, stall, or serve wrong bytes.
Failures are injected on the first file fetched, so failing runs end before the big downloads.
"""

import gzip
from collections import Counter
from pathlib import Path

import pytest
from http_mirror import Mirror, dead_url

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.mirrors import SHA256, SourceFailed, download_all, fetch, verify

FIRST, *_, LAST = SHA256  # download order: failures on FIRST end a run before any big transfer
FAST = dict(timeout_s=5.0, backoff_s=0.01)


@pytest.fixture
def serve(mnist_mirror):
    """Starts mirrors on demand (serving `mnist_mirror` unless told otherwise); stops them after."""
    mirrors = []

    def start(folder: Path = mnist_mirror) -> Mirror:
        mirrors.append(Mirror(folder))
        return mirrors[-1]

    yield start
    for mirror in mirrors:
        mirror.stop()


def assert_downloaded(out: Path, mnist_mirror: Path):
    assert sorted(p.name for p in out.iterdir()) == sorted(SHA256)
    for name in SHA256:
        assert (out / name).read_bytes() == (mnist_mirror / name).read_bytes()


def assert_nothing_left(out: Path):
    """No output folder, and no temporary folder beside it, that a later run could pick up."""
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [], "temporary files left behind"


def failure(sources, out, retries=0, **kwargs) -> str:
    with pytest.raises(UserError) as error:
        download_all(sources, out, retries=retries, **{**FAST, **kwargs})
    message = str(error.value)
    assert "\n" not in message
    return message


# --- verify and fetch, called directly ---------------------------------------------------------


def test_verify_accepts_the_real_file_and_names_each_kind_of_bad_file(mnist_mirror):
    good = (mnist_mirror / LAST).read_bytes()
    verify(LAST, good)
    cases = {
        b"": "empty file",
        good[: len(good) // 2]: "truncated gzip",
        b"<html>Not Found</html>": "not a valid gzip file",
        gzip.compress(b"not the digits"): "sha256 mismatch: got",
    }
    for data, reason in cases.items():
        with pytest.raises(SourceFailed, match=reason) as error:
            verify(LAST, data)
        assert not error.value.transient


def test_fetch_reads_a_folder_and_a_file_url_and_reports_a_missing_file(mnist_mirror, tmp_path):
    want = (mnist_mirror / LAST).read_bytes()
    assert fetch(str(mnist_mirror), LAST, timeout_s=1) == want
    assert fetch(mnist_mirror.as_uri(), LAST, timeout_s=1) == want
    with pytest.raises(SourceFailed, match="^missing$"):
        fetch(str(tmp_path), LAST, timeout_s=1)
    with pytest.raises(SourceFailed, match=r"^unsupported URL scheme ftp://$") as error:
        fetch("ftp://example.org/mnist/", LAST, timeout_s=1)
    assert not error.value.transient


def test_too_many_requests_is_worth_asking_again_other_client_errors_are_not(serve, tmp_path):
    mirror = serve(tmp_path)
    mirror.faults[LAST] = [429, 403]
    with pytest.raises(SourceFailed, match="^HTTP 429$") as busy:
        fetch(mirror.url, LAST, timeout_s=5)
    with pytest.raises(SourceFailed, match="^HTTP 403$") as forbidden:
        fetch(mirror.url, LAST, timeout_s=5)
    assert busy.value.transient and not forbidden.value.transient


# --- successful downloads ----------------------------------------------------------------------


def test_downloads_all_four_files_over_http_with_a_progress_bar(serve, mnist_mirror, tmp_path, capsys):
    mirror = serve()
    out = tmp_path / "data" / "raw"
    download_all([mirror.url], out, retries=0, **FAST)
    assert_downloaded(out, mnist_mirror)
    assert mirror.requests == Counter({name: 1 for name in SHA256})
    bars = capsys.readouterr().err
    assert all(f"{name}: 100%" in bars for name in SHA256)


def test_404_moves_on_to_the_next_source_without_retrying(serve, mnist_mirror, tmp_path):
    empty, good = serve(tmp_path / "nothing-here"), serve()
    out = tmp_path / "raw"
    download_all([empty.url, good.url], out, retries=3, **FAST)
    assert_downloaded(out, mnist_mirror)
    assert empty.requests == Counter({name: 1 for name in SHA256})


def test_a_server_error_is_retried_and_the_retry_wins(serve, mnist_mirror, tmp_path):
    mirror = serve()
    mirror.faults[FIRST] = [500]
    out = tmp_path / "raw"
    download_all([mirror.url], out, retries=1, **FAST)
    assert_downloaded(out, mnist_mirror)
    assert mirror.requests[FIRST] == 2


def test_a_connection_dropped_mid_body_is_retried(serve, mnist_mirror, tmp_path):
    mirror = serve()
    mirror.faults[LAST] = ["drop"]
    size = (mnist_mirror / LAST).stat().st_size
    dropped_message = f"^connection dropped after {size // 3} of {size} bytes$"
    with pytest.raises(SourceFailed, match=dropped_message) as dropped:
        fetch(mirror.url, LAST, timeout_s=5)
    assert dropped.value.transient

    mirror.faults[LAST] = ["drop"]
    out = tmp_path / "raw"
    download_all([mirror.url], out, retries=1, **FAST)
    assert_downloaded(out, mnist_mirror)
    assert mirror.requests[LAST] == 3  # the direct fetch, the dropped attempt, the retry


# --- failures: one line naming the file and every source, and nothing left behind --------------


def test_retries_run_out_then_every_source_is_named(serve, tmp_path):
    flaky, dead = serve(), dead_url()
    flaky.faults[FIRST] = [503] * 3
    out = tmp_path / "out" / "raw"
    message = failure([flaky.url, dead], out, retries=2)
    assert message.startswith(f"{FIRST}: no source worked: ")
    assert f"{flaky.url} (HTTP 503; 3 attempts)" in message
    assert f"{dead} (connection refused; 3 attempts)" in message
    assert flaky.requests[FIRST] == 3
    assert_nothing_left(out)


@pytest.mark.parametrize("stall", ["stall", "stall-body"], ids=["before-headers", "mid-body"])
def test_a_stalled_server_times_out(stall, serve, tmp_path):
    mirror = serve()
    mirror.faults[FIRST] = [stall]
    out = tmp_path / "out" / "raw"
    message = failure([mirror.url], out, timeout_s=0.3)
    assert message == f"{FIRST}: no source worked: {mirror.url} (timed out (no data for 0.3 s))"
    assert_nothing_left(out)


@pytest.mark.parametrize(
    "body, reason",
    [
        (gzip.compress(b"not the digits"), "sha256 mismatch: got "),
        ("truncated", "truncated gzip"),
        (b"<html>Not Found</html>", "not a valid gzip file"),
        (b"", "empty file"),
    ],
    ids=["wrong-checksum", "truncated-gz", "not-gzip", "empty"],
)
def test_a_bad_file_is_rejected_without_retrying(body, reason, serve, mnist_mirror, tmp_path):
    if body == "truncated":
        body = (mnist_mirror / LAST).read_bytes()[:2000]
    mirror = serve()
    mirror.faults[FIRST] = [body]
    out = tmp_path / "out" / "raw"
    message = failure([mirror.url], out, retries=3)
    assert message.startswith(f"{FIRST}: no source worked: {mirror.url} ({reason}")
    assert mirror.requests[FIRST] == 1
    assert_nothing_left(out)


def test_no_sources_at_all_is_named_too(tmp_path):
    out = tmp_path / "out" / "raw"
    assert failure([], out) == f"{FIRST}: no source worked: no sources given"
    assert_nothing_left(out)


def test_a_folder_missing_one_file_leaves_the_previous_output_untouched(serve, mnist_mirror, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in SHA256:
        if name != LAST:
            (partial / name).symlink_to(mnist_mirror / name)
    out = tmp_path / "out" / "raw"
    out.mkdir(parents=True)
    (out / "from-an-earlier-run").write_text("kept")
    empty = serve(tmp_path / "nothing-here")

    message = failure([str(partial), empty.url], out, retries=2)
    assert message == f"{LAST}: no source worked: {partial} (missing); {empty.url} (HTTP 404)"
    # The three good files were never swapped in: data/raw is exactly what it was before.
    assert [p.name for p in out.iterdir()] == ["from-an-earlier-run"]
    assert [p.name for p in out.parent.iterdir()] == ["raw"]


def test_the_files_fetched_are_the_raw_files_the_stages_read():
    assert list(SHA256) == [path.name for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS, paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS)]

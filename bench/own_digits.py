"""Benchmark: how fast the trained model reads digits from outside MNIST; writes JSON.

Needs a trained project (data/model and data/ambiguous/summary.json from `dvc repro`). Three figures:
- folder throughput: `mnist-dvc predict`'s work on a folder of 1,000 PNG pictures (MNIST test digits
  drawn dark on white at 112x112), decoding, preparation and prediction included, the one-off
  model load and compilation excluded; median of `--repeats` passes;
- page latency: one POST /api/predict with a 280x280 PNG against a real `mnist-dvc serve` process
  on 127.0.0.1, after 20 warm-up requests: median and 99th percentile of 200 requests;
- the server's memory: resident set size of that process after the requests.

    python -m bench.own_digits --out bench/results/own-digits-cpu.json
"""

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from bench.pipeline import machine, write_result
from mnist_dvc.config import paths

REQUESTS, WARM_UP = 200, 20


def paper_png(digit: np.ndarray, side: int) -> bytes:
    """A MNIST digit as a photo-like PNG: dark ink on white paper, `side` pixels square."""
    picture = Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def folder_throughput(folder: Path, repeats: int) -> list[float]:
    """Digits per second of preparing and predicting every picture in `folder`, per pass."""
    from mnist_dvc.analysis.ambiguity import load_cutoffs
    from mnist_dvc.app import own_digits
    from mnist_dvc.models.saved import load_classifier, preparation

    classifier, prepared_as = load_classifier(paths.MODEL), preparation(paths.MODEL)
    cutoff, temperature = load_cutoffs(paths.AMBIGUOUS_SUMMARY)
    own_digits.predict(classifier, own_digits.from_files([folder], prepared_as), cutoff, temperature)  # compiles
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        table = own_digits.predict(classifier, own_digits.from_files([folder], prepared_as), cutoff, temperature)
        rates.append(len(table) / (time.perf_counter() - start))
    return rates


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def page_latency(picture: bytes) -> tuple[list[float], int]:
    """Seconds of each of `REQUESTS` timed requests to a fresh `mnist-dvc serve`, and its RSS in bytes."""
    import psutil

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "from mnist_dvc.app.cli import main; main()", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/predict"
        body, content_type = multipart(picture)
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:] if server.poll() is not None else 'timeout'}")
                time.sleep(0.2)
        seconds = []
        for i in range(WARM_UP + REQUESTS):
            request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                json.loads(response.read())
            if i >= WARM_UP:
                seconds.append(time.perf_counter() - start)
        return seconds, psutil.Process(server.pid).memory_info().rss
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="passes over the folder")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    from mnist_dvc.io.prepared_sets import load_test_set

    originals = load_test_set(paths.TEST_NPZ)["original"][:1000]
    with tempfile.TemporaryDirectory(prefix="mnist-own-digits-") as name:
        folder = Path(name)
        for index, digit in enumerate(originals):
            (folder / f"{index:04d}.png").write_bytes(paper_png(digit, 112))
        rates = folder_throughput(folder, args.repeats)
    seconds, rss = page_latency(paper_png(originals[0], 280))
    milliseconds = sorted(1000 * s for s in seconds)
    result = {
        "command": "python -m bench.own_digits " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "folder": {"pictures": len(originals), "side_px": 112, "digits_per_second": {
            "median": round(statistics.median(rates), 1), "min": round(min(rates), 1), "max": round(max(rates), 1)}},
        "page": {"requests": REQUESTS, "warm_up": WARM_UP, "picture_side_px": 280,
                 "median_ms": round(statistics.median(milliseconds), 2),
                 "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
                 "server_rss_mib": round(rss / 2**20, 1)},
    }
    write_result(args.out, result)
    print(json.dumps({key: result[key] for key in ("folder", "page")}, indent=2))


if __name__ == "__main__":
    main()

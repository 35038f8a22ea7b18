"""The time-to-accuracy benchmark: its training loop on a small real slice, and how it reads the peer's output."""

import pytest

from bench.time_to_accuracy import run_peer, train_and_score


def test_scores_the_test_set_along_the_way_and_finds_the_first_crossing(mnist_train, train_params):
    images, labels = mnist_train
    cfg = train_params(model="flat_mlp", epochs=2, batch_size=50)
    train, test = (images[:1000], labels[:1000]), (images[1000:1200], labels[1000:1200])

    run = train_and_score(cfg, train, test, target=0.5, eval_every=500)
    assert [point["step"] for point in run["curve"]] == [10, 20, 30, 40]  # every 500 images, and the end
    assert [point["epochs"] for point in run["curve"]] == [0.5, 1.0, 1.5, 2.0]
    seconds = [point["train_seconds"] for point in run["curve"]]
    assert seconds == sorted(seconds) and run["train_seconds"] == seconds[-1]
    first = next(point for point in run["curve"] if point["test_accuracy"] >= 0.5)
    assert run["seconds_to_target"] == first["train_seconds"] and run["epochs_to_target"] == first["epochs"]
    assert run["final_test_accuracy"] == run["curve"][-1]["test_accuracy"] > 0.5

    unreachable = train_and_score(cfg, train, test, target=1.01, eval_every=500)
    assert unreachable["seconds_to_target"] is None and unreachable["epochs_to_target"] is None


PEER_OUTPUT = """example: google/flax 18f8f311c275d57f46d95e41b15aa97b454754c0 examples/mnist
run: main.py --workdir /tmp/flaxpeer.x/workdir --config configs/default.py  (train subset: all; log: /tmp/flaxpeer.x/stderr.log)
[     3.1s] python started, example imported
[    70.2s] epoch   1  test_accuracy  97.90%  train_clock    60.0s  test_pass   2.0s  (train_loss 0.2, train_accuracy 93.1, test_loss 0.07)
[   140.4s] epoch   2  test_accuracy  99.02%  train_clock   125.5s  test_pass   2.1s  (train_loss 0.05, train_accuracy 98.4, test_loss 0.03)
[   210.6s] epoch   3  test_accuracy  98.95%  train_clock   190.0s  test_pass   2.0s  (train_loss 0.04, train_accuracy 98.8, test_loss 0.03)
[   210.7s] first epoch with test_accuracy >= 99.00%: epoch 2, 140.4 s since process start (train-only clock 125.5 s)
"""


def test_the_peers_epochs_and_its_first_crossing_are_read_from_its_output(tmp_path):
    script = tmp_path / "peer.sh"
    script.write_text(f"cat <<'OUT'\n{PEER_OUTPUT}OUT\n")
    run = run_peer(script, 0.99)
    assert run["source"].startswith("google/flax 18f8f311")
    assert [point["epoch"] for point in run["curve"]] == [1, 2, 3] and run["curve"][1]["process_seconds"] == 140.4
    assert (run["seconds_to_target"], run["epochs_to_target"], run["final_test_accuracy"]) == (125.5, 2, 0.9895)


def test_a_failing_peer_stops_the_benchmark_with_its_output(tmp_path):
    script = tmp_path / "peer.sh"
    script.write_text("echo 'no venv here'; exit 3\n")
    with pytest.raises(SystemExit, match="peer.sh failed with exit code 3:\nno venv here"):
        run_peer(script, 0.99)

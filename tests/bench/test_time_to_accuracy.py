"""The time-to-accuracy benchmark's training loop, on a small real slice."""

from bench.time_to_accuracy import train_and_score


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

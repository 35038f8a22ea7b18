"""The feeding benchmark compares like with like: every way of feeding the step trains the same
model on the same batches to the same weights."""

import jax
import numpy as np

from bench.feeding import feeders, measure, training_step
from stages.lib.trainer import epoch_order


def test_every_way_of_feeding_reaches_the_same_weights(mnist_train, train_params):
    images, labels = (array[:512] for array in mnist_train)
    cfg = train_params(model="vgg_bn", width=4, batch_size=32)
    step, state = training_step(cfg, total_steps=16)
    order = np.asarray(epoch_order(jax.random.key(0), len(labels), cfg.batch_size))

    ways = feeders(step, images, labels, order, scan_length=2)
    assert len(ways) == 4
    trained = [jax.device_get(run(jax.tree.map(np.array, state), 0, 4)) for run in ways.values()]
    for other in trained[1:]:
        assert int(other.step) == 4
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), trained[0].params, other.params)


def test_measure_times_the_first_call_apart_and_lets_the_ways_take_turns():
    calls = []

    def way(name):
        def run(state, first, steps):
            calls.append((name, first, steps))
            return state
        return run

    result = measure({"a": way("a"), "b": way("b")}, np.zeros(1), steps=10, repeats=2, batch_size=8, first=5)
    assert calls == [("a", 0, 5), ("b", 0, 5), ("a", 5, 10), ("b", 5, 10), ("a", 15, 10), ("b", 15, 10)]
    assert set(result) == {"a", "b"}
    assert all(r["first_call_seconds"] >= 0 and r["images_per_second"] > 0 for r in result.values())

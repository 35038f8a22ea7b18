"""The feeding benchmark compares like with like: every way of feeding the step trains the same
model on the same batches to the same weights."""

import jax
import numpy as np
import pytest

from bench import feeding
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


class SlowingMachine:
    """A clock for `measure`, and ways of feeding that take time on it: `per_step` seconds a step,
    `compile_s` more on a way's first call, and the machine 20% slower after every timed block."""

    def __init__(self):
        self.now, self.per_step, self.ran = 0.0, 0.01, {}

    def perf_counter(self) -> float:
        return self.now

    def way(self, name: str, compile_s: float):
        def run(state, first, steps):
            ran = self.ran.setdefault(name, [])
            self.now += (0 if ran else compile_s) + steps * self.per_step
            if ran:
                self.per_step *= 1.2
            ran.append(range(first, first + steps))
            return state
        return run


def test_measure_times_compiling_apart_and_spreads_a_slowing_machine_over_every_way(monkeypatch):
    machine = SlowingMachine()
    monkeypatch.setattr(feeding, "time", machine)
    ways = {"a": machine.way("a", compile_s=3.0), "b": machine.way("b", compile_s=0.5)}
    result = measure(ways, np.zeros(1), steps=10, repeats=3, batch_size=8, first=5)

    # Every way trains on the same batches: the first call's, then each block's, none twice.
    assert machine.ran["a"] == machine.ran["b"] == [range(0, 5), range(5, 15), range(15, 25), range(25, 35)]
    # The first call, compilation included, is timed apart and not counted in the speed.
    assert result["a"]["first_call_seconds"] == 3.05 and result["b"]["first_call_seconds"] == 0.55
    assert set(result["a"]) == set(result["b"]) == {"first_call_seconds", "images_per_second", "images_per_second_min_max"}
    # 8 images a step at 0.01 s a step is 800 images/s on the fresh machine. Had the ways run one
    # after the other, b would have measured the machine 1.2 ** 3 times slower than a; taking turns,
    # the slowdown falls on both alike, b's median one block's worth (1.2 times) behind a's.
    lowest, highest = result["a"]["images_per_second_min_max"]
    assert lowest == pytest.approx(800 / 1.2 ** 4, abs=0.1) and highest == pytest.approx(800, abs=0.1)
    assert result["a"]["images_per_second"] / result["b"]["images_per_second"] == pytest.approx(1.2, abs=0.01)

"""The feeding benchmark compares like with like: every way of feeding the step trains the same
model on the same batches to the same weights, and its timing keeps compilation and a drifting
machine out of the comparison."""

import jax
import numpy as np

from bench import feeding
from bench.feeding import feeders, measure, training_step
from mnist_dvc.training.step import epoch_order


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
    `compile_s` more on a way's first call, and, when `slowing`, the machine 20% slower after
    every timed block. Each way counts the batches (step numbers) it was fed."""

    def __init__(self, slowing: bool):
        self.now, self.per_step, self.slowing, self.fed = 0.0, 0.01, slowing, {}

    def perf_counter(self) -> float:
        return self.now

    def way(self, name: str, compile_s: float):
        def run(state, first, steps):
            fed = self.fed.setdefault(name, [])
            self.now += (0 if fed else compile_s) + steps * self.per_step
            if fed and self.slowing:
                self.per_step *= 1.2
            fed.extend(range(first, first + steps))
            return state
        return run


def measure_two_ways(monkeypatch, slowing: bool, compile_s: tuple[float, float] = (0.5, 0.5)):
    """`measure` of two ways that cost the same per step, on a `SlowingMachine`: (results, machine)."""
    machine = SlowingMachine(slowing)
    monkeypatch.setattr(feeding, "time", machine)
    ways = {"a": machine.way("a", compile_s[0]), "b": machine.way("b", compile_s[1])}
    return measure(ways, np.zeros(1), steps=10, repeats=3, batch_size=8, first=5), machine


def test_every_way_is_fed_the_same_batches_each_once(monkeypatch):
    _, machine = measure_two_ways(monkeypatch, slowing=False)
    assert sorted(machine.fed["a"]) == sorted(machine.fed["b"]) == list(range(5 + 3 * 10))


def test_each_way_reports_its_first_call_and_its_speed(monkeypatch):
    result, _ = measure_two_ways(monkeypatch, slowing=False)
    for record in result.values():
        assert set(record) == {"first_call_seconds", "images_per_second", "images_per_second_min_max"}
        lowest, highest = record["images_per_second_min_max"]
        assert 0 < lowest <= record["images_per_second"] <= highest


def test_compiling_is_timed_apart_and_does_not_count_against_the_speed(monkeypatch):
    result, _ = measure_two_ways(monkeypatch, slowing=False, compile_s=(3.0, 0.5))
    assert result["a"]["first_call_seconds"] >= 3.0 > result["b"]["first_call_seconds"]
    assert result["a"]["images_per_second"] == result["b"]["images_per_second"]


def test_a_machine_slowing_down_falls_on_every_way_alike(monkeypatch):
    # Measured one after the other, the second way would see the machine 1.2 ** 3 times slower
    # than the first; taking turns block by block, two equally fast ways end at most one block's
    # slowdown apart.
    result, _ = measure_two_ways(monkeypatch, slowing=True)
    ratio = result["a"]["images_per_second"] / result["b"]["images_per_second"]
    assert 1 / 1.2 - 0.01 <= ratio <= 1.2 + 0.01

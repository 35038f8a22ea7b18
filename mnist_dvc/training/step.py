"""Training as pure functions: an optimizer from the params, and jit-compiled steps over a
dataset that lives on the device.

The model is split once into a graph definition (static) and its state (arrays), so a step is an
ordinary function of arrays that `jax.jit` compiles once. The whole training set stays on the
device; each epoch's order is drawn with `jax.random` inside jit, so the host only launches
steps and now and then reads back their losses.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mnist_dvc.config.params import Train
from mnist_dvc.digits.fresh_distortions import is_identity, random_affine
from mnist_dvc.models.batches import padded_batches
from mnist_dvc.models.networks import to_inputs
from mnist_dvc.training.distributed import to_global, to_host

Batch = tuple[jax.Array, jax.Array]  # uint8 images (B, 28, 28), int labels (B,)


@struct.dataclass
class TrainState:
    """Everything that changes during training, so a checkpoint of it resumes exactly."""

    step: jax.Array
    params: nnx.State
    rest: nnx.State  # non-trainable model state: batch-norm statistics, dropout RNG counters
    opt_state: optax.OptState
    ema: nnx.State  # exponential moving average of `params` (equal to them when ema_decay is 0)
    key: jax.Array  # raw uint32 key for augmentation, advanced with fold_in(step)


def schedule(cfg: Train, total_steps: int) -> optax.Schedule:
    warmup = int(cfg.warmup_fraction * total_steps)
    if cfg.schedule == "onecycle":
        return optax.cosine_onecycle_schedule(
            total_steps, cfg.learning_rate, pct_start=max(cfg.warmup_fraction, 1e-6), div_factor=25, final_div_factor=1e3
        )
    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, warmup, max(total_steps, warmup + 1))
    return optax.constant_schedule(cfg.learning_rate)


def _decay_mask(params):
    """Weight decay on kernels only: decaying biases and batch-norm scales only hurts."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg: Train, total_steps: int) -> optax.GradientTransformation:
    lr = schedule(cfg, total_steps)
    if cfg.optimizer == "adamw":
        return optax.adamw(lr, weight_decay=cfg.weight_decay, mask=_decay_mask)
    decay = optax.add_decayed_weights(cfg.weight_decay, mask=_decay_mask)
    if cfg.optimizer == "sgd":
        return optax.chain(decay, optax.sgd(lr, momentum=0.9, nesterov=True))
    return optax.chain(decay, optax.rmsprop(lr))


def init_state(model: nnx.Module, tx: optax.GradientTransformation, seed: int) -> tuple[nnx.GraphDef, nnx.GraphDef, TrainState]:
    """Splits `model` into train and eval graph definitions and the initial `TrainState`."""
    model.eval()
    eval_graphdef = nnx.graphdef(model)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        rest=rest,
        opt_state=tx.init(params),
        ema=jax.tree.map(jnp.copy, params),  # its own buffers: the step donates both
        key=jax.random.key_data(jax.random.key(seed)),
    )
    return graphdef, eval_graphdef, state


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, cfg: Train) -> Callable:
    """The pure step: (state, batch) -> (state, (loss, correct)); the caller jits it.

    With `cfg.precision` "bfloat16" the forward and backward passes run on bfloat16 copies of the
    weights and inputs (half the memory traffic; a GPU's tensor cores), while the weights, their
    updates, the batch-norm statistics and the loss stay float32.
    """
    compute_dtype = jnp.bfloat16 if cfg.precision == "bfloat16" else None

    def loss_fn(params, rest, x, labels):
        if compute_dtype is not None:
            params, x = jax.tree.map(lambda p: p.astype(compute_dtype), params), x.astype(compute_dtype)
        model = nnx.merge(graphdef, params, rest, copy=True)
        logits = model(x).astype(jnp.float32)
        targets = optax.smooth_labels(jax.nn.one_hot(labels, 10), cfg.label_smoothing)
        loss = optax.softmax_cross_entropy(logits, targets).mean()
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return loss, (logits, new_rest)

    def step(state: TrainState, batch: Batch):
        images, labels = batch
        x = to_inputs(images)
        if not is_identity(cfg.augment):
            key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
            x = random_affine(key, x[..., 0], cfg.augment)[..., None]
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (logits, rest)), grads = grad_fn(state.params, state.rest, x, labels)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Warm the EMA up from 0 so early averages are not dominated by the random initialisation.
        decay = jnp.minimum(cfg.ema_decay, (1.0 + state.step) / (10.0 + state.step))
        ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema, params)
        correct = jnp.sum(jnp.argmax(logits, -1) == labels)
        new_state = state.replace(step=state.step + 1, params=params, rest=rest, opt_state=opt_state, ema=ema)
        return new_state, (loss, correct)

    return step


def epoch_order(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """A random order of the n training images as (steps, batch_size) indices; the tail is dropped."""
    steps = n // batch_size
    return jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)


class Trainer:
    """Holds the compiled functions and the training data for one training run, on every device of
    every process (`mnist_dvc.training.distributed`; one process is the common case).

    Each step's batch is split over all devices: every process slices its own rows of it from the
    training set in its memory and hands them in (`distributed.to_global`), so a run of N
    processes sees exactly the batches of a run of one. `cfg.batch_size` must be a multiple of
    the number of devices and at most the number of training images; the train stage checks both.
    """

    def __init__(self, model: nnx.Module, cfg: Train, train_data: Batch, steps_per_epoch: int):
        self.cfg = cfg
        mesh = Mesh(jax.devices(), ("data",))
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
        per_process = cfg.batch_size // jax.process_count()
        self._rows = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
        self.tx = make_optimizer(cfg, steps_per_epoch * cfg.epochs)
        self.graphdef, self.eval_graphdef, state = init_state(model, self.tx, cfg.seed)
        self.initial_state = to_global(state, self.replicated)
        self.images, self.labels = (np.asarray(array) for array in train_data)
        self.steps_per_epoch = steps_per_epoch
        # One step per call rather than a lax.scan over many: XLA's CPU backend runs scanned
        # convolutions far slower (measured: docs/choices.md, bench/feeding.py), and
        # dispatch is asynchronous, so the host never waits.
        self._step = jax.jit(make_train_step(self.graphdef, self.tx, cfg), donate_argnums=0)
        self._order = jax.jit(epoch_order, static_argnums=(1, 2), out_shardings=self.replicated)
        self._evaluate = jax.jit(self._eval_batch, out_shardings=self.replicated)

    def epoch_steps(self, state: TrainState, epoch: int):
        """Runs one epoch, yielding (state, loss, correct) after each step, still on the devices."""
        key = jax.random.fold_in(jax.random.key(self.cfg.seed), epoch)
        order = to_host(self._order(key, len(self.labels), self.cfg.batch_size))
        for i in range(self.steps_per_epoch):
            rows = order[i, self._rows]
            batch = to_global((self.images[rows], self.labels[rows]), self.batch_sharding)
            state, (loss, correct) = self._step(state, batch)
            yield state, loss, correct

    def _eval_batch(self, params, rest, images, labels, mask):
        model = nnx.merge(self.eval_graphdef, params, rest)
        logits = model(to_inputs(images))
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = (jnp.argmax(logits, -1) == labels) & mask
        return jnp.sum(losses * mask), jnp.sum(correct)

    def evaluate(self, state: TrainState, images, labels, batch_size: int = 1000) -> tuple[float, float]:
        """Mean loss and accuracy of the EMA weights on a held-out set, in `padded_batches` (every
        process scores the whole set)."""
        total_loss, total_correct = 0.0, 0
        for (x, y), count in padded_batches((np.asarray(images), np.asarray(labels, np.int32)), batch_size):
            inputs = to_global((x, y, np.arange(batch_size) < count), self.replicated)
            loss, correct = to_host(self._evaluate(state.ema, state.rest, *inputs))
            total_loss += float(loss)
            total_correct += int(correct)
        return total_loss / len(labels), total_correct / len(labels)

    def eval_model(self, state: TrainState) -> nnx.Module:
        """The trained model in evaluation mode, carrying the EMA weights, on this process's host."""
        return nnx.merge(self.eval_graphdef, to_host(state.ema), to_host(state.rest))

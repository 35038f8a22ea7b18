"""mnist_dvc: the code behind the DVC pipeline in dvc.yaml, grouped by role, one job per module.

The subpackages are layered in the order the pipeline meets them; each imports only this root
(the constants below and `mnist_dvc.errors`) and the subpackages before it in this list, as its
own `__init__.py` states and tests/unit/test_layers.py checks:

    config    the params.yaml schema and every stage's paths
    io        files: atomic writes, IDX and the mirrors, checkpoints, what one stage hands the next
    digits    preparing digits: deskew, stroke width, distortions, any picture or Kaggle CSV to 28x28
    models    what a model is: the networks, the scikit-learn baselines, a saved model, its probabilities
    analysis  what the predictions say: metrics, calibration, ambiguity, label issues, explanations, pictures
    training  how a model is trained: the jit-compiled step, the resumable loop, several processes
    audit     the label audit: cross-validation folds and the second training's set
    release   shipping a model: the promotion gate, the registry's tags, ONNX export
    app       the `mnist-dvc` command, its launcher and its pages

Only `config.params` reads params.yaml and names its keys; only `app.cli` reads the environment,
which this module sets once: XLA's CPU code is capped at SSE4.2 (below).
The constants live here, not in the module that first needed them, so that a stage depends only on
the modules it uses (a module's place is a DVC dependency edge: editing it reruns its importers).
"""

import os

IMAGE_SIDE = 28  # every MNIST image is IMAGE_SIDE x IMAGE_SIDE pixels
NUM_CLASSES = 10
TRAIN_SIZE = 60_000  # digits in the official training file
TEST_SIZE = 10_000  # digits in the official test file

# The same bits on every x86-64 CPU: XLA compiles its CPU code for the processor it runs on, and the
# AVX2/AVX-512 code of an AMD EPYC and of an Intel Xeon sums in different orders (another model from
# the same params and seed), while SSE4.2 code, which every x86-64 CPU since 2008 runs, gave the same
# weights on both, at no cost in speed here (docs/reliability.md, bench/cpu_bits.py). XLA reads its
# flags when JAX first computes, after this import; a cap set in XLA_FLAGS already is left alone
# (`XLA_FLAGS=--xla_cpu_max_isa=` for the processor's own code). No effect on a GPU's code.
if "--xla_cpu_max_isa" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_max_isa=SSE4_2".strip()

"""What a model is: the Flax NNX networks (`networks`), the scikit-learn baselines (`classical`), a
trained model's folder and loading it (`saved`), and probabilities for many digits (`inference`, through the
fixed-size padded batches of `batches`).

May import: mnist_dvc, mnist_dvc.config, mnist_dvc.io, mnist_dvc.digits."""

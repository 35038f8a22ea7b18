"""Digits as arrays: how they are prepared for a model (`preparation`: `deskew`, `stroke`), the
validation split (`split`), distortions (`affine`, and the copies made once, `cached_distortions`, or fresh in
every training step, `fresh_distortions`), and new digits from any picture (`from_picture`) or a Kaggle CSV
(`kaggle_csv`). numpy, scipy and JAX only: no model here.

May import: mnist_dvc, mnist_dvc.config, mnist_dvc.io."""

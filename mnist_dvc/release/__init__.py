"""Shipping a trained model: the promotion gate (`gate`), the model registry's versions and stages on
git tags (`registry`) and export for other runtimes (`onnx_export`).

May import: mnist_dvc.config, mnist_dvc.io, mnist_dvc.digits, mnist_dvc.models, mnist_dvc.analysis, mnist_dvc.training, mnist_dvc.audit."""

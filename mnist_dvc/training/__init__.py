"""How a model is trained: the jit-compiled step over a device mesh (`step`), the resumable loop
with its curves (`loop`), several processes (`distributed`), and one model trained and written out
(`train_and_save`), the path every training stage shares.

May import: mnist_dvc, mnist_dvc.config, mnist_dvc.io, mnist_dvc.digits, mnist_dvc.models, mnist_dvc.analysis."""

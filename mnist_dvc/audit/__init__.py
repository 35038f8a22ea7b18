"""The label audit: which digit falls in which cross-validation fold and putting the folds back
together (`cross_validation`), the findings as tables (`issue_tables`), and the second training's set from what the audit found (`curation`).

May import: mnist_dvc, mnist_dvc.config, mnist_dvc.io, mnist_dvc.digits, mnist_dvc.models, mnist_dvc.analysis,
mnist_dvc.training."""

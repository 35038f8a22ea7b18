"""The parameters and the paths: `params` is the one schema of params.yaml (every key, its type,
range and description; docs/params.md is generated from it), `paths` every file a stage reads or writes.

May import: mnist_dvc."""

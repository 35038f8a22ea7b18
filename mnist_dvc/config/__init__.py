"""The parameters and the paths: `params` is the one schema of params.yaml (every key, its type,
range and description), `paths` every file a stage reads or writes. No stage imports the other two,
so editing them reruns nothing: `params_doc` generates docs/params.md from the schema
(`python -m mnist_dvc.config.params_doc`), `settings` sets dotted keys in loaded params as
`dvc exp run -S` does, for the tests and the benchmarks.

May import: mnist_dvc."""

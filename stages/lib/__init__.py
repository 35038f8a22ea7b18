"""The library the stage scripts in stages/ share, one job per module. Only params.py reads
params.yaml and names its keys; only cli.py, the `mnist-dvc` entry point, reads the environment."""

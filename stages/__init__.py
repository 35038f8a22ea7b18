"""The scripts DVC runs, one per stage (`python -m stages.<name>`, from the project root): each reads
its params section, calls the `mnist_dvc` package, and writes its outputs. Not installed: the package is."""

"""The library the stage scripts in stages/ share: one job per module, no params.yaml reading outside params.py."""

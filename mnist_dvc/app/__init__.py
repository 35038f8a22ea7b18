"""What a person runs: the `mnist-dvc` command (`cli`), N local processes (`launch`), predicting
their own digits (`own_digits`) and the drawing page (`web`, with `static/`).

May import: every other subpackage."""

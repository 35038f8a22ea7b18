"""What a person runs: the `mnist-dvc` command (`cli`), N local processes (`launch`), predicting
their own digits (`own_digits`), the drawing page (`web`, with `static/`), the page template that
makes `dvc plots show`'s charts draw offline (`plots_template`), and the label review page (`review`,
with `static/`) over a review queue's folder (`queue_folder`).

May import: every other subpackage."""

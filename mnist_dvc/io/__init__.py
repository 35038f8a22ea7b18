"""Files: atomic writes (`atomic`), one-line errors for what a user hands in, IDX parsing (`idx`),
fetching and verifying the official files (`mirrors`), pytrees as msgpack (`checkpoint`), reading what one
stage hands the next (`stage_outputs`) and the prepared train/val/test sets (`prepared_sets`).

May import: mnist_dvc, mnist_dvc.config."""

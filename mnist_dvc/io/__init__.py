"""Files: writes that complete or leave nothing (`atomic`), MNIST's IDX files (`idx`), fetching and
verifying the official files (`mirrors`), pytrees of arrays as msgpack (`checkpoint`), reading what one
stage hands the next (`stage_outputs`), the prepared train/val/test sets (`prepared_sets`), a person's
verdicts on labels, labels/review.csv (`verdicts`), and the layout of a review queue folder (`queue_format`).

May import: mnist_dvc, mnist_dvc.config."""

"""What the predictions say: headline and per-digit `metrics`, temperature `calibration`, what a model
answered for a digit (`answers`: best and second-best guess, margin, entropy), the definitions of
`ambiguity`, confident learning (`label_issues`, cleanlab), explanations (`explain`: nearest training
digits and saliency), the `review_queue` of labels for a person to judge, the committee's vote (`committee`) and every PNG (`pictures`).

May import: mnist_dvc, mnist_dvc.config, mnist_dvc.io, mnist_dvc.digits, mnist_dvc.models."""

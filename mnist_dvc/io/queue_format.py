"""The layout of a review queue folder, shared by the stages that write one
(`mnist_dvc.analysis.review_queue`) and `mnist-dvc review`, which reads one
(`mnist_dvc.app.queue_folder`). Kept apart from the writer so that the reader starts without the
writer's JAX, cleanlab and matplotlib."""

from mnist_dvc import NUM_CLASSES

PROB_COLUMNS = [f"p{digit}" for digit in range(NUM_CLASSES)]
QUEUE_COLUMNS = ["rank", "split", "index", "given_label", "suggested_label", "label_quality", "flagged", "margin", "entropy",
                 *PROB_COLUMNS, "digit", "explained"]
QUEUE_CSV, DIGITS, EXPLAINED, GALLERY = "queue.csv", "digits", "explained", "gallery.png"  # inside a queue folder

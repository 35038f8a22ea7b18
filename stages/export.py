"""Stage `export` (export/dvc.yaml): the trained model as an ONNX file for onnxruntime, checked
against JAX on every test digit (`mnist_dvc.release.onnx_export`).

Both runtimes predict data/prepared/test.npz in the batches the stages use; the file is written
only when they give the same top-1 digit for every test digit and no probability differs by
`onnx_export.TOLERANCE` or more; otherwise the stage stops with one line giving both figures.
It needs the optional extra `export` (`pip install -e ".[export]"`) and a network: a scikit-learn
baseline in data/model stops it with one line saying that it does not export.

Outputs:
- data/export/model.onnx: uint8 digits (batch, 28, 28), prepared as data/model/model.json says, to
  float32 probabilities (batch, 10);
- eval/export.json (DVC metrics): the model, the parity figures (`digits_compared`,
  `top1_agreement`, `max_prob_diff`), the file's size in bytes, its opset, the converter and the
  runtime, with their versions.
"""

from mnist_dvc.config import paths
from mnist_dvc.errors import run_stage
from mnist_dvc.io.atomic import write_json
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.models.inference import PREDICT_BATCH
from mnist_dvc.release.onnx_export import export_checked


def main() -> None:
    digits = load_test_set(paths.TEST_NPZ)["images"]
    record = export_checked(paths.MODEL, paths.EXPORT_ONNX, digits, PREDICT_BATCH)
    write_json(paths.EXPORT_JSON, record)
    print(f"{paths.EXPORT_ONNX}: {record['model']}, {record['file_bytes']:,} bytes, opset {record['opset']} "
          f"({record['converter']}); {record['top1_agreement']:,} of {record['digits_compared']:,} test digits "
          f"get JAX's top-1 digit, largest probability difference {record['max_prob_diff']:.1e}")


if __name__ == "__main__":
    run_stage(main)

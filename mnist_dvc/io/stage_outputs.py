"""Reading the .npz arrays and JSON files that one stage hands to the next, with errors that say what to rerun."""

import json
import zipfile
from pathlib import Path

import numpy as np

from mnist_dvc.errors import UserError


def read_npz(path: Path, keys: tuple[str, ...], producer: str) -> dict[str, np.ndarray]:
    """Loads the named arrays of an .npz; a missing or broken file names the stage that writes it."""
    try:
        with np.load(path) as data:
            missing = [key for key in keys if key not in data.files]
            if missing:
                raise UserError(f"{path}: missing array(s) {', '.join(missing)}; rerun the {producer} stage")
            return {key: data[key] for key in keys}
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the {producer} stage first (dvc repro)") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # truncated, empty, not an npz
        raise UserError(f"{path}: unreadable ({error}); rerun the {producer} stage") from None


def read_json(path: Path, producer: str):
    """Loads a JSON file one stage hands to the next; a missing or broken file names the stage that writes it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the {producer} stage first (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: not JSON; rerun the {producer} stage") from None

"""Dotted-key settings applied to loaded params (`{"train.epochs": 2}`), as `dvc exp run -S` applies them,
for the tests and the benchmarks. No stage imports this module, so editing it reruns nothing."""

import copy


def with_settings(raw: dict, settings: dict[str, object]) -> dict:
    """A copy of loaded params.yaml with dotted keys set; a key that does not exist yet is added, as a
    typo would be, for the schema (`mnist_dvc.config.params`) to reject."""
    changed = copy.deepcopy(raw)
    for dotted, value in settings.items():
        *parents, last = dotted.split(".")
        node = changed
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return changed

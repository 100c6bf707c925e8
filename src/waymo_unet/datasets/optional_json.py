"""A JSON file that another pipeline may not have written yet."""

from __future__ import annotations

from typing import Any

from kedro_datasets.json import JSONDataset


class OptionalJSONDataset(JSONDataset):
    """Like ``json.JSONDataset``, but loads as ``{}`` while the file does not exist.

    The training pipeline reads the tuning pipeline's best hyper-parameters this way: a
    project that never ran tuning trains with its own parameters.
    """

    def load(self) -> Any:
        return super().load() if self._exists() else {}

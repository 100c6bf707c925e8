"""Short, stable digests of JSON-able content: what identifies shards, runs and studies."""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


def content_digest(content: Any, length: int = 16) -> str:
    """Hex SHA-256 of ``content`` as sorted JSON, cut to ``length``.

    numpy values count as the Python numbers and lists they hold, so ``np.int64(3)`` and
    ``3`` agree; anything JSON cannot say exactly is refused rather than digested by its
    ``repr`` (which may hold an address, or elide an array's middle).
    """
    text = json.dumps(content, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def table_digest(table: pd.DataFrame, length: int = 16) -> str:
    """Hex SHA-256 of a table's column names and values, row order included.

    Hashes pandas' per-row hashes rather than JSON: a million-row shard index takes a
    fraction of a second.
    """
    rows = pd.util.hash_pandas_object(table, index=False).to_numpy()
    names = json.dumps([str(name) for name in table.columns]).encode()
    return hashlib.sha256(names + rows.tobytes()).hexdigest()[:length]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot digest a {type(value).__name__}: {value!r}")

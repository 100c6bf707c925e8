"""Short, stable digests of JSON-able content: what identifies shards, runs and studies."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_digest(content: Any, length: int = 16) -> str:
    """Hex SHA-256 of ``content`` as sorted JSON (other objects as ``str``), cut to ``length``."""
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]

"""What ingesting one segment found: the record committed beside its shard.

Counts, quarantined rows and class histograms travel in it from the worker that decoded
the pixels to the reports and the label catalogue, which never decode images again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd


@dataclass
class SegmentResult:
    """What ingesting one segment found; committed beside its shard as JSON."""

    split: str
    segment: str
    status: str = "ingested"
    fingerprint: str = ""
    frames: int = 0
    image_rows: int = 0
    label_rows: int = 0
    pairs_written: int = 0
    unlabelled_frames: int = 0
    unlabelled_images: int = 0
    other_camera_rows: int = 0
    # How long, where and when it ran; a reused result keeps those of the run that made it.
    seconds: float = 0.0
    worker: str = ""  # host:pid of the process that ingested it
    started: float = 0.0  # Unix time
    reused: bool = False
    redo_reason: str = ""  # why it was not reused (see segment.NEW...IDENTITY_UNKNOWN)
    no_pairs_reason: str = ""  # why it yields no pairs, where it yields none
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # SegmentJob.sources
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    class_pixels: dict[int, int] = field(default_factory=dict)
    class_images: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentResult:
        """A committed result; keys this version does not know (a newer one's) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in ("class_pixels", "class_images"):
            values[name] = {int(k): int(v) for k, v in values.get(name, {}).items()}
        return cls(**values)

    def add_quarantine(self, file: str, rows: pd.DataFrame, reason: str) -> None:
        for row in rows.itertuples(index=False):
            self.quarantine.append(
                {
                    "file": file,
                    "timestamp": int(row.timestamp),
                    "camera": int(row.camera),
                    "reason": reason,
                }
            )

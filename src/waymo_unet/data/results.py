"""Tables assembled from every segment's ``SegmentResult``: report, quarantine, index."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from waymo_unet.data.label_catalog import HISTOGRAM_COLUMNS
from waymo_unet.data.segment_result import SegmentResult

REPORT_COLUMNS = [
    "split",
    "segment",
    "status",
    "reused",
    "redo_reason",  # why a segment not reused was ingested (again): new, settings changed...
    "no_pairs_reason",
    "frames",
    "image_rows",
    "label_rows",
    "pairs_written",
    "unlabelled_frames",
    "unlabelled_images",
    "other_camera_rows",
    "quarantined_rows",
    "seconds",
    "worker",
]
QUARANTINE_COLUMNS = ["split", "segment", "timestamp", "camera", "file", "reason"]
_INDEX_NUMBERS = ["item", "timestamp", "camera", "source_height", "source_width"]
INDEX_COLUMNS = ["split", "segment", *_INDEX_NUMBERS, "fingerprint"]


def ingestion_report(results: Sequence[SegmentResult]) -> pd.DataFrame:
    """One row per segment: what was read, written, skipped and quarantined, whether it
    was reused or redone (and why), and why it yields no pairs where it yields none."""
    rows = [
        {
            **{name: getattr(r, name) for name in REPORT_COLUMNS if hasattr(r, name)},
            "quarantined_rows": len(r.quarantine),
        }
        for r in results
    ]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def quarantine_table(results: Sequence[SegmentResult]) -> pd.DataFrame:
    """Every row that could not be used, with its file, keys and reason."""
    rows = [
        {"split": r.split, "segment": r.segment, **row} for r in results for row in r.quarantine
    ]
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)


def shard_index(results: Sequence[SegmentResult]) -> pd.DataFrame:
    """One row per shard item: where it is stored, which camera frame it came from, and
    the ingestion fingerprint of its shard (so training need not read every result)."""
    rows = [
        {"split": r.split, "segment": r.segment, "item": item, **keys, "fingerprint": r.fingerprint}
        for r in results
        for item, keys in enumerate(r.items)
    ]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS).astype(dict.fromkeys(_INDEX_NUMBERS, "int64"))


def class_histograms(results: Sequence[SegmentResult]) -> pd.DataFrame:
    """Full-resolution pixel and image counts per (split, segment, semantic id)."""
    rows = [
        {
            "split": r.split,
            "segment": r.segment,
            "class_id": class_id,
            "pixels": pixels,
            "images": r.class_images.get(class_id, 0),
        }
        for r in results
        for class_id, pixels in sorted(r.class_pixels.items())
    ]
    return pd.DataFrame(rows, columns=list(HISTOGRAM_COLUMNS)).astype(
        {c: "int64" for c in HISTOGRAM_COLUMNS[2:]}
    )

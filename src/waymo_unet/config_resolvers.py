"""OmegaConf resolvers the project's configuration uses (registered in settings.py)."""

from __future__ import annotations

from typing import Any


def gcs_url(bucket: Any, prefix: Any = None) -> str:
    """``gs://<bucket>[/<prefix>]`` from the ``gcs.bucket`` and ``gcs.prefix`` run parameters.

    A prefix that is absent, None (what ``--params "gcs.prefix="`` gives), empty or only
    slashes means the bucket root, as in Waymo's own bucket. An empty bucket
    (``gcs.bucket=``) is refused by name.
    """
    bucket_parts = _path_parts(bucket, scheme="gs://")
    if not bucket_parts:
        raise ValueError(
            "gcs.bucket is empty: `--env gcs` reads the raw files from a bucket; leave "
            "gcs.bucket out for Waymo's (waymo_open_dataset_v_2_0_1) or name your copy's"
        )
    if len(bucket_parts) > 1:
        raise ValueError(
            f"gcs.bucket={bucket!r} holds a path: give the bucket alone and the folder "
            "inside it as gcs.prefix"
        )
    return "gs://" + "/".join(bucket_parts + _path_parts(prefix))


def _path_parts(value: Any, scheme: str = "") -> list[str]:
    """The non-empty ``/``-separated parts of ``value``: None, '' and '/' give none."""
    # Kedro's --params parser gives None for an empty value and numbers for digits.
    text = "" if value is None else str(value).strip().removeprefix(scheme)
    return [part for part in text.split("/") if part]

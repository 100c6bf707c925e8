"""The label catalogue: which semantic ids exist, which ones a model trains on, and how much.

Ingestion writes one class histogram row per (split, segment, class_id). The functions here
merge those rows, without rescanning any shard, into a table (one row per class id, with
Waymo names, per-split counts, a contiguous training index and a class weight), a JSON dict
the training code loads, and a uint8 lookup table from raw semantic id to training index.
Ids that are not Waymo classes (a label decoded wrongly) are flagged, never trained, and
traced to the segments that hold them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from waymo_unet.config import config_from_params, value_fits
from waymo_unet.data.waymo import SEMANTIC_CLASSES, SPLITS, UNDEFINED

logger = logging.getLogger(__name__)

HISTOGRAM_COLUMNS = ("split", "segment", "class_id", "pixels", "images")
WEIGHTINGS = ("enet", "median_frequency", "none")
_COUNT_COLUMNS = ("class_id", "pixels", "images")


@dataclass(frozen=True)
class LabelCatalogConfig:
    """Settings of the label catalogue; validated on construction.

    ``fit_split`` is the split whose counts choose the training classes and weights;
    ``ignore_id`` (UNDEFINED) is never trained and maps to ``ignore_index`` in labels.
    """

    fit_split: str = "training"
    ignore_id: int = UNDEFINED
    ignore_index: int = 255
    weighting: str = "enet"
    enet_c: float = 1.02
    max_weight: float | None = 50.0

    def __post_init__(self) -> None:
        if not isinstance(self.fit_split, str) or not self.fit_split:
            raise ValueError(f"fit_split must be a non-empty string, got {self.fit_split!r}")
        if not value_fits(self.ignore_id, int) or self.ignore_id < 0:
            raise ValueError(f"ignore_id must be a non-negative int, got {self.ignore_id!r}")
        if not value_fits(self.ignore_index, int) or not 0 <= self.ignore_index <= 255:
            raise ValueError(
                f"ignore_index must be an int in 0..255 (labels are uint8), "
                f"got {self.ignore_index!r}"
            )
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not value_fits(self.enet_c, float) or not self.enet_c > 1.0:
            raise ValueError(f"enet_c must be a number > 1 (so ln(c + f) > 0), got {self.enet_c!r}")
        if self.max_weight is not None and (
            not value_fits(self.max_weight, float) or not self.max_weight > 0
        ):
            raise ValueError(
                f"max_weight must be a positive number or None, got {self.max_weight!r}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> LabelCatalogConfig:
        """From the ``label_catalog`` parameters; an unknown key or a wrong type is named."""
        return config_from_params(
            cls, dict(params or {}), "label_catalog", "parameters_label_catalog.yml"
        )


def class_weights(frequencies: np.ndarray, config: LabelCatalogConfig) -> np.ndarray:
    """Per-class loss weights from pixel frequencies (which sum to 1 over trained classes).

    ``enet``: 1 / ln(c + f) (Paszke et al., ENet); ``median_frequency``: median(f) / f
    (Eigen & Fergus, with f the share of all trained pixels); ``none``: 1. The weights are
    then normalised so that the pixel-frequency-weighted mean, sum(f * w), is 1 (the loss
    keeps its scale across schemes), and finally clipped to ``max_weight``, so after
    clipping that mean may fall below 1.
    """
    freq = np.asarray(frequencies, dtype=np.float64)
    if freq.size == 0 or np.any(~np.isfinite(freq)) or np.any(freq <= 0):
        raise ValueError("class weights need at least one class, all frequencies > 0")
    if config.weighting == "enet":
        weights = 1.0 / np.log(config.enet_c + freq)
    elif config.weighting == "median_frequency":
        weights = np.median(freq) / freq
    else:
        weights = np.ones_like(freq)
    weights = weights / float(np.sum(freq * weights))
    if config.max_weight is not None:
        weights = np.minimum(weights, config.max_weight)
    return weights


def _validated_histograms(histograms: pd.DataFrame) -> pd.DataFrame:
    """The histogram columns with checked types and values, or a ValueError saying why."""
    missing = [c for c in HISTOGRAM_COLUMNS if c not in histograms.columns]
    if missing:
        raise ValueError(f"class histogram table lacks columns: {', '.join(missing)}")
    if histograms.empty:
        raise ValueError("class histogram table is empty; did ingestion write any labelled pairs?")
    table = histograms.loc[:, list(HISTOGRAM_COLUMNS)].copy()
    for column in _COUNT_COLUMNS:
        try:
            table[column] = table[column].astype("int64")
        except (TypeError, ValueError) as error:
            raise ValueError(f"histogram column {column!r} must hold integers: {error}") from None
        if (table[column] < 0).any():
            raise ValueError(f"histogram column {column!r} holds negative values")
    for column in ("split", "segment"):
        table[column] = table[column].astype(str)
    return table


def _ordered_splits(splits: pd.Series) -> list[str]:
    """Splits present, Waymo's order first (training, validation, testing), then the rest."""
    present = set(splits.unique())
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def _per_split_counts(table: pd.DataFrame, splits: list[str]) -> pd.DataFrame:
    """``pixels_<split>`` and ``images_<split>`` per class id (0 where a split lacks it)."""
    sums = table.groupby(["class_id", "split"])[["pixels", "images"]].sum().unstack("split")
    columns = {}
    for split in splits:
        for count in ("pixels", "images"):
            column = (count, split)
            values = sums[column] if column in sums.columns else 0
            columns[f"{count}_{split}"] = values
    return pd.DataFrame(columns, index=sums.index).fillna(0).astype("int64")


def _found_in(table: pd.DataFrame, classes: pd.DataFrame) -> pd.Series:
    """For unknown ids, the sorted "split/segment" places holding them, joined by ", "."""
    rows = table[table["class_id"].isin(classes.index[classes["unknown"]])]
    places = (rows["split"] + "/" + rows["segment"]).groupby(rows["class_id"])
    joined = places.agg(lambda p: ", ".join(sorted(set(p))))
    return joined.reindex(classes.index, fill_value="").astype(str)


def _train_index(trainable: pd.Series) -> pd.Series:
    """Contiguous 0..K-1 over the trainable rows, in their order; <NA> elsewhere."""
    index = pd.Series(pd.NA, index=trainable.index, dtype="Int64")
    index[trainable] = np.arange(int(trainable.sum()))
    return index


def _class_table(table: pd.DataFrame, config: LabelCatalogConfig) -> pd.DataFrame:
    """Identity, fit-split counts, frequency, index and weight per class id."""
    class_ids = pd.Index(sorted(table["class_id"].unique()), name="class_id")
    fit = table[table["split"] == config.fit_split].groupby("class_id")[["pixels", "images"]]
    fit = fit.sum().reindex(class_ids, fill_value=0).astype("int64")
    is_waymo = class_ids.isin(list(SEMANTIC_CLASSES))
    eligible = pd.Series(is_waymo & (class_ids != config.ignore_id), index=class_ids)
    trainable = eligible & (fit["pixels"] > 0)
    if not trainable.any():
        raise ValueError(
            f"no labelled pixels of a Waymo class in split {config.fit_split!r}; "
            "did ingestion write any labelled pairs?"
        )
    total = fit["pixels"][eligible].sum()
    frequency = (fit["pixels"] / total).where(eligible)
    weight = pd.Series(np.nan, index=class_ids)
    weight[trainable] = class_weights(frequency[trainable].to_numpy(), config)
    names = [SEMANTIC_CLASSES.get(int(i), f"UNKNOWN_{int(i)}") for i in class_ids]
    return pd.DataFrame(
        {
            "name": pd.Series(names, index=class_ids, dtype=str),
            "is_waymo_class": is_waymo,
            "unknown": ~is_waymo,
            "pixels": fit["pixels"],
            "images": fit["images"],
            "frequency": frequency.astype("float64"),
            "train_index": _train_index(trainable),
            "weight": weight,
        },
        index=class_ids,
    )


def build_label_catalog(histograms: pd.DataFrame, config: LabelCatalogConfig) -> pd.DataFrame:
    """Merge per-segment class histograms into one row per class id, sorted by id.

    Columns: class_id, name, is_waymo_class, unknown, pixels, images (fit split totals),
    frequency (share of the fit split's trainable pixels; NaN for the ignore id and
    unknown ids), train_index (nullable Int64, contiguous over Waymo classes other than
    ``ignore_id`` with pixels in the fit split), weight (see ``class_weights``: normalised
    so the pixel-frequency-weighted mean weight is 1, then clipped; NaN when not trained),
    pixels_<split> and images_<split> per split present, and found_in (for unknown ids,
    the sorted "split/segment" places holding them; "" otherwise).
    """
    table = _validated_histograms(histograms)
    if config.fit_split not in set(table["split"]):
        raise ValueError(
            f"no labelled pixels of a Waymo class in split {config.fit_split!r} (the split is "
            f"absent; present: {', '.join(_ordered_splits(table['split']))}); "
            "did ingestion write any labelled pairs?"
        )
    classes = _class_table(table, config)
    if classes["train_index"].max() >= config.ignore_index:
        raise ValueError(
            f"ignore_index {config.ignore_index} collides with a training index "
            f"(0..{int(classes['train_index'].max())})"
        )
    per_split = _per_split_counts(table, _ordered_splits(table["split"]))
    catalog = classes.join(per_split).assign(found_in=_found_in(table, classes))
    catalog = catalog.reset_index()
    _log_summary(catalog, config)
    return catalog


def _log_summary(catalog: pd.DataFrame, config: LabelCatalogConfig) -> None:
    """Log the classes found and trained, and where any unknown ids come from."""
    trained = catalog[catalog["train_index"].notna()]
    logger.info(
        "label catalogue: %d class ids found, %d trained on split %r (%s weighting): %s",
        len(catalog),
        len(trained),
        config.fit_split,
        config.weighting,
        ", ".join(trained["name"]),
    )
    split_columns = [c for c in catalog.columns if c.startswith("pixels_")]
    unknown = catalog[catalog["unknown"]]
    unknown = unknown.assign(total=unknown[split_columns].sum(axis=1))
    for row in unknown[["class_id", "total", "found_in"]].itertuples(index=False):
        logger.warning(
            "unknown semantic id %d (%d pixels over all splits) found in: %s",
            row.class_id,
            row.total,
            row.found_in,
        )
    absent = _absent_from_fit_split(catalog, config)
    if absent:
        logger.warning(
            "Waymo classes absent from split %r, hence not trained: %s", config.fit_split, absent
        )


def _absent_from_fit_split(catalog: pd.DataFrame, config: LabelCatalogConfig) -> list[int]:
    """Waymo ids (not the ignore id) seen somewhere but with no pixels in the fit split."""
    mask = (
        catalog["is_waymo_class"]
        & (catalog["class_id"] != config.ignore_id)
        & catalog["train_index"].isna()
    )
    return [int(i) for i in catalog.loc[mask, "class_id"]]


def label_catalog_json(catalog: pd.DataFrame, config: LabelCatalogConfig) -> dict[str, Any]:
    """The class mapping training loads: plain JSON types only, classes in index order."""
    trained = catalog[catalog["train_index"].notna()].sort_values("train_index")
    classes = [
        {
            "index": int(row.train_index),
            "id": int(row.class_id),
            "name": str(row.name),
            "weight": float(row.weight),
            "pixels": int(row.pixels),
        }
        for row in trained.itertuples(index=False)
    ]
    return {
        "num_classes": len(classes),
        "ignore_id": int(config.ignore_id),
        "ignore_index": int(config.ignore_index),
        "fit_split": str(config.fit_split),
        "weighting": str(config.weighting),
        "classes": classes,
        "id_to_index": {str(c["id"]): c["index"] for c in classes},
        "unknown_ids": [int(i) for i in catalog.loc[catalog["unknown"], "class_id"]],
        "absent_from_fit_split": _absent_from_fit_split(catalog, config),
    }


def id_to_index_lut(catalog_json: Mapping[str, Any], size: int = 256) -> np.ndarray:
    """A uint8 table with ``lut[raw_id]`` = training index, else ``ignore_index``.

    Training applies it as ``lut[label]`` to uint8 label arrays, so the default size 256
    covers every value; ignore id, unknown ids and untrained classes all map to ignore.
    """
    if not value_fits(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    ignore_index = int(catalog_json["ignore_index"])
    if not 0 <= ignore_index <= 255:
        raise ValueError(f"ignore_index {ignore_index} does not fit in uint8")
    lut = np.full(size, ignore_index, dtype=np.uint8)
    for raw_id, index in catalog_json["id_to_index"].items():
        if not 0 <= int(raw_id) < size:
            raise ValueError(f"trained class id {raw_id} does not fit a table of size {size}")
        if not 0 <= int(index) <= 255 or int(index) == ignore_index:
            raise ValueError(f"training index {index} is not a uint8 other than ignore_index")
        lut[int(raw_id)] = int(index)
    return lut

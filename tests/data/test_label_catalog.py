"""Tests of the label catalogue on small hand-built class histograms."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

from waymo_unet.data.label_catalog import (
    LabelCatalogConfig,
    build_label_catalog,
    class_weights,
    id_to_index_lut,
    label_catalog_json,
)
from waymo_unet.data.waymo import SEMANTIC_CLASSES, UNDEFINED

CAR, BUS, PEDESTRIAN, ROAD = 2, 4, 9, 20

# Training: CAR 100, PEDESTRIAN 100, ROAD 800 trainable pixels (frequencies .1, .1, .8);
# UNDEFINED and the unknown id 42 are present but never trained. Validation adds BUS
# (absent from training) and the unknown id 255.
ROWS = [
    ("training", "seg_a", UNDEFINED, 10, 1),
    ("training", "seg_a", CAR, 100, 2),
    ("training", "seg_a", ROAD, 300, 2),
    ("training", "seg_b", PEDESTRIAN, 100, 1),
    ("training", "seg_b", ROAD, 500, 3),
    ("training", "seg_b", 42, 5, 1),
    ("validation", "seg_c", CAR, 50, 1),
    ("validation", "seg_c", BUS, 20, 1),
    ("validation", "seg_c", 42, 3, 1),
    ("validation", "seg_d", 255, 7, 1),
]
COLUMNS = ["split", "segment", "class_id", "pixels", "images"]


def _histograms(rows: list[tuple] = ROWS) -> pd.DataFrame:
    """A histogram table as ingestion writes it, in a shuffled row order."""
    frame = pd.DataFrame(rows, columns=COLUMNS).astype(
        {"class_id": "int64", "pixels": "int64", "images": "int64"}
    )
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _row(catalog: pd.DataFrame, class_id: int) -> pd.Series:
    return catalog.set_index("class_id").loc[class_id]


@pytest.fixture
def catalog() -> pd.DataFrame:
    return build_label_catalog(_histograms(), LabelCatalogConfig())


def test_one_row_per_class_id_sorted_with_names_and_unknown_flags(catalog):
    assert catalog["class_id"].tolist() == [UNDEFINED, CAR, BUS, PEDESTRIAN, ROAD, 42, 255]
    names = dict(zip(catalog["class_id"], catalog["name"], strict=True))
    assert names[CAR] == SEMANTIC_CLASSES[CAR] == "CAR"
    assert names[UNDEFINED] == "UNDEFINED"
    assert names[42] == "UNKNOWN_42"
    assert names[255] == "UNKNOWN_255"
    unknown = catalog.set_index("class_id")["unknown"]
    assert unknown[unknown].index.tolist() == [42, 255]
    assert (catalog["is_waymo_class"] == ~catalog["unknown"]).all()


def test_column_order(catalog):
    assert catalog.columns.tolist() == [
        "class_id",
        "name",
        "is_waymo_class",
        "unknown",
        "pixels",
        "images",
        "frequency",
        "train_index",
        "weight",
        "pixels_training",
        "images_training",
        "pixels_validation",
        "images_validation",
        "found_in",
    ]


def test_train_index_is_contiguous_and_skips_ignore_unknown_and_absent(catalog):
    assert str(catalog["train_index"].dtype) == "Int64"
    index = catalog.set_index("class_id")["train_index"]
    assert [int(index[i]) for i in (CAR, PEDESTRIAN, ROAD)] == [0, 1, 2]
    for class_id in (UNDEFINED, BUS, 42, 255):
        assert index[class_id] is pd.NA


def test_waymo_class_with_zero_fit_pixels_is_not_trained():
    rows = [*ROWS, ("training", "seg_a", 17, 0, 0)]
    catalog = build_label_catalog(_histograms(rows), LabelCatalogConfig())
    assert _row(catalog, 17)["train_index"] is pd.NA
    assert catalog["train_index"].dropna().tolist() == [0, 1, 2]


def test_fit_split_counts_and_frequency(catalog):
    assert _row(catalog, ROAD)["pixels"] == 800
    assert _row(catalog, ROAD)["images"] == 5
    assert _row(catalog, BUS)["pixels"] == 0
    frequency = catalog.set_index("class_id")["frequency"]
    assert frequency[CAR] == pytest.approx(0.1)
    assert frequency[PEDESTRIAN] == pytest.approx(0.1)
    assert frequency[ROAD] == pytest.approx(0.8)
    assert frequency[BUS] == 0.0
    assert frequency[[UNDEFINED, 42, 255]].isna().all()


def test_per_split_columns(catalog):
    car = _row(catalog, CAR)
    assert (car["pixels_training"], car["images_training"]) == (100, 2)
    assert (car["pixels_validation"], car["images_validation"]) == (50, 1)
    bus = _row(catalog, BUS)
    assert (bus["pixels_training"], bus["pixels_validation"]) == (0, 20)
    assert _row(catalog, 42)["pixels_training"] == 5
    assert catalog["pixels_training"].dtype == "int64"


def test_only_present_splits_get_columns():
    rows = [r for r in ROWS if r[0] == "training"]
    catalog = build_label_catalog(_histograms(rows), LabelCatalogConfig())
    assert "pixels_training" in catalog.columns
    assert not any(c.endswith("_validation") for c in catalog.columns)


def test_found_in_lists_places_of_unknown_ids_only(catalog):
    found_in = catalog.set_index("class_id")["found_in"]
    assert found_in[42] == "training/seg_b, validation/seg_c"
    assert found_in[255] == "validation/seg_d"
    assert (found_in[[UNDEFINED, CAR, BUS, PEDESTRIAN, ROAD]] == "").all()


def _trained_weights(catalog: pd.DataFrame) -> list[float]:
    return catalog.dropna(subset=["train_index"]).sort_values("train_index")["weight"].tolist()


def test_enet_weights_match_hand_computation(catalog):
    freq = [0.1, 0.1, 0.8]
    raw = [1 / math.log(1.02 + f) for f in freq]
    mean = sum(f * w for f, w in zip(freq, raw, strict=True))
    assert _trained_weights(catalog) == pytest.approx([w / mean for w in raw])
    assert catalog.set_index("class_id")["weight"][[UNDEFINED, BUS, 42, 255]].isna().all()


def test_median_frequency_weights_are_normalised():
    # median 0.1 -> raw 1, 1, 0.125; sum(f * w) = 0.3 -> 10/3, 10/3, 5/12.
    config = LabelCatalogConfig(weighting="median_frequency")
    weights = _trained_weights(build_label_catalog(_histograms(), config))
    assert weights == pytest.approx([10 / 3, 10 / 3, 5 / 12])
    assert sum(f * w for f, w in zip([0.1, 0.1, 0.8], weights, strict=True)) == pytest.approx(1)


def test_no_weighting_gives_ones():
    config = LabelCatalogConfig(weighting="none")
    assert _trained_weights(build_label_catalog(_histograms(), config)) == [1.0, 1.0, 1.0]


def test_weights_are_clipped_after_normalisation():
    config = LabelCatalogConfig(weighting="median_frequency", max_weight=2.0)
    weights = _trained_weights(build_label_catalog(_histograms(), config))
    assert weights == pytest.approx([2.0, 2.0, 5 / 12])


def test_unclipped_when_max_weight_is_none():
    config = LabelCatalogConfig(weighting="median_frequency", max_weight=None)
    weights = class_weights(np.array([0.001, 0.999]), config)
    assert weights == pytest.approx([500.0, 1 / (2 * 0.999)])


def test_json_round_trips_and_matches_table(catalog):
    config = LabelCatalogConfig()
    payload = label_catalog_json(catalog, config)
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["num_classes"] == 3
    assert (payload["ignore_id"], payload["ignore_index"]) == (0, 255)
    assert (payload["fit_split"], payload["weighting"]) == ("training", "enet")
    assert [c["id"] for c in payload["classes"]] == [CAR, PEDESTRIAN, ROAD]
    assert [c["index"] for c in payload["classes"]] == [0, 1, 2]
    assert [c["name"] for c in payload["classes"]] == ["CAR", "PEDESTRIAN", "ROAD"]
    assert [c["pixels"] for c in payload["classes"]] == [100, 100, 800]
    assert [c["weight"] for c in payload["classes"]] == _trained_weights(catalog)
    assert payload["id_to_index"] == {"2": 0, "9": 1, "20": 2}
    assert payload["unknown_ids"] == [42, 255]
    assert payload["absent_from_fit_split"] == [BUS]


def test_json_holds_plain_python_types_only(catalog):
    def check(value):
        if isinstance(value, dict):
            assert all(type(k) is str for k in value)
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        else:
            assert type(value) in (int, float, str, bool), (value, type(value))

    check(label_catalog_json(catalog, LabelCatalogConfig()))


def test_lut_maps_trained_ids_and_ignores_the_rest(catalog):
    lut = id_to_index_lut(label_catalog_json(catalog, LabelCatalogConfig()))
    assert lut.dtype == np.uint8
    assert lut.shape == (256,)
    assert (lut[CAR], lut[PEDESTRIAN], lut[ROAD]) == (0, 1, 2)
    trained = {CAR, PEDESTRIAN, ROAD}
    assert all(lut[i] == 255 for i in range(256) if i not in trained)
    label = np.array([[0, 2, 9], [20, 4, 42], [255, 2, 28]], dtype=np.uint8)
    assert lut[label].tolist() == [[255, 0, 1], [2, 255, 255], [255, 0, 255]]


def test_lut_uses_configured_ignore_index():
    config = LabelCatalogConfig(ignore_index=100)
    payload = label_catalog_json(build_label_catalog(_histograms(), config), config)
    lut = id_to_index_lut(payload)
    assert lut[UNDEFINED] == 100
    assert lut[ROAD] == 2


def test_lut_rejects_a_table_too_small_for_a_trained_id(catalog):
    payload = label_catalog_json(catalog, LabelCatalogConfig())
    with pytest.raises(ValueError, match="does not fit"):
        id_to_index_lut(payload, size=10)


def test_summary_is_logged_with_unknown_ids_and_places(caplog):
    with caplog.at_level(logging.INFO, logger="waymo_unet.data.label_catalog"):
        build_label_catalog(_histograms(), LabelCatalogConfig())
    text = caplog.text
    assert "7 class ids found, 3 trained" in text
    assert "unknown semantic id 42 (8 pixels" in text
    assert "training/seg_b, validation/seg_c" in text


def test_missing_columns_are_named():
    frame = _histograms().drop(columns=["pixels", "segment"])
    with pytest.raises(ValueError, match="segment, pixels"):
        build_label_catalog(frame, LabelCatalogConfig())


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        build_label_catalog(pd.DataFrame(columns=COLUMNS), LabelCatalogConfig())


def test_no_trainable_class_in_fit_split_is_an_error():
    rows = [("training", "a", UNDEFINED, 10, 1), ("training", "a", 42, 5, 1), *ROWS[6:]]
    with pytest.raises(ValueError, match="no labelled pixels of a Waymo class in split"):
        build_label_catalog(_histograms(rows), LabelCatalogConfig())


def test_absent_fit_split_is_an_error():
    with pytest.raises(ValueError, match="split 'testing'"):
        build_label_catalog(_histograms(), LabelCatalogConfig(fit_split="testing"))


def test_negative_counts_are_an_error():
    rows = [*ROWS, ("training", "a", 3, -1, 1)]
    with pytest.raises(ValueError, match="negative"):
        build_label_catalog(_histograms(rows), LabelCatalogConfig())


def test_ignore_index_colliding_with_a_training_index_is_an_error():
    with pytest.raises(ValueError, match="collides"):
        build_label_catalog(_histograms(), LabelCatalogConfig(ignore_index=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fit_split": ""},
        {"ignore_id": -1},
        {"ignore_index": 256},
        {"ignore_index": -1},
        {"weighting": "inverse"},
        {"enet_c": 1.0},
        {"enet_c": float("nan")},
        {"max_weight": 0.0},
        {"max_weight": -5},
    ],
)
def test_bad_config_values_are_rejected(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        LabelCatalogConfig(**kwargs)


def test_from_params_builds_config_and_rejects_unknown_keys():
    config = LabelCatalogConfig.from_params({"weighting": "none", "max_weight": None})
    assert config == LabelCatalogConfig(weighting="none", max_weight=None)
    assert LabelCatalogConfig.from_params({}) == LabelCatalogConfig()
    with pytest.raises(ValueError, match="weigthing"):
        LabelCatalogConfig.from_params({"weigthing": "enet"})


def test_a_catalogue_without_unknown_ids_logs_no_unknown_warning(caplog):
    clean = [row for row in ROWS if row[2] in SEMANTIC_CLASSES]
    with caplog.at_level(logging.INFO, logger="waymo_unet.data.label_catalog"):
        catalog = build_label_catalog(_histograms(clean), LabelCatalogConfig())
    assert not catalog["unknown"].any()
    assert "unknown semantic id" not in caplog.text
    assert "label catalogue: " in caplog.text

"""The synthetic sample has the exact layout, schema and label semantics of Waymo v2."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from waymo_unet.data import synthetic
from waymo_unet.data.synthetic import SyntheticConfig, generate_sample, render_scene
from waymo_unet.data.waymo import (
    CAMERA_IMAGE,
    CAMERA_IMAGE_SCHEMA,
    CAMERA_SEGMENTATION,
    CAMERA_SEGMENTATION_SCHEMA,
    CLASS_ID,
    IMAGE_COLUMN,
    KEY_CAMERA,
    KEY_COLUMNS,
    KEY_SEGMENT,
    KEY_TIMESTAMP,
    PANOPTIC_DIVISOR_COLUMN,
    PANOPTIC_LABEL_COLUMN,
    SEMANTIC_CLASSES,
)

SMALL = SyntheticConfig(
    seed=7,
    training_segments=2,
    validation_segments=1,
    unlabelled_segments=1,
    frames_per_segment=6,
    labelled_runs_per_segment=2,
    labelled_run_length=2,
    front_size=(96, 64),
    side_size=(96, 44),
    rows_per_row_group=10,
)
TINY = SyntheticConfig(
    training_segments=1,
    validation_segments=0,
    unlabelled_segments=1,
    frames_per_segment=4,
    labelled_runs_per_segment=1,
    labelled_run_length=2,
    front_size=(64, 48),
    side_size=(64, 32),
    rows_per_row_group=10,
)
MAPPING = "[CameraSegmentationLabelComponent].instance_id_to_global_id_mapping"
COVERED_COLUMN = "[CameraSegmentationLabelComponent].num_cameras_covered"
SEGMENT_NAME = re.compile(r"^\d{19}_\d{4}_000_\d{4}_000$")
STUFF = {CLASS_ID[name] for name in ("SKY", "BUILDING", "VEGETATION", "ROAD", "SIDEWALK")}
THINGS = {CLASS_ID[name] for name in ("CAR", "PEDESTRIAN", "POLE", "SIGN", "TRAFFIC_LIGHT")}
MAIN_CLASSES = STUFF | {CLASS_ID[name] for name in ("LANE_MARKER", "CAR", "PEDESTRIAN", "POLE")}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The small sample, written once for the whole module."""
    root = tmp_path_factory.mktemp("raw")
    return root, generate_sample(root, SMALL)


@pytest.fixture(scope="module")
def pairs(sample: tuple[Path, list[Path]]) -> pd.DataFrame:
    """Every labelled image joined with its label on the three keys."""
    root, _ = sample
    tables = []
    for label_file in sorted(root.glob(f"*/{CAMERA_SEGMENTATION}/*.parquet")):
        image_file = label_file.parent.parent / CAMERA_IMAGE / label_file.name
        images = pq.read_table(image_file, columns=[*KEY_COLUMNS, IMAGE_COLUMN]).to_pandas()
        labels = pq.read_table(label_file).to_pandas()
        tables.append(images.merge(labels, on=list(KEY_COLUMNS)))
    return pd.concat(tables, ignore_index=True)


def _files(root: Path, split: str, component: str) -> list[Path]:
    return sorted((root / split / component).glob("*.parquet"))


def _decode_png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def _decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _segment_of(path: Path) -> str:
    return path.name.removesuffix(".parquet")


def test_writes_one_file_per_segment_and_component(sample: tuple[Path, list[Path]]) -> None:
    root, written = sample
    on_disk = sorted(root.rglob("*"))
    assert sorted(written) == [path for path in on_disk if path.is_file()]
    training_images = _files(root, "training", CAMERA_IMAGE)
    training_labels = _files(root, "training", CAMERA_SEGMENTATION)
    assert len(training_images) == SMALL.training_segments + SMALL.unlabelled_segments
    assert len(training_labels) == SMALL.training_segments
    assert len(_files(root, "validation", CAMERA_IMAGE)) == SMALL.validation_segments
    assert len(_files(root, "validation", CAMERA_SEGMENTATION)) == SMALL.validation_segments
    assert all(SEGMENT_NAME.match(_segment_of(path)) for path in written)


def test_unlabelled_segment_has_no_segmentation_file(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    images = {_segment_of(path) for path in _files(root, "training", CAMERA_IMAGE)}
    labels = {_segment_of(path) for path in _files(root, "training", CAMERA_SEGMENTATION)}
    assert labels < images
    assert len(images - labels) == SMALL.unlabelled_segments


@pytest.mark.parametrize(
    ("component", "schema"),
    [(CAMERA_IMAGE, CAMERA_IMAGE_SCHEMA), (CAMERA_SEGMENTATION, CAMERA_SEGMENTATION_SCHEMA)],
)
def test_arrow_schema_is_exact_plus_pandas_index(
    sample: tuple[Path, list[Path]], component: str, schema: pa.Schema
) -> None:
    root, _ = sample
    for path in root.glob(f"*/{component}/*.parquet"):
        written = pq.read_schema(path)
        assert written.names == [*schema.names, "index"]
        for field in schema:
            assert written.field(field.name).type == field.type, field.name
        assert written.field("index").type == pa.string()
        assert written.pandas_metadata["index_columns"] == ["index"]
        table = pq.read_table(path, columns=[KEY_SEGMENT, KEY_TIMESTAMP, "index"])
        segments, stamps = table[KEY_SEGMENT].to_pylist(), table[KEY_TIMESTAMP].to_pylist()
        expected = [f"{segment};{stamp}" for segment, stamp in zip(segments, stamps, strict=True)]
        assert table["index"].to_pylist() == expected
        assert set(segments) == {_segment_of(path)}


def test_files_are_brotli_with_several_row_groups(sample: tuple[Path, list[Path]]) -> None:
    _, written = sample
    for path in written:
        metadata = pq.ParquetFile(path).metadata
        assert metadata.num_row_groups > 1, path
        for group, column in itertools.product(
            range(metadata.num_row_groups), range(metadata.num_columns)
        ):
            assert metadata.row_group(group).column(column).compression == "BROTLI"


def test_rows_follow_time_then_real_camera_order(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    for path in root.glob(f"*/{CAMERA_IMAGE}/*.parquet"):
        keys = pq.read_table(path, columns=[KEY_TIMESTAMP, KEY_CAMERA]).to_pandas()
        stamps = keys[KEY_TIMESTAMP].drop_duplicates().to_numpy()
        assert len(stamps) == SMALL.frames_per_segment
        assert (np.diff(stamps) == 100_000).all()
        assert 1_400_000_000_000_000 < stamps[0] < 1_700_000_000_000_000  # 2014..2023 in µs
        for _, frame in keys.groupby(KEY_TIMESTAMP, sort=False):
            assert frame[KEY_CAMERA].tolist() == [1, 2, 4, 3, 5]


def test_images_are_jpeg_of_front_and_side_sizes(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    path = next(iter(root.glob(f"validation/{CAMERA_IMAGE}/*.parquet")))
    table = pq.read_table(path).to_pandas()
    for _, row in table.iterrows():
        assert row[IMAGE_COLUMN][:2] == b"\xff\xd8"
        height, width, channels = _decode_jpeg(row[IMAGE_COLUMN]).shape
        size = SMALL.front_size if row[KEY_CAMERA] in (1, 2, 3) else SMALL.side_size
        assert ((width, height), channels) == (size, 3)
        pose = np.asarray(row["[CameraImageComponent].pose.transform"]).reshape(4, 4)
        np.testing.assert_allclose(pose[3], [0, 0, 0, 1])
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)


def test_labels_are_uint16_panoptic_pngs_of_the_image_size(pairs: pd.DataFrame) -> None:
    assert (pairs[PANOPTIC_DIVISOR_COLUMN] == 1000).all()
    for _, row in pairs.iterrows():
        panoptic = _decode_png(row[PANOPTIC_LABEL_COLUMN])
        assert panoptic.dtype == np.uint16
        assert panoptic.shape == _decode_jpeg(row[IMAGE_COLUMN]).shape[:2]
        assert set(np.unique(panoptic // 1000).tolist()) <= set(SEMANTIC_CLASSES)
        covered = _decode_png(row[COVERED_COLUMN])
        assert covered.dtype == np.uint8
        assert covered.shape == panoptic.shape
        assert set(np.unique(covered).tolist()) <= {1, 2}


def test_instances_only_on_things_and_listed_in_the_mapping(pairs: pd.DataFrame) -> None:
    for _, row in pairs.iterrows():
        panoptic = _decode_png(row[PANOPTIC_LABEL_COLUMN])
        semantic, instance = panoptic // 1000, panoptic % 1000
        assert not instance[np.isin(semantic, list(STUFF))].any()
        assert (instance[np.isin(semantic, list(THINGS))] > 0).all()
        local = row[f"{MAPPING}.local_instance_ids"].tolist()
        assert local == sorted(set(np.unique(instance).tolist()) - {0})
        assert len(row[f"{MAPPING}.global_instance_ids"]) == len(local)
        assert len(row[f"{MAPPING}.is_tracked"]) == len(local)


def test_sample_covers_main_classes_and_some_undefined(pairs: pd.DataFrame) -> None:
    labels = [_decode_png(data) // 1000 for data in pairs[PANOPTIC_LABEL_COLUMN]]
    present = set(np.unique(np.concatenate([label.ravel() for label in labels])).tolist())
    assert present >= MAIN_CLASSES
    with_undefined = sum(bool((label == 0).any()) for label in labels)
    assert 0 < with_undefined < len(labels)


def test_classes_have_distinct_colours(pairs: pd.DataFrame) -> None:
    names = ("SKY", "BUILDING", "VEGETATION", "ROAD", "SIDEWALK", "LANE_MARKER", "POLE")
    sums = {CLASS_ID[name]: np.zeros(3) for name in names}
    counts = dict.fromkeys(sums, 0)
    for _, row in pairs.iterrows():
        rgb = _decode_jpeg(row[IMAGE_COLUMN]).reshape(-1, 3).astype(float)
        semantic = (_decode_png(row[PANOPTIC_LABEL_COLUMN]) // 1000).ravel()
        for class_id in sums:
            sums[class_id] += rgb[semantic == class_id].sum(axis=0)
            counts[class_id] += int((semantic == class_id).sum())
    means = [sums[class_id] / counts[class_id] for class_id in sums]
    for first, second in itertools.combinations(means, 2):
        assert np.linalg.norm(first - second) > 25


def test_labelled_frames_are_short_runs_of_whole_frames(sample: tuple[Path, list[Path]]) -> None:
    root, _ = sample
    for label_file in root.glob(f"*/{CAMERA_SEGMENTATION}/*.parquet"):
        image_file = label_file.parent.parent / CAMERA_IMAGE / label_file.name
        frames = pq.read_table(image_file, columns=[KEY_TIMESTAMP])[KEY_TIMESTAMP].to_numpy()
        keys = pq.read_table(label_file, columns=[KEY_TIMESTAMP, KEY_CAMERA]).to_pandas()
        labelled = np.unique(keys[KEY_TIMESTAMP])
        assert set(labelled) < set(frames)
        cameras = keys.groupby(KEY_TIMESTAMP)[KEY_CAMERA].apply(sorted)
        assert all(frame == [1, 2, 3, 4, 5] for frame in cameras)
        index = (labelled - frames.min()) // 100_000
        runs = np.split(index, np.flatnonzero(np.diff(index) > 1) + 1)
        assert [len(run) for run in runs] == [SMALL.labelled_run_length] * len(runs)
        assert len(runs) == SMALL.labelled_runs_per_segment
        sequence_ids = pq.read_table(label_file).to_pandas()[
            "[CameraSegmentationLabelComponent].sequence_id"
        ]
        assert sequence_ids.nunique() == len(runs)


def _fingerprint(root: Path) -> dict[str, object]:
    """Keys, label PNG bytes and decoded pixels of every file under ``root``."""
    prints: dict[str, object] = {}
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path).to_pandas()
        name = str(path.relative_to(root))
        prints[name] = table[list(KEY_COLUMNS)].to_numpy().tolist()
        if IMAGE_COLUMN in table:
            prints[name + ":pixels"] = [
                _decode_jpeg(data).tobytes() for data in table[IMAGE_COLUMN]
            ]
        else:
            prints[name + ":labels"] = table[PANOPTIC_LABEL_COLUMN].tolist()
    return prints


def test_same_seed_gives_identical_sample_and_another_seed_differs(tmp_path: Path) -> None:
    first = _fingerprint(Path(generate_sample(tmp_path / "a", TINY)[0]).parents[2])
    again = _fingerprint(Path(generate_sample(tmp_path / "b", TINY)[0]).parents[2])
    other = SyntheticConfig(**{**TINY.__dict__, "seed": TINY.seed + 1})
    different = _fingerprint(Path(generate_sample(tmp_path / "c", other)[0]).parents[2])
    assert first == again
    assert set(first).isdisjoint(different)
    first_labels = next(value for key, value in first.items() if key.endswith(":labels"))
    other_labels = next(value for key, value in different.items() if key.endswith(":labels"))
    assert first_labels != other_labels


def test_render_scene_draws_a_labelled_street() -> None:
    rgb, panoptic = render_scene(np.random.default_rng(0), 120, 80, camera=1)
    assert (rgb.shape, rgb.dtype) == ((80, 120, 3), np.uint8)
    assert (panoptic.shape, panoptic.dtype) == ((80, 120), np.uint16)
    assert {CLASS_ID["SKY"], CLASS_ID["ROAD"], CLASS_ID["CAR"]} <= set(np.unique(panoptic // 1000))


def test_config_rejects_runs_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        SyntheticConfig(frames_per_segment=5, labelled_runs_per_segment=2, labelled_run_length=2)


def test_command_line_passes_out_and_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, SyntheticConfig]] = []
    monkeypatch.setattr(
        synthetic, "generate_sample", lambda out, config: calls.append((out, config))
    )
    synthetic.main(["--out", str(tmp_path), "--seed", "5"])
    assert calls == [(tmp_path, SyntheticConfig(seed=5))]


def test_default_sample_stays_small(tmp_path: Path) -> None:
    written = generate_sample(tmp_path)
    assert len(written) == 2 * 6 + 1
    assert sum(path.stat().st_size for path in written) < 4 * 2**20

import numpy as np
import pandas as pd
import pytest
import torch

from tests.tiny_shards import LUT
from waymo_unet.models.preprocessing import MEAN_RGB, STD_RGB
from waymo_unet.training.data import (
    AugmentConfig,
    ShardDataset,
    augment_batch,
    make_loader,
    prepare_batch,
)


def test_items_are_uint8_and_labels_mapped_to_training_indices(tiny_shards):
    store, index = tiny_shards
    dataset = ShardDataset(store, index, "training", LUT)
    assert len(dataset) == 24
    image, label = dataset[13]  # second segment
    assert image.dtype == torch.uint8
    assert image.shape == (16, 24, 3)
    assert label.dtype == torch.uint8
    assert set(label.unique().tolist()) == {0, 1, 2, 255}
    raw = store.open_segment("training", "b")[1][1]
    np.testing.assert_array_equal(label.numpy(), LUT[raw])


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_hold_the_items_of_their_positions(tiny_shards, workers):
    store, index = tiny_shards
    dataset = ShardDataset(store, index, "training", LUT)
    loader = make_loader(dataset, 5, True, 3, num_workers=workers, pin_memory=False)
    loader.sampler.set_epoch(0)
    positions = list(loader.batch_sampler)
    batches = list(loader)
    assert len(batches) == len(positions) == 4  # 24 items, last partial batch dropped
    for batch_positions, (images, labels) in zip(positions, batches, strict=True):
        assert images.shape == (5, 16, 24, 3)
        for slot, position in enumerate(batch_positions):  # batches span both segments
            image, label = dataset[position]
            assert torch.equal(images[slot], image)
            assert torch.equal(labels[slot], label)


def test_a_split_missing_from_the_index_is_an_error(tiny_shards):
    store, index = tiny_shards
    with pytest.raises(ValueError, match="no items of split 'testing'"):
        ShardDataset(store, index, "testing", LUT)


def test_an_index_listing_more_items_than_a_shard_holds_is_an_error(tiny_shards):
    store, index = tiny_shards
    extra = index[index["segment"] == "a"].tail(1).assign(item=12)  # "a" holds items 0-11
    dataset = ShardDataset(store, pd.concat([index, extra]), "training", LUT)
    dataset[13]  # segment "b" is fine
    with pytest.raises(ValueError, match=r"shard training/a holds 12 images .* lists 13 items"):
        dataset[0]


def test_the_dataset_pickles_without_its_open_mappings(tiny_shards):
    import pickle

    store, index = tiny_shards
    dataset = ShardDataset(store, index, "training", LUT)
    dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._open == {}
    assert torch.equal(clone[0][1], dataset[0][1])


def test_prepare_batch_normalises_on_the_device():
    images = torch.full((2, 4, 6, 3), 255, dtype=torch.uint8)
    labels = torch.ones(2, 4, 6, dtype=torch.uint8)
    inputs, targets = prepare_batch(images, labels, torch.device("cpu"))
    assert inputs.shape == (2, 3, 4, 6)
    expected = (255 - torch.tensor(MEAN_RGB)) / torch.tensor(STD_RGB)
    torch.testing.assert_close(inputs[0, :, 0, 0], expected)
    assert targets.dtype == torch.long


def test_a_flip_at_full_scale_mirrors_image_and_label():
    images = torch.rand(16, 3, 4, 6)
    labels = torch.randint(0, 200, (16, 4, 6), dtype=torch.uint8)
    config = AugmentConfig(horizontal_flip=True, min_crop_scale=1.0)
    out_images, out_labels = augment_batch(images, labels, config, torch.Generator().manual_seed(0))
    mirrored = [torch.equal(out_labels[i], labels[i].flip(-1)) for i in range(16)]
    kept = [torch.equal(out_labels[i], labels[i]) for i in range(16)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored)
    assert any(kept)
    for i in range(16):
        expected = images[i].flip(-1) if mirrored[i] else images[i]
        torch.testing.assert_close(out_images[i], expected)


def test_crops_keep_labels_valid_and_depend_only_on_the_generator():
    labels = torch.randint(0, 3, (4, 16, 24), dtype=torch.uint8)
    labels[:, :2] = 255
    images = torch.rand(4, 3, 16, 24)
    config = AugmentConfig(min_crop_scale=0.5)
    first = augment_batch(images, labels, config, torch.Generator().manual_seed(3))
    second = augment_batch(images, labels, config, torch.Generator().manual_seed(3))
    assert torch.equal(first[1], second[1])
    assert set(first[1].unique().tolist()) <= {0, 1, 2, 255}
    assert not torch.equal(first[1], labels)


def test_loader_order_depends_on_seed_and_epoch_only(tiny_shards):
    store, index = tiny_shards
    dataset = ShardDataset(store, index, "training", LUT)

    def order(epoch: int, seed: int = 0) -> list[int]:
        loader = make_loader(dataset, 4, True, seed, num_workers=0, pin_memory=False)
        loader.sampler.set_epoch(epoch)
        return list(loader.sampler)

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(24))
    assert order(1, seed=5) != order(1)

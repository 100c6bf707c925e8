"""Kedro datasets for what kedro-datasets has no type for: Waymo parquet folders and shards."""

from waymo_unet.datasets.shard_store import ShardStoreDataset
from waymo_unet.datasets.waymo_component import WaymoComponentDataset

__all__ = ["ShardStoreDataset", "WaymoComponentDataset"]

"""Ingestion: raw Waymo parquet -> shards, shard index, class histograms and reports."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.ingestion import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.ingest_camera_segments,
                inputs=[
                    "raw_camera_images",
                    "raw_camera_segmentation",
                    "primary_shard_store",
                    "params:ingestion",
                ],
                outputs="intermediate_segment_results",
                name="ingest_camera_segments",
            ),
            Node(
                nodes.build_ingestion_report,
                inputs="intermediate_segment_results",
                outputs=["reporting_ingestion_report", "reporting_ingestion_quarantine"],
                name="build_ingestion_report",
            ),
            Node(
                nodes.build_shard_index,
                inputs="intermediate_segment_results",
                outputs="primary_shard_index",
                name="build_shard_index",
            ),
            Node(
                nodes.merge_class_histograms,
                inputs="intermediate_segment_results",
                outputs="intermediate_class_histograms",
                name="merge_class_histograms",
            ),
        ],
        tags="ingestion",
    )

"""Evaluation: deployed model + raw validation files -> Waymo's metric, tables, gallery."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.evaluation import nodes

RAW_FILES = ["raw_camera_images", "raw_camera_segmentation"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.evaluate_on_raw_files,
                inputs=["models_deployed_model", *RAW_FILES, "params:evaluation"],
                outputs=[
                    "model_output_evaluation_metrics",
                    "model_output_evaluation_class_iou",
                    "model_output_evaluation_camera_iou",
                    "model_output_evaluation_segments",
                    "model_output_evaluation_confusion",
                    "model_output_evaluation_images",
                    "reporting_evaluation_quarantine",
                ],
                name="evaluate_on_raw_files",
            ),
            Node(
                nodes.evaluate_on_shards,
                inputs=[
                    "models_deployed_model",
                    "primary_shard_store",
                    "primary_shard_index",
                    "params:evaluation",
                ],
                outputs="model_output_evaluation_metrics_at_training_size",
                name="evaluate_on_shards",
            ),
            Node(
                nodes.record_evaluation,
                inputs=[
                    "model_output_evaluation_metrics",
                    "model_output_evaluation_metrics_at_training_size",
                    "model_output_evaluation_class_iou",
                ],
                outputs="tracking_evaluation_metrics",
                name="record_evaluation",
            ),
            Node(
                nodes.draw_worst_images,
                inputs=[
                    "models_deployed_model",
                    *RAW_FILES,
                    "model_output_evaluation_images",
                    "params:evaluation",
                ],
                outputs="reporting_evaluation_gallery",
                name="draw_worst_images",
            ),
        ],
        tags="evaluation",
    )

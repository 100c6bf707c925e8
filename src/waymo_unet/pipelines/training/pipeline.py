"""Training: shards + label catalogue -> model, history, per-class IoU, metrics, MLflow record."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.training import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_segmentation_model,
                inputs=[
                    "primary_shard_store",
                    "primary_shard_index",
                    "model_input_label_catalog",
                    "model_input_tuned_hyperparameters",
                    "models_checkpoints",
                    "tracking_epoch_logger",
                    "params:training",
                ],
                outputs=[
                    "models_segmentation_model",
                    "model_output_training_history",
                    "model_output_class_iou",
                    "model_output_training_metrics",
                ],
                name="train_segmentation_model",
            ),
            Node(
                nodes.record_training_run,
                inputs=[
                    "primary_shard_index",
                    "model_input_label_catalog",
                    "model_input_tuned_hyperparameters",
                    "model_output_training_history",
                    "model_output_training_metrics",
                    "params:training",
                ],
                outputs=[
                    "tracking_training_metrics",
                    "tracking_training_tags",
                    "tracking_trained_settings",
                ],
                name="record_training_run",
            ),
            Node(
                nodes.export_deployable_model,
                inputs="models_segmentation_model",
                outputs="models_deployed_model",
                name="export_deployable_model",
            ),
        ],
        tags="training",
    )

"""Reporting: tuning, training and evaluation charts, overlays, one index page."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.reporting import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.plot_tuning_trials,
                inputs=["model_output_tuning_trials", "params:tuning"],
                outputs="reporting_tuning_chart",
                name="plot_tuning_trials",
            ),
            Node(
                nodes.plot_training_history,
                inputs="model_output_training_history",
                outputs="reporting_training_chart",
                name="plot_training_history",
            ),
            Node(
                nodes.plot_class_iou,
                inputs="model_output_class_iou",
                outputs="reporting_class_iou_chart",
                name="plot_class_iou",
            ),
            Node(
                nodes.plot_class_distribution,
                inputs="model_input_label_catalog_table",
                outputs="reporting_class_distribution_chart",
                name="plot_class_distribution",
            ),
            Node(
                nodes.plot_evaluation_confusion,
                inputs="model_output_evaluation_confusion",
                outputs="reporting_evaluation_confusion_chart",
                name="plot_evaluation_confusion",
            ),
            Node(
                nodes.plot_evaluation_class_iou,
                inputs="model_output_evaluation_class_iou",
                outputs="reporting_evaluation_class_iou_chart",
                name="plot_evaluation_class_iou",
            ),
            Node(
                nodes.plot_evaluation_cameras,
                inputs="model_output_evaluation_camera_iou",
                outputs="reporting_evaluation_camera_chart",
                name="plot_evaluation_cameras",
            ),
            Node(
                nodes.render_validation_overlays,
                inputs=[
                    "models_segmentation_model",
                    "primary_shard_store",
                    "primary_shard_index",
                    "params:reporting",
                ],
                outputs="reporting_validation_overlays",
                name="render_validation_overlays",
            ),
            Node(
                nodes.build_report_page,
                inputs=[
                    "reporting_tuning_chart",
                    "reporting_training_chart",
                    "reporting_class_iou_chart",
                    "reporting_class_distribution_chart",
                    "reporting_validation_overlays",
                    "model_output_training_metrics",
                    "model_input_tuned_hyperparameters",
                    "reporting_ingestion_report",
                    "model_output_evaluation_metrics",
                    "model_output_evaluation_metrics_at_training_size",
                    "reporting_evaluation_confusion_chart",
                    "reporting_evaluation_class_iou_chart",
                    "reporting_evaluation_camera_chart",
                    "reporting_evaluation_gallery",
                ],
                outputs="reporting_index_page",
                name="build_report_page",
            ),
        ],
        tags="reporting",
    )

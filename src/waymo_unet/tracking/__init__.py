"""Experiment tracking: what a run records in MLflow, and the deployed model in its registry."""

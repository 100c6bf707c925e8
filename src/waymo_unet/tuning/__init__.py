"""Hyper-parameter search with Optuna, each trial a short run of ``train_model``."""

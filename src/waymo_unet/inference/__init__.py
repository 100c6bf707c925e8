"""Segmenting new camera images with a trained ``SegmentationModel``."""

"""Waymo's own yardstick for semantic segmentation: coverage-weighted confusion and mIoU."""

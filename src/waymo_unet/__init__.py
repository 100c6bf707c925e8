"""waymo-unet"""

__version__ = "0.1"

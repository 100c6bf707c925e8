"""``python -m waymo_unet.data.synthetic --out DIR [--seed N]``: see :func:`main`."""

from waymo_unet.data.synthetic import main

if __name__ == "__main__":
    main()

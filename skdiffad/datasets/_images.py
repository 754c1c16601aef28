"""Loaders of the image sets: one-class MNIST / Fashion-MNIST and the magnetic tiles.

The files lie under ``<data root>/images`` as the project's data README describes;
the data root is the loaders' ``data_dir``, or
:func:`~skdiffad.datasets.get_data_home` when that is ``None``. Labels follow the
package's convention, 1 = anomaly, 0 = normal; the one-class protocol (train on
normal images only) is :func:`~skdiffad.datasets.semi_supervised_split`, which
takes the image arrays and lists returned here.

Pillow, needed only by :func:`load_magnetic_tile`, is imported there, so this
module stays importable without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._home import _data_root, _missing_data

#: The image collections of the data README, as :func:`list_images` takes them.
IMAGE_COLLECTIONS = ("mnist", "fashion_mnist", "magnetic_tile")
_IMAGES_SUBDIR = Path("images")
# The one-class files: a set name's prefix -> the collection folder holding it.
_ONE_CLASS_FOLDERS = {"mnist": "mnist", "fashion": "fashion_mnist"}
_ONE_CLASS_NAME = re.compile(r"(mnist|fashion)(\d)")
_MNIST_SHAPE = (28, 28)
# The tile masks are 8-bit pngs with soft (resampled) edges: a pixel is a defect
# when it is at least half white.
_MASK_THRESHOLD = 128


def _collection_dir(collection, data_dir) -> Path:
    return _data_root(data_dir) / _IMAGES_SUBDIR / collection


def list_images(collection=None, data_dir=None) -> list[str]:
    """Names of the image sets found in ``<data_dir>/images``.

    Parameters
    ----------
    collection : {"mnist", "fashion_mnist", "magnetic_tile"} or None, default=None
        List only this collection; ``None`` lists all three.
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

    Returns
    -------
    names : list of str
        ``"mnist0"`` ... ``"mnist9"`` and ``"fashion0"``, ``"fashion1"``, ... for
        the one-class files present (see :func:`load_one_class_images`), then
        ``"magnetic_tile"`` when its ``labels.csv`` is present (see
        :func:`load_magnetic_tile`). Empty when nothing is found.

    Raises
    ------
    ValueError
        When ``collection`` is neither ``None`` nor one of ``IMAGE_COLLECTIONS``.
    FileNotFoundError
        When ``data_dir`` is ``None`` and :func:`get_data_home` finds no data folder.

    Examples
    --------
    >>> from skdiffad.datasets import list_images
    >>> names = list_images(data_dir="~/skdiffad_data")  # doctest: +SKIP
    >>> names[:2], names[-3:]  # doctest: +SKIP
    (['mnist0', 'mnist1'], ['fashion8', 'fashion9', 'magnetic_tile'])
    """
    if collection is not None and collection not in IMAGE_COLLECTIONS:
        raise ValueError(f"collection must be one of {IMAGE_COLLECTIONS} or None, "
                         f"got {collection!r}")
    root = _data_root(data_dir) / _IMAGES_SUBDIR
    names = []
    for prefix, folder in _ONE_CLASS_FOLDERS.items():
        if collection in (None, folder):
            names += sorted(p.stem for p in (root / folder).glob(f"{prefix}[0-9].npz"))
    if collection in (None, "magnetic_tile") and (root / "magnetic_tile" / "labels.csv").is_file():
        names.append("magnetic_tile")
    return names


def load_one_class_images(name, data_dir=None):
    """Load one one-class MNIST or Fashion-MNIST set.

    In ``"mnist<k>"`` all of MNIST's images of digit ``k`` (train and test
    parts together, about 7000) are normal and about 1000 images of the other
    digits are the anomalies (about 12.5%); ``"fashion<k>"`` is the same for
    Fashion-MNIST class ``k`` (7000 normal, 1000 anomalies). Split them with
    :func:`semi_supervised_split` to train on normal images only.

    Parameters
    ----------
    name : str
        ``"mnist0"`` ... ``"mnist9"`` or ``"fashion<k>"`` for the classes
        :func:`list_images` finds (a trailing ``.npz`` is accepted).
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

    Returns
    -------
    X : ndarray of shape (n_samples, 28, 28), uint8
        Grey levels 0-255, one 28x28 image per row of the file.
        ``X.reshape(len(X), -1)`` gives the flat (n_samples, 784) form, in the
        files' row-major pixel order.
    y : ndarray of shape (n_samples,), int
        1 = anomaly (another class), 0 = normal (the set's class ``k``).

    Raises
    ------
    ValueError
        When ``name`` is not of the form ``"mnist<k>"`` or ``"fashion<k>"``.
    FileNotFoundError
        When the file is missing; the message names the path looked at and the
        ``SKDIFFAD_DATA`` environment variable that points elsewhere.

    Examples
    --------
    >>> from skdiffad.datasets import load_one_class_images, semi_supervised_split
    >>> X, y = load_one_class_images("mnist3", data_dir="~/skdiffad_data")  # doctest: +SKIP
    >>> X.shape, int(y.sum())  # doctest: +SKIP
    ((8151, 28, 28), 1010)
    >>> X_train, X_test, y_test = semi_supervised_split(
    ...     X, y, random_state=0, max_train=2000)  # doctest: +SKIP
    """
    name = name.removesuffix(".npz")
    match = _ONE_CLASS_NAME.fullmatch(name)
    if match is None:
        hint = (" (the magnetic tiles load with load_magnetic_tile)"
                if name == "magnetic_tile" else "")
        raise ValueError(f"name must be 'mnist<k>' or 'fashion<k>' with a digit k, as "
                         f"list_images gives it, got {name!r}{hint}")
    subdir = _IMAGES_SUBDIR / _ONE_CLASS_FOLDERS[match.group(1)]
    path = _data_root(data_dir) / subdir / f"{name}.npz"
    if not path.is_file():
        raise _missing_data(f"image set {name!r}", path, subdir)
    with np.load(path, allow_pickle=False) as archive:
        X = np.asarray(archive["x"], dtype=np.uint8).reshape(-1, *_MNIST_SHAPE)
        y = np.asarray(archive["y"]).astype(int).ravel()
    return X, y


def _pillow_image():
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("load_magnetic_tile needs Pillow: pip install pillow") from error
    return Image


def _read_grey(path, what, pil_image):
    """A file as a Pillow greyscale image, with errors that name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"magnetic-tile {what} {path} is listed in labels.csv "
                                "but does not exist")
    try:
        with pil_image.open(path) as image:
            return image.convert("L")
    except (OSError, SyntaxError) as error:  # Pillow raises both for broken files
        raise OSError(f"cannot read magnetic-tile {what} {path}: {error}") from error


def _check_size(size):
    if size is None:
        return None
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size)):
        raise ValueError(f"size must be None or (height, width), two positive ints, "
                         f"got {size!r}")
    return int(size[0]), int(size[1])


def load_magnetic_tile(data_dir=None, size=None, return_paths=False, classes=None):
    """Load the magnetic-tile surface-defect images and their pixel masks.

    The set of Huang et al. [1]_: 1344 greyscale photographs of magnetic tiles,
    952 free of defects (class ``"MT_Free"``) and 392 defective in five classes
    (``"MT_Blowhole"`` 115, ``"MT_Break"`` 85, ``"MT_Crack"`` 57, ``"MT_Fray"``
    32, ``"MT_Uneven"`` 103), each with a pixel mask of its own size. Sizes
    vary: 222-403 px high and 103-632 px wide. The files are the ones
    ``<data_dir>/images/magnetic_tile/labels.csv`` lists (columns ``image``,
    ``mask``, ``class``, ``label``; paths relative to that folder), read in its
    order. A mask pixel is a defect when its png grey level is at least 128
    (the masks have soft edges). The MT_Free masks are empty, and so are 4 of
    the 103 MT_Uneven masks in the published set: those images count as
    defective (``y = 1``) but have no marked pixel.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.
    size : tuple of int (height, width) or None, default=None
        Resize every image (bilinear) and mask (nearest neighbour, so it stays
        binary) to this size and stack them; ``None`` keeps each file's size.
    return_paths : bool, default=False
        Also return the absolute file paths (``"image_paths"``, ``"mask_paths"``).
    classes : sequence of str or None, default=None
        Read only the images of these classes (e.g. ``("MT_Free", "MT_Crack")``);
        ``None`` reads all six.

    Returns
    -------
    tiles : dict
        - ``"X"``: the images, grey levels 0-255: a list of uint8 ndarrays of
          shape (H_i, W_i), or, with ``size``, one uint8 ndarray of shape
          (n_images, height, width);
        - ``"masks"``: the defect masks, the same layout as ``"X"`` in bool;
        - ``"y"``: ndarray of shape (n_images,), int, 1 = defective, 0 = MT_Free;
        - ``"class"``: ndarray of shape (n_images,), str, each image's class as
          ``labels.csv`` names it;
        - with ``return_paths``, ``"image_paths"`` and ``"mask_paths"``: lists
          of str.

    Raises
    ------
    FileNotFoundError
        When ``labels.csv`` is missing (the message names the path looked at and
        the ``SKDIFFAD_DATA`` environment variable that points elsewhere), or an
        image or mask it lists is missing (the message names the file).
    OSError
        When an image or mask cannot be read (the message names the file).
    ValueError
        When a mask's size differs from its image's, when ``size`` is not two
        positive ints, or when ``classes`` names a class the set does not have.
    ImportError
        When Pillow is not installed.

    References
    ----------
    .. [1] Y. Huang, C. Qiu and K. Yuan, "Surface defect saliency of magnetic
       tile", The Visual Computer 36, 85-96 (2020).

    Examples
    --------
    >>> from skdiffad.datasets import load_magnetic_tile, semi_supervised_split
    >>> tiles = load_magnetic_tile("~/skdiffad_data", size=(128, 128))  # doctest: +SKIP
    >>> tiles["X"].shape, tiles["masks"].dtype, int(tiles["y"].sum())  # doctest: +SKIP
    ((1344, 128, 128), dtype('bool'), 392)
    >>> X_train, X_test, y_test, train, test = semi_supervised_split(
    ...     tiles["X"], tiles["y"], random_state=0, return_indices=True)  # doctest: +SKIP
    >>> masks_test = tiles["masks"][test]  # doctest: +SKIP
    """
    size = _check_size(size)
    pil_image = _pillow_image()
    folder = _collection_dir("magnetic_tile", data_dir)
    labels_path = folder / "labels.csv"
    if not labels_path.is_file():
        raise _missing_data("magnetic-tile labels.csv", labels_path,
                            _IMAGES_SUBDIR / "magnetic_tile")
    table = pd.read_csv(labels_path)
    if classes is not None:
        known = sorted(table["class"].unique())
        unknown = sorted(set(classes) - set(known))
        if unknown:
            raise ValueError(f"classes {unknown} are not in {labels_path}; it has {known}")
        table = table[table["class"].isin(list(classes))]
    images, masks = [], []
    for image_file, mask_file in zip(table["image"], table["mask"]):
        image = _read_grey(folder / image_file, "image", pil_image)
        mask = _read_grey(folder / mask_file, "mask", pil_image)
        if image.size != mask.size:
            raise ValueError(f"magnetic-tile mask {folder / mask_file} is {mask.size[::-1]} "
                             f"(height, width) but its image {folder / image_file} is "
                             f"{image.size[::-1]}")
        if size is not None:
            image = image.resize(size[::-1], pil_image.Resampling.BILINEAR)
            mask = mask.resize(size[::-1], pil_image.Resampling.NEAREST)
        images.append(np.asarray(image, dtype=np.uint8))
        masks.append(np.asarray(mask) >= _MASK_THRESHOLD)
    if size is not None:
        images = np.stack(images) if images else np.empty((0, *size), dtype=np.uint8)
        masks = np.stack(masks) if masks else np.empty((0, *size), dtype=bool)
    tiles = {"X": images, "masks": masks, "y": table["label"].to_numpy().astype(int),
             "class": table["class"].to_numpy().astype(str)}
    if return_paths:
        root = folder.resolve()
        tiles["image_paths"] = [str(root / f) for f in table["image"]]
        tiles["mask_paths"] = [str(root / f) for f in table["mask"]]
    return tiles

"""Tests of the image loaders and of the one-class split on images.

The tests on the real data get its folder from the ``shared_data`` fixture
(tests/conftest.py) and pass it to the loaders explicitly; the error tests build
small fake sets in ``tmp_path``.
"""

import numpy as np
import pandas as pd
import pytest

from skdiffad.datasets import (
    IMAGE_COLLECTIONS,
    list_images,
    load_magnetic_tile,
    load_one_class_images,
    semi_supervised_split,
)

# Pillow comes with the test set-up (matplotlib needs it), not with the package.
Image = pytest.importorskip("PIL.Image")

MNIST_NAMES = [f"mnist{k}" for k in range(10)]
FASHION_NAMES = [f"fashion{k}" for k in (0, 1, 3, 4, 5, 7, 8, 9)]
TILE_COUNTS = {"MT_Free": 952, "MT_Blowhole": 115, "MT_Break": 85, "MT_Crack": 57,
               "MT_Fray": 32, "MT_Uneven": 103}
# Defective images whose published mask marks no pixel at all.
EMPTY_DEFECT_MASKS = {"exp3_num_45042", "exp4_num_124690", "exp4_num_352527",
                      "exp4_num_45057"}


@pytest.fixture(scope="module")
def tiles(shared_data):
    """The whole magnetic-tile set at its own sizes, read once (about 3 s)."""
    return load_magnetic_tile(data_dir=shared_data, return_paths=True)


def _row_keys(X):
    """One hashable key per image, to find the same image in two files."""
    return {row.tobytes() for row in X.reshape(len(X), -1)}


# ------------------------------------------------------------------ listing
def test_list_images(shared_data):
    assert list_images(data_dir=shared_data) == MNIST_NAMES + FASHION_NAMES + ["magnetic_tile"]
    assert list_images("mnist", shared_data) == MNIST_NAMES
    assert list_images("fashion_mnist", shared_data) == FASHION_NAMES
    assert list_images("magnetic_tile", shared_data) == ["magnetic_tile"]
    assert IMAGE_COLLECTIONS == ("mnist", "fashion_mnist", "magnetic_tile")


def test_list_images_of_an_empty_folder_and_bad_collection(tmp_path):
    assert list_images(data_dir=tmp_path) == []
    with pytest.raises(ValueError, match="collection must be one of"):
        list_images("cifar10", tmp_path)


# ------------------------------------------------------- one-class MNIST sets
def test_one_class_images_shapes_dtypes_and_balance(shared_data):
    for name in list_images("mnist", shared_data) + list_images("fashion_mnist", shared_data):
        X, y = load_one_class_images(name, data_dir=shared_data)
        assert X.dtype == np.uint8 and X.shape == (len(y), 28, 28)
        assert y.dtype.kind == "i" and y.shape == (len(X),)
        assert set(np.unique(y)) == {0, 1}
        assert 0.12 < y.mean() < 0.13, name  # about 1000 anomalies per 7000 normals
        assert 6000 < (y == 0).sum() < 8000


def test_one_class_images_flat_form_is_the_file(shared_data):
    X, _ = load_one_class_images("fashion3.npz", data_dir=shared_data)
    with np.load(shared_data / "images" / "fashion_mnist" / "fashion3.npz") as archive:
        np.testing.assert_array_equal(X.reshape(len(X), -1), archive["x"])


@pytest.mark.parametrize(("normal", "other"), [("mnist3", "mnist5"), ("fashion0", "fashion7")])
def test_one_class_images_normals_are_the_files_class(shared_data, normal, other):
    # An image of class k is normal (y = 0) in set k and an anomaly in every other
    # set: so set k's normal images that also appear in another set are anomalies
    # there, and none of set k's anomalies is among set k's normals.
    X, y = load_one_class_images(normal, data_dir=shared_data)
    X_other, y_other = load_one_class_images(other, data_dir=shared_data)
    normals = _row_keys(X[y == 0])
    assert normals.isdisjoint(_row_keys(X[y == 1]))
    in_other = [row.tobytes() in normals for row in X_other.reshape(len(X_other), -1)]
    assert 50 < sum(in_other) < 200  # about an eighth of the other set's ~1000 anomalies
    assert (y_other[in_other] == 1).all()


@pytest.mark.parametrize("name", ["cifar3", "mnist10", "fashion", "magnetic_tile"])
def test_one_class_images_unknown_name(tmp_path, name):
    with pytest.raises(ValueError, match="'mnist<k>' or 'fashion<k>'"):
        load_one_class_images(name, data_dir=tmp_path)


def test_one_class_images_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'fashion2'.*SKDIFFAD_DATA"):
        load_one_class_images("fashion2", data_dir=tmp_path)


# ------------------------------------------------------------ magnetic tiles
def test_magnetic_tile_layout(tiles):
    X, masks, y, classes = tiles["X"], tiles["masks"], tiles["y"], tiles["class"]
    assert len(X) == len(masks) == len(y) == len(classes) == 1344
    assert pd.Series(classes).value_counts().to_dict() == TILE_COUNTS
    np.testing.assert_array_equal(y, (classes != "MT_Free").astype(int))
    assert y.dtype.kind == "i"
    heights, widths = zip(*(image.shape for image in X))
    assert (min(heights), max(heights), min(widths), max(widths)) == (222, 403, 103, 632)
    for image, mask in zip(X, masks):
        assert image.dtype == np.uint8 and image.ndim == 2
        assert mask.dtype == bool and mask.shape == image.shape


def test_magnetic_tile_masks_mark_the_defects(tiles):
    marked = np.array([mask.any() for mask in tiles["masks"]])
    assert not marked[tiles["y"] == 0].any()  # MT_Free: empty masks
    unmarked = {path.rsplit("/", 1)[-1].removesuffix(".png")
                for path, has in zip(tiles["mask_paths"], marked) if not has}
    defective_unmarked = unmarked & {p.rsplit("/", 1)[-1].removesuffix(".png")
                                     for p, label in zip(tiles["mask_paths"], tiles["y"])
                                     if label == 1}
    assert defective_unmarked == EMPTY_DEFECT_MASKS
    assert marked.sum() == 392 - len(EMPTY_DEFECT_MASKS)


def test_magnetic_tile_paths(tiles, shared_data):
    folder = shared_data.resolve() / "images" / "magnetic_tile"
    assert len(tiles["image_paths"]) == len(tiles["mask_paths"]) == 1344
    assert tiles["image_paths"][0].startswith(str(folder))
    assert all(p.endswith(".jpg") for p in tiles["image_paths"])
    with Image.open(tiles["image_paths"][-1]) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("L")), tiles["X"][-1])


def test_magnetic_tile_resize_keeps_masks_binary(shared_data):
    classes = ("MT_Fray", "MT_Crack")
    small = load_magnetic_tile(shared_data, size=(96, 128), classes=classes)
    full = load_magnetic_tile(shared_data, classes=classes)
    assert set(small) == {"X", "masks", "y", "class"}  # no paths unless asked
    assert small["X"].shape == small["masks"].shape == (32 + 57, 96, 128)
    assert small["X"].dtype == np.uint8 and small["masks"].dtype == bool
    assert set(small["class"]) == set(classes) and (small["y"] == 1).all()
    # Nearest-neighbour resizing keeps each mask's defect share, bilinear the grey level.
    share_small = small["masks"].mean(axis=(1, 2))
    share_full = np.array([mask.mean() for mask in full["masks"]])
    np.testing.assert_allclose(share_small, share_full, atol=0.02)
    assert share_small.mean() == pytest.approx(share_full.mean(), rel=0.1)
    grey_full = np.array([image.mean() for image in full["X"]])
    np.testing.assert_allclose(small["X"].mean(axis=(1, 2)), grey_full, atol=3)


@pytest.mark.parametrize("size", [(64,), (0, 64), (64.0, 64), 64])
def test_magnetic_tile_bad_size(tmp_path, size):
    with pytest.raises(ValueError, match="size must be"):
        load_magnetic_tile(tmp_path, size=size)


def test_magnetic_tile_unknown_class(shared_data):
    with pytest.raises(ValueError, match=r"\['MT_Scratch'\] are not in"):
        load_magnetic_tile(shared_data, classes=["MT_Free", "MT_Scratch"])


# A fake set: one good tile, then the row each error test adds.
def _fake_tiles(tmp_path, image_size=(30, 20), mask_size=(30, 20), image_bytes=None):
    folder = tmp_path / "images" / "magnetic_tile"
    (folder / "MT_Crack").mkdir(parents=True)
    Image.new("L", (20, 30), 90).save(folder / "MT_Crack" / "good.jpg")
    Image.new("L", (20, 30), 255).save(folder / "MT_Crack" / "good.png")
    if image_bytes is None:
        Image.new("L", image_size[::-1], 90).save(folder / "MT_Crack" / "bad.jpg")
    else:
        (folder / "MT_Crack" / "bad.jpg").write_bytes(image_bytes)
    Image.new("L", mask_size[::-1], 0).save(folder / "MT_Crack" / "bad.png")
    rows = [("MT_Crack/good.jpg", "MT_Crack/good.png", "MT_Crack", 1),
            ("MT_Crack/bad.jpg", "MT_Crack/bad.png", "MT_Free", 0)]
    pd.DataFrame(rows, columns=["image", "mask", "class", "label"]).to_csv(
        folder / "labels.csv", index=False)
    return folder


def test_magnetic_tile_reads_a_fake_set(tmp_path):
    _fake_tiles(tmp_path)
    tiles = load_magnetic_tile(tmp_path, classes=["MT_Crack"])
    assert len(tiles["X"]) == 1 and tiles["X"][0].shape == (30, 20)
    assert tiles["masks"][0].all() and tiles["y"].tolist() == [1]
    assert list_images(data_dir=tmp_path) == ["magnetic_tile"]


def test_magnetic_tile_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"labels\.csv.*SKDIFFAD_DATA"):
        load_magnetic_tile(tmp_path)


def test_magnetic_tile_missing_file(tmp_path):
    folder = _fake_tiles(tmp_path)
    (folder / "MT_Crack" / "bad.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"mask .*bad\.png is listed in labels\.csv"):
        load_magnetic_tile(tmp_path)


def test_magnetic_tile_unreadable_file(tmp_path):
    _fake_tiles(tmp_path, image_bytes=b"not a jpeg")
    with pytest.raises(OSError, match=r"cannot read magnetic-tile image .*bad\.jpg"):
        load_magnetic_tile(tmp_path)


def test_magnetic_tile_mask_of_another_size(tmp_path):
    _fake_tiles(tmp_path, mask_size=(30, 21))
    with pytest.raises(ValueError, match=r"mask .*bad\.png is \(30, 21\).*bad\.jpg is \(30, 20\)"):
        load_magnetic_tile(tmp_path)


# -------------------------------------------------------- one-class split
def test_split_of_images_is_seeded_disjoint_and_capped(shared_data):
    X, y = load_one_class_images("mnist3", data_dir=shared_data)
    X_train, X_test, y_test, train, test = semi_supervised_split(
        X, y, random_state=0, max_train=2000, return_indices=True)
    assert X_train.shape == (2000, 28, 28) and len(train) == 2000
    assert (y[train] == 0).all()
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == len(y)  # the normals left over are tested
    np.testing.assert_array_equal(X_train, X[train])
    np.testing.assert_array_equal(X_test, X[test])
    np.testing.assert_array_equal(y_test, y[test])
    again = semi_supervised_split(X, y, random_state=0, max_train=2000, return_indices=True)
    other = semi_supervised_split(X, y, random_state=1, max_train=2000, return_indices=True)
    np.testing.assert_array_equal(again[3], train)
    assert not np.array_equal(other[3], train)


def test_split_of_a_list_lets_masks_follow(tiles):
    X_train, X_test, y_test, train, test = semi_supervised_split(
        tiles["X"], tiles["y"], random_state=0, return_indices=True)
    assert isinstance(X_train, list) and isinstance(X_test, list)
    assert len(X_train) == 476 and len(X_test) == 1344 - 476
    masks_test = [tiles["masks"][i] for i in test]
    assert all(mask.shape == image.shape for mask, image in zip(masks_test, X_test))
    assert y_test.sum() == 392 and not any(tiles["masks"][i].any() for i in train)


def test_split_of_lists_without_data():
    rng = np.random.default_rng(0)
    X = [rng.integers(0, 256, size=(5 + i % 3, 7)).astype(np.uint8) for i in range(40)]
    y = np.r_[np.zeros(30, int), np.ones(10, int)]
    X_train, X_test, y_test, train, test = semi_supervised_split(
        X, y, random_state=3, train_fraction=0.5, max_train=8, return_indices=True)
    assert len(X_train) == 8 and len(X_test) == 32 and y_test.sum() == 10
    assert all(a is X[i] for a, i in zip(X_train, train))
    assert all(a is X[i] for a, i in zip(X_test, test))
    # Without the cap, and without the indices, the split is the one it always was.
    three = semi_supervised_split(np.arange(40), y, random_state=3)
    assert len(three) == 3 and len(three[0]) == 15


@pytest.mark.parametrize("max_train", [0, -1, 2.5, True])
def test_split_rejects_a_bad_max_train(max_train):
    with pytest.raises(ValueError, match="max_train must be"):
        semi_supervised_split(np.arange(10), np.zeros(10), random_state=0, max_train=max_train)

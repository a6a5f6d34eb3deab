"""The MNIST and Fashion-MNIST sources on small IDX files written here: known pixels and labels
decoded (gzip and uncompressed) to RGB, the splits, every wrong header, count or length one
DataError naming the file, the mirrors, the download against a local HTTP server (a wrong
checksum or size, a leftover .part, a file of the user's, offline), and the programs."""

import gzip
import hashlib
import os
import re
import socket

import numpy as np
import pytest

from datasets import base
from datasets import idx
import helpers
import input_data
from input_data import DataError

MNIST = input_data.SOURCES["mnist"]
FASHION = input_data.SOURCES["fashion-mnist"]
TRAIN_COUNT = 40
TEST_COUNT = 13  # not a multiple of the batch sizes used
IMAGES, LABELS = idx.TRAIN_FILES
TEST_IMAGES, TEST_LABELS = idx.TEST_FILES


idx_bytes = helpers.idx_bytes


def known_images(count, offset=0):
    """uint8 [count, 28, 28]: each pixel a function of its image, row and column (no two images
    alike, no image its own mirror)."""
    k, row, col = np.meshgrid(np.arange(count) + offset, np.arange(28), np.arange(28),
                              indexing="ij")
    return ((k * 37 + row * 28 + col * 3) % 256).astype(np.uint8)


def write(folder, name, data, compressed=True):
    """FOLDER/NAME (gzip) or FOLDER/NAME without .gz (the raw bytes); returns the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name if compressed else idx.raw_name(name))
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if compressed else data)
    return path


def write_set(folder, compressed=True, test=True, seed=0):
    """The four files (t10k only if TEST) of known images and random labels in FOLDER;
    returns {name: array}."""
    rng = np.random.default_rng(seed)
    contents = {IMAGES: known_images(TRAIN_COUNT), LABELS: rng.integers(0, 10, TRAIN_COUNT)}
    if test:
        contents |= {TEST_IMAGES: known_images(TEST_COUNT, offset=1000),
                     TEST_LABELS: rng.integers(0, 10, TEST_COUNT)}
    for name, array in contents.items():
        write(str(folder), name, idx_bytes(array), compressed)
    return contents


@pytest.fixture
def mnist(tmp_path):
    """(data_dir, contents): the four files, gzip-compressed, in tmp_path/data."""
    data_dir = tmp_path / "data"
    return str(data_dir), write_set(data_dir)


def collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def read(source, data_dir, split, **options):
    """(images uint8 [N, 28, 28, 3], labels) of a split, read at the files' own 28x28."""
    images, labels = collect(source.read(data_dir, split, 8, preprocess="none", image_size=28,
                                         **options))
    assert images.dtype == np.float32 and np.array_equal(images, np.round(images))
    return images.astype(np.uint8), labels


# ----------------------------------------------------------------------------------------------
# Decoding and splits
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compressed", [True, False])
def test_known_pixels_decode_to_grey_rgb_with_their_labels(tmp_path, compressed):
    contents = write_set(tmp_path, compressed)
    images, labels = read(MNIST, str(tmp_path), "trainval")
    assert images.shape == (TRAIN_COUNT, 28, 28, 3) and labels.dtype == np.int32
    for channel in range(3):  # the grey value in R, G and B
        np.testing.assert_array_equal(images[..., channel], contents[IMAGES])
    np.testing.assert_array_equal(labels, contents[LABELS])
    assert images[3, 5, 7, 0] == (3 * 37 + 5 * 28 + 7 * 3) % 256  # row 5, column 7
    test_images, test_labels = read(FASHION, str(tmp_path), "test")
    np.testing.assert_array_equal(test_images[..., 1], contents[TEST_IMAGES])
    np.testing.assert_array_equal(test_labels, contents[TEST_LABELS])
    names = MNIST.image_names(str(tmp_path), "test")
    suffix = ".gz" if compressed else ""
    assert names[0] == f"t10k-images-idx3-ubyte{suffix}:0" and len(names) == TEST_COUNT


def test_splits_val_is_the_last_training_images(mnist):
    data_dir, contents = mnist
    train, train_labels = read(MNIST, data_dir, "train", val_size=6)
    val, val_labels = read(MNIST, data_dir, "val", val_size=6)
    np.testing.assert_array_equal(train[..., 0], contents[IMAGES][:-6])
    np.testing.assert_array_equal(val[..., 0], contents[IMAGES][-6:])
    np.testing.assert_array_equal(val_labels, contents[LABELS][-6:])
    assert MNIST.default_val_size(data_dir) == TRAIN_COUNT // 10
    counts = {split: MNIST.num_examples(data_dir, split) for split in base.SPLITS}
    assert counts == {"train": TRAIN_COUNT - 4, "val": 4, "trainval": TRAIN_COUNT,
                      "test": TEST_COUNT}
    assert MNIST.image_names(data_dir, "val", 6) == [
        f"{IMAGES}:{i}" for i in range(TRAIN_COUNT - 6, TRAIN_COUNT)]
    assert MNIST.class_counts(data_dir, "val", 6) == np.bincount(
        contents[LABELS][-6:], minlength=10).tolist()
    for val_size in (0, TRAIN_COUNT):
        with pytest.raises(DataError, match=f"between 1 and {TRAIN_COUNT - 1}"):
            MNIST.num_examples(data_dir, "train", val_size)


def test_resized_to_the_network_side_and_preprocessed(mnist):
    data_dir, _ = mnist
    images, labels = next(iter(MNIST.read(data_dir, "test", 5)))
    assert images.shape == (5, 32, 32, 3) and labels.shape == (5,)
    bigger, _ = next(iter(FASHION.read(data_dir, "test", 5, image_size=67, resize="crop")))
    assert bigger.shape == (5, 67, 67, 3)


def test_class_names_augmentation_and_mirrors(mnist):
    data_dir, contents = mnist
    assert MNIST.class_names(data_dir) == [str(d) for d in range(10)]
    assert FASHION.class_names(data_dir)[0] == "T-shirt/top"
    assert FASHION.class_names(data_dir)[9] == "Ankle boot"
    assert MNIST.num_classes(data_dir) == FASHION.num_classes(data_dir) == 10
    assert (MNIST.AUGMENT, FASHION.AUGMENT) == (("crop",), ("crop", "flip"))
    assert MNIST.mirrors(data_dir) == [-1] * 10 and FASHION.mirrors(data_dir) is None
    # flips only: never a mirrored digit, about half of the clothes mirrored
    digits, _ = read(MNIST, data_dir, "trainval", augment="flip", seed=1)
    np.testing.assert_array_equal(digits[..., 0], contents[IMAGES])
    clothes, labels = read(FASHION, data_dir, "trainval", augment="flip", seed=1)
    mirrored = [np.array_equal(c, i[:, ::-1]) for c, i in zip(clothes[..., 0], contents[IMAGES])]
    assert 5 < sum(mirrored) < TRAIN_COUNT - 5
    np.testing.assert_array_equal(labels, contents[LABELS])


def test_the_training_files_suffice_and_only_test_wants_t10k(tmp_path):
    write_set(tmp_path, test=False)
    assert MNIST.num_examples(str(tmp_path), "train") == TRAIN_COUNT - 4
    MNIST.validate(str(tmp_path), "trainval")
    with pytest.raises(DataError) as error:
        MNIST.validate(str(tmp_path), "test")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / TEST_IMAGES} is missing") and "\n" not in message
    assert "t10k" in message and MNIST.URL + TEST_IMAGES in message


def test_files_are_parsed_once_a_process(mnist, monkeypatch):
    data_dir, _ = mnist
    MNIST.validate(data_dir, "train")
    monkeypatch.setattr(idx, "_parse_open", None)  # would fail if called again
    assert MNIST.num_examples(data_dir, "trainval") == TRAIN_COUNT


# ----------------------------------------------------------------------------------------------
# Bad files: one line naming the file
# ----------------------------------------------------------------------------------------------

def bad_images(compressed):
    images = known_images(TRAIN_COUNT)
    good = idx_bytes(images)
    return {
        "wrong magic": (idx_bytes(images, magic=2049), "magic number 2049, not 2051"),
        "wrong dimensions": (idx_bytes(images.reshape(TRAIN_COUNT, 28, 28), shape=(27, 29)),
                             "27x29 images, not 28x28"),
        "count above the data": (idx_bytes(images, count=TRAIN_COUNT + 1),
                                 "truncated" if compressed else "(truncated)"),
        "count below the data": (idx_bytes(images, count=TRAIN_COUNT - 1),
                                 "more than the" if compressed else "(too long)"),
        "truncated": (good[:-100], "truncated" if compressed else "(truncated)"),
        "no images": (idx_bytes(images[:0]), "its header says 0 images"),
        "empty": (b"", "shorter than the 16-byte IDX header"),
    }


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("case", ["wrong magic", "wrong dimensions", "count above the data",
                                  "count below the data", "truncated", "no images", "empty"])
def test_a_bad_images_file_is_one_line_naming_it(tmp_path, compressed, case):
    data_dir = str(tmp_path / "data")
    write_set(data_dir, compressed)
    content, words = bad_images(compressed)[case]
    path = write(data_dir, IMAGES, content, compressed)
    before = open(path, "rb").read()
    with pytest.raises(DataError) as error:
        MNIST.read(data_dir, "train", 8)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert words in message and f"replace it with MNIST's {IMAGES}" in message
    assert open(path, "rb").read() == before  # left as it is
    MNIST.validate(data_dir, "test")  # the test files are fine


@pytest.mark.parametrize("content, words", [
    (idx_bytes(np.zeros(TRAIN_COUNT), magic=2051), "magic number 2051, not 2049"),
    (idx_bytes(np.arange(TRAIN_COUNT) % 10, count=TRAIN_COUNT + 5), "truncated"),
    (idx_bytes(np.full(TRAIN_COUNT, 3))[:5], "shorter than the 8-byte IDX header"),
    (idx_bytes(np.r_[np.zeros(7), [10], np.zeros(32)]), "label 10 at index 7, not 0..9"),
])
def test_a_bad_labels_file_is_one_line_naming_it(tmp_path, content, words):
    data_dir = str(tmp_path)
    write_set(data_dir)
    path = write(data_dir, LABELS, content)
    with pytest.raises(DataError) as error:
        MNIST.validate(data_dir, "trainval")
    message = str(error.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_image_and_label_counts_must_match(tmp_path):
    write_set(tmp_path)
    labels = write(str(tmp_path), TEST_LABELS, idx_bytes(np.zeros(TEST_COUNT - 1)))
    with pytest.raises(DataError) as error:
        MNIST.num_examples(str(tmp_path), "test")
    message = str(error.value)
    assert message == (f"{tmp_path / TEST_IMAGES} holds {TEST_COUNT} images but {labels} "
                       f"{TEST_COUNT - 1} labels: they are not a pair; replace them with "
                       f"MNIST's {TEST_IMAGES} and {TEST_LABELS} (from {MNIST.URL})")


@pytest.mark.parametrize("damage, words", [
    (lambda data: data[:-30], "truncated (its gzip data ends early)"),
    (lambda data: data[:-8] + bytes(8), "is not a readable gzip file (CRC check failed"),
    (lambda data: gzip.decompress(data), "is not a readable gzip file (Not a gzipped file"),
])
def test_damaged_gzip_files(mnist, damage, words):
    data_dir, _ = mnist
    path = os.path.join(data_dir, TEST_IMAGES)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(DataError) as error:
        MNIST.validate(data_dir, "test")
    assert str(error.value).startswith(f"{path}") and words in str(error.value)


def test_a_gzip_file_without_gz_in_its_name(tmp_path):
    write_set(tmp_path, compressed=False)
    path = tmp_path / idx.raw_name(LABELS)
    path.write_bytes(gzip.compress(path.read_bytes()))
    magic = int.from_bytes(path.read_bytes()[:4], "big")  # 1f 8b 08 00: gzip, deflate
    with pytest.raises(DataError, match=re.escape(
            f"{path}: magic number {magic}, not 2049 (it is gzip-compressed: its name must end "
            "in .gz)")):
        MNIST.validate(str(tmp_path), "train")


def test_not_a_folder_and_no_files(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"no MNIST in {tmp_path / 'none'}: it does "
                                                  "not exist")):
        MNIST.validate(str(tmp_path / "none"), "train")
    write(str(tmp_path), LABELS, idx_bytes(np.zeros(3)))
    with pytest.raises(DataError) as error:
        FASHION.validate(str(tmp_path), "train")
    assert str(error.value).startswith(f"{tmp_path / IMAGES} is missing (and so is ")
    assert f"{LABELS} of the four are there" in str(error.value)


def test_the_other_data_sets_file_is_refused(mnist, monkeypatch):
    """Both have the same file names: Fashion-MNIST's file (its size and MD5) in MNIST's
    place is one line, not a silent training on clothes."""
    data_dir, _ = mnist
    path = os.path.join(data_dir, IMAGES)
    monkeypatch.setitem(FASHION.BYTES, IMAGES, os.path.getsize(path))
    monkeypatch.setitem(FASHION.MD5, IMAGES, idx._md5(path))
    with pytest.raises(DataError, match=re.escape(
            f"{path} is Fashion-MNIST's {IMAGES} (its size and MD5), not MNIST's")):
        MNIST.validate(data_dir, "train")
    FASHION.validate(data_dir, "train")


def test_and_mnists_file_in_fashion_mnists_place(mnist, monkeypatch):
    """The other way round: each data set's module knows the other's files (idx.publish)."""
    data_dir, _ = mnist
    path = os.path.join(data_dir, TEST_LABELS)
    monkeypatch.setitem(MNIST.BYTES, TEST_LABELS, os.path.getsize(path))
    monkeypatch.setitem(MNIST.MD5, TEST_LABELS, idx._md5(path))
    with pytest.raises(DataError, match=re.escape(
            f"{path} is MNIST's {TEST_LABELS} (its size and MD5), not Fashion-MNIST's")):
        FASHION.validate(data_dir, "test")
    MNIST.validate(data_dir, "test")


# ----------------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------------

Server = helpers.Server


@pytest.fixture
def server(tmp_path):
    """(server, md5s, sizes): the four files served, with their MD5s and sizes."""
    served = tmp_path / "served"
    write_set(served, seed=1)
    files = {name: (served / name).read_bytes() for name in idx.ALL_FILES}
    s = Server(str(served))
    yield (s, {n: hashlib.md5(d).hexdigest() for n, d in files.items()},
           {n: len(d) for n, d in files.items()})
    s.httpd.shutdown()
    s.httpd.server_close()


def download(s, data_dir, md5, sizes, url=None):
    return MNIST.maybe_download(str(data_dir), url=url or s.url, md5=md5, sizes=sizes)


def test_download_end_to_end(server, tmp_path):
    s, md5, sizes = server
    data_dir = tmp_path / "data"
    assert download(s, data_dir, md5, sizes) == str(data_dir)
    assert s.requests == 4
    assert sorted(os.listdir(data_dir)) == sorted(idx.ALL_FILES)  # no .part left
    assert MNIST.num_examples(str(data_dir), "test") == TEST_COUNT
    download(s, data_dir, md5, sizes)
    assert s.requests == 4  # there: not fetched again


@pytest.mark.parametrize("wrong", ["md5", "size"])
def test_a_download_that_does_not_match_is_deleted(server, tmp_path, wrong):
    s, md5, sizes = server
    data_dir = tmp_path / "data"
    if wrong == "md5":
        md5 = md5 | {LABELS: "0" * 32}
        words = f"has MD5 {hashlib.md5((tmp_path / 'served' / LABELS).read_bytes()).hexdigest()}"
    else:
        sizes = sizes | {LABELS: sizes[LABELS] + 1}
        words = f"is {sizes[LABELS] - 1} bytes, not {sizes[LABELS]}"
    with pytest.raises(DataError) as error:
        download(s, data_dir, md5, sizes)
    message = str(error.value)
    assert message.startswith(f"the file downloaded from {s.url}{LABELS} {words}")
    assert "it was deleted: run again" in message and "\n" not in message
    assert os.listdir(data_dir) == [IMAGES + ".part"]  # nothing under the final names
    download(s, data_dir, md5 | {LABELS: None}, sizes | {LABELS: None})  # unchecked: taken
    assert s.requests == 2 + 3  # the good .part of the first file used again


@pytest.mark.parametrize("complete", [False, True])
def test_a_leftover_part_file_is_used_or_fetched_again(server, tmp_path, complete):
    s, md5, sizes = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    served = (tmp_path / "served" / IMAGES).read_bytes()
    (data_dir / (IMAGES + ".part")).write_bytes(served if complete else served[:100])
    download(s, data_dir, md5, sizes)
    assert s.requests == (3 if complete else 4)
    assert (data_dir / IMAGES).read_bytes() == served
    assert sorted(os.listdir(data_dir)) == sorted(idx.ALL_FILES)


def test_a_file_of_the_users_is_never_replaced(server, tmp_path):
    """One of the four there (a wrong one): nothing downloaded, validate names it, it stays."""
    s, md5, sizes = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    mine = data_dir / idx.raw_name(IMAGES)
    mine.write_bytes(b"my own digits")
    before = os.stat(mine)
    download(s, data_dir, md5, sizes)
    assert s.requests == 0
    with pytest.raises(DataError, match=re.escape(f"{mine}: 13 bytes, shorter than")):
        MNIST.validate(str(data_dir), "train")
    after = os.stat(mine)
    assert mine.read_bytes() == b"my own digits" and after.st_mtime_ns == before.st_mtime_ns
    assert os.listdir(data_dir) == [mine.name]


def test_offline_is_one_line_saying_what_to_put_where(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as error:
        FASHION.maybe_download(str(data_dir), url=url)
    message = str(error.value)
    assert message.startswith("cannot download Fashion-MNIST (") and "\n" not in message
    assert all(name in message for name in idx.ALL_FILES)
    assert message.endswith(f"into {data_dir}")
    assert os.listdir(data_dir) == []


# ----------------------------------------------------------------------------------------------
# The programs
# ----------------------------------------------------------------------------------------------

def test_train_and_val_trains_on_mnist(mnist, tmp_path):
    data_dir, _ = mnist
    logs = tmp_path / "logs"
    result = helpers.call("train_and_val.py", "--dataset", "mnist", "--data-dir", data_dir,
                          "--arch", "vgg11", "--pretrained", "none", "--fc-size", 0,
                          "--max-steps", 2, "--batch-size", 8, "--val-size", 8,
                          "--log-dir", logs, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"on {TRAIN_COUNT - 8} images (train)" in result.stdout
    assert helpers.steps(logs / "train")[-1] == 2
    assert sorted(os.listdir(data_dir)) == sorted(idx.ALL_FILES)  # nothing downloaded


def test_show_draws_a_grid_of_mnist(mnist, tmp_path):
    data_dir, _ = mnist
    out = tmp_path / "grid.png"
    result = helpers.call("input_data.py", "--show", "--dataset", "mnist", "--data-dir",
                          data_dir, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

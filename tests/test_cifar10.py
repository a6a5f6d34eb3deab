"""input_data.py on small CIFAR-10-format files written here: decoding of known records, the
splits, augmentation, preprocessing, graph mode, the errors on bad files, the download against a
local HTTP server, and the --show command line."""

import hashlib
import io
import os
import re
import socket
import tarfile
import time

import numpy as np
import pytest
import tensorflow as tf

import helpers
import input_data
from input_data import DataError

tf1 = tf.compat.v1
PER_FILE = 20  # records in each data_batch_N.bin
TEST_COUNT = 23  # records in test_batch.bin: not a multiple of the batch sizes used
TRAIN_COUNT = 5 * PER_FILE
VAL_SIZE = 15


def write_split_files(folder, seed=0):
    """Random images (each one distinct) in the five training files and the test file; returns
    {file name: (images uint8 HWC RGB, labels)}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    contents = {}
    counts = dict.fromkeys(input_data.TRAIN_FILES, PER_FILE) | {"test_batch.bin": TEST_COUNT}
    for name, count in counts.items():
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(helpers.records(images, labels))
        contents[name] = (images, labels)
    return contents


@pytest.fixture
def cifar(tmp_path):
    """(data_dir, contents): a small data set in data_dir/cifar-10-batches-bin."""
    data_dir = tmp_path / "data"
    return str(data_dir), write_split_files(str(data_dir / "cifar-10-batches-bin"))


def collect(dataset):
    """All (images, labels) of an eager dataset, concatenated, and the batch sizes."""
    images, labels, sizes = [], [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
        sizes.append(len(y))
    return np.concatenate(images), np.concatenate(labels), sizes


def train_records(contents):
    images = np.concatenate([contents[n][0] for n in input_data.TRAIN_FILES])
    labels = np.concatenate([contents[n][1] for n in input_data.TRAIN_FILES])
    return images, labels


def as_uint8(images):
    assert images.dtype == np.float32
    assert np.array_equal(images, np.round(images)) and images.min() >= 0 and images.max() <= 255
    return images.astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Decoding, splits, pipelines
# ----------------------------------------------------------------------------------------------

def test_known_records_decode_to_hwc_rgb(tmp_path):
    row, col = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    expected, labels = [], [3, 0, 9]
    for k in range(3):
        red = (row * 32 + col + k) % 256  # depends on the position
        green = np.full((32, 32), 200 - k)  # constant
        blue = (row * 7 + 3 * k) % 256  # depends on the row only
        expected.append(np.stack([red, green, blue], axis=-1).astype(np.uint8))
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(helpers.records(expected, labels))

    images, got_labels, _ = collect(input_data.read_cifar10(str(tmp_path), "test", 2,
                                                            preprocess="none"))
    assert images.shape == (3, 32, 32, 3)
    assert got_labels.dtype == np.int32 and got_labels.tolist() == labels
    np.testing.assert_array_equal(as_uint8(images), np.stack(expected))
    assert images[1, 2, 5, 0] == (2 * 32 + 5 + 1) and images[1, 2, 5, 1] == 199
    assert images[2, 4, 0, 2] == 4 * 7 + 6


def test_splits_are_disjoint_and_cover_the_training_records(cifar):
    data_dir, contents = cifar
    all_images, all_labels = train_records(contents)
    train, train_labels, _ = collect(input_data.read_cifar10(
        data_dir, "train", 16, preprocess="none", val_size=VAL_SIZE))
    val, val_labels, _ = collect(input_data.read_cifar10(
        data_dir, "val", 16, preprocess="none", val_size=VAL_SIZE))
    trainval, _, _ = collect(input_data.read_cifar10(data_dir, "trainval", 16, preprocess="none"))

    assert len(train) == TRAIN_COUNT - VAL_SIZE and len(val) == VAL_SIZE
    assert len(trainval) == TRAIN_COUNT
    train_keys, val_keys, trainval_keys = (
        {image.tobytes() for image in as_uint8(images)} for images in (train, val, trainval))
    assert not train_keys & val_keys
    assert train_keys | val_keys == trainval_keys == {image.tobytes() for image in all_images}
    # val is the last VAL_SIZE training records, in order, with their labels
    np.testing.assert_array_equal(as_uint8(val), all_images[-VAL_SIZE:])
    np.testing.assert_array_equal(val_labels, all_labels[-VAL_SIZE:])
    np.testing.assert_array_equal(train_labels, all_labels[:-VAL_SIZE])
    assert input_data.num_examples(data_dir, "train", VAL_SIZE) == TRAIN_COUNT - VAL_SIZE
    assert input_data.num_examples(data_dir, "val", VAL_SIZE) == VAL_SIZE
    assert input_data.num_examples(data_dir, "trainval") == TRAIN_COUNT
    assert input_data.num_examples(data_dir, "test") == TEST_COUNT


def test_val_is_the_same_every_run_and_may_span_files(cifar):
    data_dir, contents = cifar
    size = PER_FILE + 7  # reaches into data_batch_4.bin
    first, _, _ = collect(input_data.read_cifar10(data_dir, "val", 4, preprocess="none",
                                                  val_size=size))
    second, _, _ = collect(input_data.read_cifar10(data_dir, "val", 10, preprocess="none",
                                                   val_size=size))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(as_uint8(first), train_records(contents)[0][-size:])


def test_test_split_keeps_the_partial_batch(cifar):
    data_dir, contents = cifar
    images, labels, sizes = collect(input_data.read_cifar10(data_dir, "test", 8,
                                                            preprocess="none"))
    assert sizes == [8, 8, 7]
    np.testing.assert_array_equal(as_uint8(images), contents["test_batch.bin"][0])
    np.testing.assert_array_equal(labels, contents["test_batch.bin"][1])


@pytest.mark.parametrize("val_size", [0, -1, TRAIN_COUNT, TRAIN_COUNT + 1])
def test_val_size_out_of_range(cifar, val_size):
    data_dir, _ = cifar
    for split in ("train", "val"):
        with pytest.raises(DataError, match=f"between 1 and {TRAIN_COUNT - 1}"):
            input_data.read_cifar10(data_dir, split, 8, val_size=val_size)
    input_data.read_cifar10(data_dir, "trainval", 8, val_size=val_size)  # not used there


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="validation"), "unknown split"),
    (dict(preprocess="imagenet"), "unknown preprocess"),
    (dict(batch_size=0), "batch_size"),
    (dict(image_size=0), "image_size"),
])
def test_bad_arguments(cifar, kwargs, message):
    data_dir, _ = cifar
    args = dict(split="test", batch_size=8) | kwargs
    with pytest.raises(ValueError, match=message):
        input_data.read_cifar10(data_dir, **args)


def crops_matching(augmented, original):
    """The (top, left, mirrored) windows of ORIGINAL padded by 4 zeros equal to AUGMENTED."""
    padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
    return {(y, x, mirrored) for y in range(9) for x in range(9) for mirrored in (False, True)
            if np.array_equal(augmented, padded[y:y + 32, x:x + 32][:, ::-1 if mirrored else 1])}


def test_augmentation_crops_and_flips_each_image(cifar):
    data_dir, _ = cifar
    originals, labels, _ = collect(input_data.read_cifar10(data_dir, "trainval", 32,
                                                           preprocess="none"))
    data = input_data.read_cifar10(data_dir, "trainval", 32, augment=True, preprocess="none",
                                   seed=3)
    augmented, aug_labels, _ = collect(data)
    assert augmented.shape == originals.shape and augmented.dtype == np.float32
    np.testing.assert_array_equal(aug_labels, labels)
    matches = [crops_matching(a, o) for a, o in zip(as_uint8(augmented), as_uint8(originals))]
    assert all(len(m) == 1 for m in matches)  # random images: exactly one window fits
    windows = [m.pop() for m in matches]
    assert 30 < sum(mirrored for _, _, mirrored in windows) < 70  # about half of 100
    assert len({(y, x) for y, x, _ in windows}) > 30  # offsets drawn per image
    unchanged = sum(np.array_equal(a, o) for a, o in zip(augmented, originals))
    assert unchanged <= 3  # the identity comes with probability 1/162 per image

    again, _, _ = collect(input_data.read_cifar10(data_dir, "trainval", 32, augment=True,
                                                  preprocess="none", seed=3))
    other, _, _ = collect(input_data.read_cifar10(data_dir, "trainval", 32, augment=True,
                                                  preprocess="none", seed=4))
    np.testing.assert_array_equal(augmented, again)  # the seed fixes the augmentation
    assert not np.array_equal(augmented, other)


def test_shuffled_training_pipeline(cifar):
    data_dir, contents = cifar
    def first_epoch(seed):
        data = input_data.read_cifar10(data_dir, "train", 16, shuffle=True, preprocess="none",
                                       repeat=True, seed=seed, val_size=VAL_SIZE)
        return np.concatenate([x.numpy() for x, _ in data.take(5)])  # 80 of 85: drop remainder

    images = first_epoch(seed=1)
    assert len(images) == 80
    keys = {image.tobytes() for image in as_uint8(images)}
    train = {image.tobytes() for image in train_records(contents)[0][:-VAL_SIZE]}
    assert len(keys) == 80 and keys <= train
    np.testing.assert_array_equal(images, first_epoch(seed=1))
    assert not np.array_equal(images, first_epoch(seed=2))


def test_evaluation_pipeline_is_deterministic(cifar):
    data_dir, _ = cifar
    data = input_data.read_cifar10(data_dir, "test", 5)
    first, second = collect(data), collect(data)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_vgg_and_standardize_preprocessing(cifar):
    data_dir, _ = cifar
    rgb, _, _ = collect(input_data.read_cifar10(data_dir, "test", 8, preprocess="none"))
    vgg, _, _ = collect(input_data.read_cifar10(data_dir, "test", 8))  # vgg is the default
    mean_bgr = np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(vgg, rgb[..., ::-1] - mean_bgr, atol=1e-4)
    r, g, b = rgb[0, 0, 0]
    np.testing.assert_allclose(vgg[0, 0, 0], [b - 103.939, g - 116.779, r - 123.68], atol=1e-4)

    std, _, _ = collect(input_data.read_cifar10(data_dir, "test", 8, preprocess="standardize"))
    expected = (rgb - np.array(input_data.CIFAR_MEAN_RGB)) / np.array(input_data.CIFAR_STD_RGB)
    np.testing.assert_allclose(std, expected, atol=1e-4)


def test_image_size_resizes_bilinearly(cifar):
    data_dir, _ = cifar
    rgb, _, _ = collect(input_data.read_cifar10(data_dir, "test", 8, preprocess="none"))
    big, _, _ = collect(input_data.read_cifar10(data_dir, "test", 8, preprocess="none",
                                                image_size=64))
    assert big.shape == (TEST_COUNT, 64, 64, 3) and big.dtype == np.float32
    np.testing.assert_allclose(big, tf.image.resize(rgb, [64, 64], "bilinear").numpy(),
                               atol=1e-3)
    x, _ = next(iter(input_data.read_cifar10(data_dir, "train", 8, shuffle=True, augment=True,
                                             image_size=64, val_size=VAL_SIZE)))
    assert x.shape == (8, 64, 64, 3)


def test_graph_mode_iterators(cifar):
    data_dir, _ = cifar
    eager, eager_labels, _ = collect(input_data.read_cifar10(data_dir, "val", 4,
                                                             val_size=VAL_SIZE))
    with tf.Graph().as_default():
        val = input_data.read_cifar10(data_dir, "val", 4, val_size=VAL_SIZE)
        iterator = tf1.data.make_initializable_iterator(val)
        val_batch = iterator.get_next()
        train = input_data.read_cifar10(data_dir, "train", 16, shuffle=True, augment=True,
                                        repeat=True, seed=5, val_size=VAL_SIZE)
        train_images, train_labels = tf1.data.make_one_shot_iterator(train).get_next()
        assert train_images.shape.as_list() == [16, 32, 32, 3]
        assert train_images.dtype == tf.float32 and train_labels.dtype == tf.int32
        with tf1.Session() as session:
            for _ in range(2):  # two evaluation passes, each of every val record
                session.run(iterator.initializer)
                images, labels = [], []
                while True:
                    try:
                        x, y = session.run(val_batch)
                    except tf.errors.OutOfRangeError:
                        break
                    images.append(x)
                    labels.append(y)
                np.testing.assert_array_equal(np.concatenate(images), eager)
                np.testing.assert_array_equal(np.concatenate(labels), eager_labels)
            for _ in range(12):  # more than two epochs of 5 batches
                assert session.run(train_images).shape == (16, 32, 32, 3)


def test_every_program_reads_without_tf_datas_autotuning_model(cifar):
    """(Freeing an iterator with the model on waits for its thread, each time a split is read
    again and when a session closes; model.inputs turns it off.)"""
    from tensorflow.core.framework import dataset_options_pb2

    import model

    data_dir, _ = cifar
    config = {"arch": "vgg11", "image_size": 32}
    with tf.Graph().as_default() as graph:
        for split, initializable in (("val", True), ("train", False)):
            model.split_input(config, "cifar10", data_dir, split, 4, val_size=VAL_SIZE,
                              initializable=initializable, shuffle=not initializable)
        found = [dataset_options_pb2.Options.FromString(op.get_attr("serialized_options"))
                 for op in graph.get_operations() if op.type == "OptionsDataset"]
    assert len(found) == 2 and all(not o.autotune_options.enabled for o in found)
    assert all(o.autotune_options.HasField("enabled") for o in found)  # (set, not a default)


def test_class_names(cifar):
    data_dir, _ = cifar
    assert input_data.class_names(data_dir) == list(input_data.CLASS_NAMES)
    meta = os.path.join(data_dir, "cifar-10-batches-bin", "batches.meta.txt")
    with open(meta, "w") as f:
        f.write("\n".join(f"name{i}" for i in range(10)) + "\n\n")
    assert input_data.class_names(data_dir)[9] == "name9"


def test_the_batches_folder_itself_is_accepted(cifar):
    data_dir, _ = cifar
    folder = os.path.join(data_dir, "cifar-10-batches-bin")
    assert input_data.num_examples(folder, "test") == TEST_COUNT
    assert input_data.maybe_download(folder, url="http://127.0.0.1:1/none") == folder


# ----------------------------------------------------------------------------------------------
# Bad files
# ----------------------------------------------------------------------------------------------

def test_missing_file(cifar):
    data_dir, _ = cifar
    path = os.path.join(data_dir, "cifar-10-batches-bin", "data_batch_3.bin")
    os.remove(path)
    with pytest.raises(DataError, match=re.escape(f"{path} is missing")):
        input_data.read_cifar10(data_dir, "train", 8)
    input_data.read_cifar10(data_dir, "test", 8)  # the test split does not need it


def test_empty_and_absent_directories(tmp_path):
    (tmp_path / "cifar-10-batches-bin").mkdir()
    with pytest.raises(DataError, match="data_batch_1.bin is missing"):
        input_data.read_cifar10(str(tmp_path), "train", 8)
    with pytest.raises(DataError, match="test_batch.bin is missing"):
        input_data.read_cifar10(str(tmp_path), "test", 8)
    absent = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=re.escape(f"no CIFAR-10 in {absent}") + ".*--download"):
        input_data.read_cifar10(absent, "test", 8)


def test_a_folder_in_place_of_a_batch_file(cifar):
    data_dir, _ = cifar
    path = os.path.join(data_dir, "cifar-10-batches-bin", "data_batch_3.bin")
    os.remove(path)
    os.mkdir(path)
    with pytest.raises(DataError) as error:
        input_data.read_cifar10(data_dir, "train", 8)
    message = str(error.value)
    assert message.startswith(f"{path} is a folder, not a CIFAR-10 batch file")
    assert "is missing" not in message and "\n" not in message


@pytest.mark.parametrize("kind", ["loop", "broken"])
def test_a_bad_link_in_place_of_a_batch_file(cifar, kind):
    data_dir, _ = cifar
    folder = os.path.join(data_dir, "cifar-10-batches-bin")
    path = os.path.join(folder, "test_batch.bin")
    os.remove(path)
    if kind == "loop":
        other = os.path.join(folder, "other.bin")
        os.symlink(path, other)
        os.symlink(other, path)
    else:
        os.symlink(os.path.join(folder, "nowhere.bin"), path)
    with pytest.raises(DataError) as error:
        input_data.read_cifar10(data_dir, "test", 8)
    message = str(error.value)
    assert message.startswith(f"{path} cannot be read (a broken or looping link?)")
    assert "is missing" not in message and "\n" not in message
    input_data.read_cifar10(data_dir, "trainval", 8)  # the training split does not need it


@pytest.mark.parametrize("size", [0, 3072, 3073 * 2 + 1])
def test_size_not_a_whole_number_of_records(cifar, size):
    data_dir, _ = cifar
    path = os.path.join(data_dir, "cifar-10-batches-bin", "data_batch_2.bin")
    with open(path, "r+b") as f:
        f.truncate(size)
    with pytest.raises(DataError, match=re.escape(
            f"{path}: {size} bytes is not a whole non-zero number of 3073-byte records")):
        input_data.read_cifar10(data_dir, "trainval", 8)


def test_label_out_of_range_names_file_and_record(cifar):
    data_dir, _ = cifar
    path = os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin")
    with open(path, "r+b") as f:
        f.seek(7 * 3073)
        f.write(bytes([10]))
    with pytest.raises(DataError, match=re.escape(f"{path}: record 7 has label 10")):
        input_data.read_cifar10(data_dir, "test", 8)


def test_validation_is_fast(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    records = np.zeros((10000, 3073), np.uint8)  # a full-size 30 MB file
    records[:, 0] = np.arange(10000) % 10
    records.tofile(folder / "test_batch.bin")
    start = time.perf_counter()
    input_data.validate(str(tmp_path), "test")
    assert time.perf_counter() - start < 0.5


# ----------------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------------

Server = helpers.Server


@pytest.fixture
def server(tmp_path):
    """A server with a small archive in the official layout; (server, archive url, its md5)."""
    served = tmp_path / "served"
    write_split_files(str(served / "src" / "cifar-10-batches-bin"), seed=1)
    (served / "src" / "cifar-10-batches-bin" / "batches.meta.txt").write_text(
        "\n".join(input_data.CLASS_NAMES) + "\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(served / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    (served / "cifar.tar.gz").write_bytes(buffer.getvalue())
    md5 = hashlib.md5(buffer.getvalue()).hexdigest()
    s = Server(str(served))
    yield s, s.url + "cifar.tar.gz", md5
    s.httpd.shutdown()
    s.httpd.server_close()


def test_download_end_to_end(server, tmp_path):
    s, url, md5 = server
    data_dir = tmp_path / "data"
    folder = input_data.maybe_download(str(data_dir), url=url, md5=md5)
    assert folder == str(data_dir / "cifar-10-batches-bin")
    assert s.requests == 1
    assert sorted(os.listdir(data_dir)) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]
    assert sorted(os.listdir(folder)) == sorted(input_data.ALL_FILES + ("batches.meta.txt",))
    assert input_data.num_examples(str(data_dir), "test") == TEST_COUNT
    assert input_data.maybe_download(str(data_dir), url=url, md5=md5) == folder
    assert s.requests == 1  # already there: not fetched again


def test_wrong_checksum_is_caught_and_nothing_extracted(server, tmp_path):
    _, url, _ = server
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="does not have MD5 0{32}"):
        input_data.maybe_download(str(data_dir), url=url, md5="0" * 32)
    assert os.listdir(data_dir) == []  # the bad download deleted, nothing extracted


@pytest.mark.parametrize("complete", [False, True])
def test_corrupt_leftover_part_file_is_fetched_again(server, tmp_path, complete):
    """Our .part of an interrupted run: fetched again if partial, used as it is if complete,
    and renamed to the archive once its MD5 matched."""
    s, url, md5 = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    served = (tmp_path / "served" / "cifar.tar.gz").read_bytes()
    (data_dir / "cifar-10-binary.tar.gz.part").write_bytes(
        served if complete else b"half an archive")
    folder = input_data.maybe_download(str(data_dir), url=url, md5=md5)
    assert s.requests == (0 if complete else 1)
    assert input_data.num_examples(folder, "trainval") == TRAIN_COUNT
    with open(data_dir / "cifar-10-binary.tar.gz", "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == md5
    assert sorted(os.listdir(data_dir)) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]


def closed_port_url():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/cifar.tar.gz"


def test_archive_put_by_hand_is_used_offline(server, tmp_path):
    _, url, md5 = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with open(tmp_path / "served" / "cifar.tar.gz", "rb") as f:
        (data_dir / "cifar-10-binary.tar.gz").write_bytes(f.read())
    folder = input_data.maybe_download(str(data_dir), url=closed_port_url(), md5=md5)
    assert input_data.num_examples(folder, "test") == TEST_COUNT


def test_archive_put_by_hand_is_used_without_a_request(server, tmp_path):
    s, url, md5 = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    archive = data_dir / "cifar-10-binary.tar.gz"
    archive.write_bytes((tmp_path / "served" / "cifar.tar.gz").read_bytes())
    before = os.stat(archive)
    folder = input_data.maybe_download(str(data_dir), url=url, md5=md5)
    assert s.requests == 0
    assert input_data.num_examples(folder, "test") == TEST_COUNT
    after = os.stat(archive)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(os.listdir(data_dir)) == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]


@pytest.mark.parametrize("online", [True, False])
def test_archive_put_by_hand_with_wrong_md5_is_reported_and_left_unchanged(server, tmp_path,
                                                                           online):
    """Not ours: neither fetched again over it nor deleted, with the server up or offline."""
    s, url, md5 = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    archive = data_dir / "cifar-10-binary.tar.gz"
    content = b"an archive from some mirror"
    archive.write_bytes(content)
    before = os.stat(archive)
    with pytest.raises(DataError) as error:
        input_data.maybe_download(str(data_dir), url=url if online else closed_port_url(),
                                  md5=md5)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{archive} has MD5 {hashlib.md5(content).hexdigest()}, not {md5}")
    assert "left as it is" in message and "remove it" in message
    assert s.requests == 0
    assert archive.read_bytes() == content
    after = os.stat(archive)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(data_dir) == ["cifar-10-binary.tar.gz"]  # no .part, nothing extracted


def test_offline_error_says_where_to_put_the_files(tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as error:
        input_data.maybe_download(str(data_dir), url=closed_port_url())
    message = str(error.value)
    assert "cannot download CIFAR-10" in message and "\n" not in message
    assert str(data_dir / "cifar-10-batches-bin") in message
    assert all(name in message for name in input_data.ALL_FILES)
    assert os.listdir(data_dir) == []


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def run_cli(*args):
    return helpers.call("input_data.py", *args)


def test_show_writes_a_png(cifar, tmp_path):
    data_dir, _ = cifar
    out = tmp_path / "grid.png"
    result = run_cli("--show", "--augment", "--data-dir", data_dir, "--out", str(out),
                     "--val-size", "10")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_without_data_exits_2_with_one_line(tmp_path):
    result = run_cli("--show", "--data-dir", str(tmp_path / "nowhere"),
                     "--out", str(tmp_path / "grid.png"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("input_data.py")]
    assert len(lines) == 1 and "no CIFAR-10 in" in lines[0]
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("argv", [[], ["--show", "--split", "validation"]])
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        input_data.main(argv)
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

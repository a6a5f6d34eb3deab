"""CIFAR-10 binary batches -> tf.data pipelines: download, validate, decode, split, augment.

A record of the binary version is 1 label byte (0-9) then 3072 pixel bytes: the 1024 red values,
then the green, then the blue, each plane 32x32 row-major. Images come out HWC, RGB.

Splits: ``train`` is the five data batches minus the last ``val_size`` records of
data_batch_5.bin, which form ``val`` (the same images every run; 5,000 by default). ``trainval``
is all 50,000 training records, ``test`` is test_batch.bin. Only evaluate.py reads ``test``.

    python input_data.py --download          # fetch and check the archive into data/
    python input_data.py --show --augment    # cifar10_samples.png: a grid with class names
"""

import os
import sys
import tarfile

import numpy as np
import tensorflow as tf

import tools

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
BATCHES_DIR = "cifar-10-batches-bin"

IMAGE_SIZE = 32
CHANNELS = 3
LABEL_BYTES = 1
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
TRAIN_EXAMPLES = 50000
TEST_EXAMPLES = 10000
VAL_EXAMPLES = 5000
SPLITS = ("train", "val", "trainval", "test")
PAD = 4  # pixels of zero padding before the random 32x32 crop

# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images, RGB, 0..255.
CIFAR_MEAN_RGB = (125.307, 122.950, 113.865)
CIFAR_STD_RGB = (62.993, 62.089, 66.705)
PREPROCESS = ("vgg", "standardize", "none")


class DataError(ValueError):
    """Missing or malformed data; the message names the file and what to do."""


def batches_dir(data_dir):
    """The folder with the .bin files: DATA_DIR/cifar-10-batches-bin, or DATA_DIR itself."""
    nested = os.path.join(data_dir, BATCHES_DIR)
    if os.path.isdir(nested) or not os.path.exists(os.path.join(data_dir, TEST_FILE)):
        return nested
    return data_dir


def _split_files(split):
    return [TEST_FILE] if split == "test" else list(TRAIN_FILES)


def _have_all(folder):
    return all(os.path.exists(os.path.join(folder, f)) for f in TRAIN_FILES + (TEST_FILE,))


def maybe_download(data_dir, url=URL, md5=MD5):
    """Make sure DATA_DIR holds CIFAR-10: when it does not, download the archive, check its MD5
    and extract it. A partial or corrupt archive fails the check and is fetched again."""
    folder = batches_dir(data_dir)
    if _have_all(folder):
        return folder
    if os.path.isdir(folder) and os.listdir(folder):
        return folder  # some files are there: validation says which are missing
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    print(f"CIFAR-10 is not in {data_dir}: downloading {url}")
    try:
        archive = tf.keras.utils.get_file(ARCHIVE, url, file_hash=md5, hash_algorithm="md5",
                                          cache_dir=data_dir, cache_subdir="")
    except ValueError as e:  # the download finished but failed the MD5 check
        partial = os.path.join(data_dir, ARCHIVE)
        if os.path.exists(partial):
            os.remove(partial)
        raise DataError(f"{url}: the download is corrupt ({e}); run again to fetch it anew") \
            from None
    except Exception as e:  # Keras reports network failures as a bare Exception.
        raise DataError(f"cannot download CIFAR-10 ({e}); put {', '.join(TRAIN_FILES)} and "
                        f"{TEST_FILE} from {ARCHIVE} into {folder}") from None
    with tarfile.open(archive) as tar:
        tar.extractall(data_dir, filter="data")
    if not _have_all(os.path.join(data_dir, BATCHES_DIR)):
        raise DataError(f"{archive} did not hold {BATCHES_DIR}/ with the expected files")
    return os.path.join(data_dir, BATCHES_DIR)


def validate(data_dir, split):
    """Check the files a split needs, before any TensorFlow runs: present, a whole non-zero
    number of records, every label in 0..9. Returns their paths; raises DataError."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = batches_dir(data_dir)
    if not os.path.isdir(folder):
        raise DataError(f"no CIFAR-10 in {data_dir}: {folder} does not exist (train_and_val.py "
                        "downloads it; offline, put the binary batches there)")
    paths = []
    for name in _split_files(split):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DataError(f"{path} is missing; put the CIFAR-10 binary batches in {folder}")
        size = os.path.getsize(path)
        if size == 0 or size % RECORD_BYTES:
            raise DataError(f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte "
                            "records; the file is truncated or not CIFAR-10: fetch it again")
        labels = np.fromfile(path, np.uint8)[::RECORD_BYTES]
        bad = np.flatnonzero(labels >= NUM_CLASSES)
        if bad.size:
            raise DataError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, not 0-9 "
                            f"({bad.size} such records); the file is corrupt: fetch it again")
        paths.append(path)
    return paths


def _record_counts(paths):
    return sum(os.path.getsize(p) // RECORD_BYTES for p in paths)


def num_examples(data_dir, split, val_size=VAL_EXAMPLES):
    """How many images a split has (after validating its files)."""
    total = _record_counts(validate(data_dir, split))
    if split in ("train", "val"):
        _check_val_size(val_size, total)
        return total - val_size if split == "train" else val_size
    return total


def _check_val_size(val_size, total):
    if not 0 < val_size < total:
        raise DataError(f"--val-size {val_size} must be between 1 and {total - 1} (the training "
                        f"files hold {total} records)")


def class_names(data_dir):
    """The names in batches.meta.txt when it is there and complete, else CLASS_NAMES."""
    path = os.path.join(batches_dir(data_dir), "batches.meta.txt")
    if os.path.isfile(path):
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == NUM_CLASSES:
            return names
    return list(CLASS_NAMES)


def decode(records):
    """A batch of raw records (strings) -> (images float32 [B, 32, 32, 3] RGB, labels int32)."""
    raw = tf.io.decode_raw(records, tf.uint8)
    labels = tf.cast(raw[:, 0], tf.int32)
    planes = tf.reshape(raw[:, LABEL_BYTES:], [-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE])
    return tf.cast(tf.transpose(planes, [0, 2, 3, 1]), tf.float32), labels


def augment_batch(images, seed=None):
    """A random 32x32 crop of each image padded by 4 zero pixels, mirrored with probability
    1/2, each image drawn on its own. Done with two gathers over the batch."""
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    offsets = tf.random.uniform([batch, 2], 0, 2 * PAD + 1, tf.int32, seed=seed)
    flip = tf.random.uniform([batch, 1], 0, 2, tf.int32, seed=None if seed is None else seed + 1)
    steps = tf.range(IMAGE_SIZE)[None, :]
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + tf.where(flip > 0, IMAGE_SIZE - 1 - steps, steps)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def preprocess_batch(images, mode):
    if mode == "vgg":
        return tools.vgg_preprocess(images)
    if mode == "standardize":
        return (images - tf.constant(CIFAR_MEAN_RGB)) / tf.constant(CIFAR_STD_RGB)
    return images


def read_cifar10(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
                 image_size=IMAGE_SIZE, repeat=False, seed=None, val_size=VAL_EXAMPLES):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split.

    Deterministic pipelines (``shuffle=False``) keep the last partial batch, so every record
    comes exactly once; shuffled ones drop it. ``augment`` (training only) crops and mirrors at
    random; ``image_size`` other than 32 resizes bilinearly; ``preprocess`` is ``vgg`` (BGR minus
    the ImageNet mean), ``standardize`` (CIFAR mean and std per channel) or ``none`` (RGB
    0..255). The files are validated first (DataError); nothing is downloaded here.
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"unknown preprocess {preprocess!r}; choose one of "
                         f"{', '.join(PREPROCESS)}")
    if batch_size < 1 or image_size < 1:
        raise ValueError("batch_size and image_size must be at least 1")
    paths = validate(data_dir, split)
    data = tf.data.FixedLengthRecordDataset(paths, RECORD_BYTES)
    if split in ("train", "val"):
        total = _record_counts(paths)
        _check_val_size(val_size, total)
        data = data.take(total - val_size) if split == "train" else data.skip(total - val_size)
    data = data.cache()
    if shuffle:
        data = data.shuffle(_record_counts(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size, drop_remainder=shuffle)

    def transform(records):
        images, labels = decode(records)
        if augment:
            images = augment_batch(images, seed)
        if image_size != IMAGE_SIZE:
            images = tf.image.resize(images, [image_size, image_size])
        return preprocess_batch(images, preprocess), labels

    data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def save_grid(data_dir, split, path, augment=False, count=64, seed=0):
    """A PNG grid of the first ``count`` images of a split, each titled with its class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_cifar10(data_dir, split, count, augment=augment, preprocess="none", seed=seed)
    images, labels = next(iter(data))
    names = class_names(data_dir)
    side = int(np.ceil(np.sqrt(len(labels))))
    fig, axes = plt.subplots(side, side, figsize=(1.5 * side, 1.6 * side))
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images.numpy(), labels.numpy()):
        ax.imshow(image.astype(np.uint8))
        ax.set_title(names[label], fontsize=8)
    fig.suptitle(f"CIFAR-10 {split}{' (augmented)' if augment else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    p = tools.ArgumentParser(description="Download CIFAR-10, or draw a grid of its images.")
    p.add_argument("--data-dir", default="data", help="folder holding cifar-10-batches-bin/")
    p.add_argument("--download", action="store_true", help="download and check CIFAR-10")
    p.add_argument("--show", action="store_true", help="write a PNG grid of images")
    p.add_argument("--split", choices=SPLITS, default="train", help="split to show")
    p.add_argument("--augment", action="store_true", help="show augmented images")
    p.add_argument("--out", default="cifar10_samples.png", help="where --show writes the PNG")
    args = p.parse_args(argv)
    if not (args.download or args.show):
        p.error("say --download or --show")
    try:
        if args.download:
            print(f"CIFAR-10 is in {maybe_download(args.data_dir)}")
        if args.show:
            save_grid(args.data_dir, args.split, args.out, args.augment)
            print(f"wrote {args.out}")
    except DataError as e:
        print(f"input_data.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

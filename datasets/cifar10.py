"""CIFAR-10's binary batches as a data source (``input_data.SOURCES["cifar10"]``): download,
validate, decode, split.

A record of the binary version is 1 label byte (0-9) then 3072 pixel bytes: the 1024 red values,
then the green, then the blue, each plane 32x32 row-major. Images come out HWC, RGB.

Splits: ``val`` is the last ``val_size`` records of the training files taken in order
data_batch_1..5 (with the default 5,000: the second half of data_batch_5.bin), the same images
every run; ``train`` is all the other training records, so the two never overlap. ``trainval`` is
all 50,000 training records, ``test`` is test_batch.bin. Only evaluate.py reads ``test``.

``read`` (``input_data.read_cifar10``) never downloads: it validates the files (``DataError``
names the file and what to do) and builds the pipeline. The programs call ``prepare``
(``maybe_download``) first. It takes none of the options (``OPTIONS`` is empty): a
``crop_roi`` or ``skip_bad_images`` set is a UsageError.

    python input_data.py --download          # fetch, check and extract the archive into data/
    python input_data.py --show --augment    # cifar10_samples.png: a grid with class names
"""

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import pipeline

NAME = "cifar10"
OPTIONS = ()
AUGMENT = ("crop", "flip")  # what augment=True means: a mirrored CIFAR-10 image keeps its class
BN_REFRESH = 0  # --bn-refresh when not given: not measured here, so the moving averages
SCRATCH_LEARNING_RATE = 0.01  # --learning-rate from scratch when not given: beat 0.05 (recipes.md)

DEFAULT_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
DEFAULT_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
PARTIAL = ARCHIVE + ".part"  # our download, renamed to ARCHIVE once its MD5 matches
BATCHES_DIR = "cifar-10-batches-bin"
META_FILE = "batches.meta.txt"

IMAGE_SIZE = 32
CHANNELS = base.CHANNELS
LABEL_BYTES = 1
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
ALL_FILES = TRAIN_FILES + (TEST_FILE,)
TRAIN_EXAMPLES = 50000  # all five data batches (the trainval split)
TEST_EXAMPLES = 10000
VAL_EXAMPLES = 5000  # val_size when None is given, taken out of TRAIN_EXAMPLES

DataError = base.DataError


def batches_dir(data_dir):
    """The folder with the .bin files: DATA_DIR/cifar-10-batches-bin, or DATA_DIR itself when
    it holds them directly."""
    if any(os.path.exists(os.path.join(data_dir, name)) for name in ALL_FILES):
        return data_dir
    return os.path.join(data_dir, BATCHES_DIR)


def _split_files(split):
    return (TEST_FILE,) if split == "test" else TRAIN_FILES


def _have_all(folder):
    return all(os.path.isfile(os.path.join(folder, name)) for name in ALL_FILES)


def _md5(path):
    """The MD5 of a file as hex, read in 1 MB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    """``maybe_download``: the batches folder of DATA_DIR, downloaded there when missing."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return maybe_download(data_dir)


def maybe_download(data_dir, url=DEFAULT_URL, md5=DEFAULT_MD5):
    """Return the batches folder of DATA_DIR, first downloading CIFAR-10 into it if it holds
    none of the .bin files (when it holds some, ``validate`` reports the missing ones).

    An archive already at DATA_DIR/cifar-10-binary.tar.gz (put there by hand, or by an earlier
    run) is used without any request if its MD5 matches; if not, it is left as it is and
    DataError says so: the program never deletes or overwrites a file it did not create. A
    download goes to cifar-10-binary.tar.gz.part and gets the archive's name only after its MD5
    matched; a leftover .part of an interrupted run is fetched again, a fresh download that fails
    the check is deleted. The archive is extracted into a temporary folder and the files moved
    into place at the end, so an interrupted run never leaves truncated files. Raises DataError
    when offline."""
    folder = batches_dir(data_dir)
    if any(os.path.exists(os.path.join(folder, name)) for name in ALL_FILES):
        return folder
    data_dir = os.path.abspath(data_dir)
    folder = os.path.join(data_dir, BATCHES_DIR)
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {data_dir} ({e.strerror}); choose another --data-dir") \
            from None
    if not os.access(data_dir, os.W_OK):  # get_file would silently use /tmp/.keras instead
        raise DataError(f"cannot write to {data_dir}; choose another --data-dir")
    archive = os.path.join(data_dir, ARCHIVE)
    if os.path.lexists(archive):  # not ours to replace, whatever it holds
        try:
            found = _md5(archive)
        except OSError as e:
            raise DataError(f"cannot read {archive} ({e.strerror}); it was left as it is: "
                            f"replace it with the archive from {url}, or remove it so that it "
                            "is downloaded again") from None
        if found != md5:
            raise DataError(f"{archive} has MD5 {found}, not {md5}; it was left as it is: "
                            f"replace it with the archive from {url}, or remove it so that it "
                            "is downloaded again")
        print(f"CIFAR-10 is not in {data_dir}: using {archive}")
    else:
        _download(data_dir, url, md5)
    staging = tempfile.mkdtemp(prefix=".extracting-", dir=data_dir)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        extracted = os.path.join(staging, BATCHES_DIR)
        if not _have_all(extracted):
            raise DataError(f"{archive} does not hold {BATCHES_DIR}/ with {', '.join(ALL_FILES)}")
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(extracted):
            os.replace(os.path.join(extracted, name), os.path.join(folder, name))
    except tarfile.TarError as e:
        raise DataError(f"{archive} is not a readable tar.gz ({e})") from None
    finally:
        shutil.rmtree(staging)  # only our temporary folder
    print(f"CIFAR-10 extracted to {folder}")
    return folder


def _download(data_dir, url, md5):
    """Fetch URL to DATA_DIR/cifar-10-binary.tar.gz.part with get_file (which reuses a complete
    .part and fetches a partial one again) and, once its MD5 matched, rename it to the archive."""
    print(f"CIFAR-10 is not in {data_dir}: getting {url}")
    partial = os.path.join(data_dir, PARTIAL)
    try:
        tf.keras.utils.get_file(PARTIAL, url, file_hash=md5, hash_algorithm="md5",
                                cache_dir=data_dir, cache_subdir="")
    except ValueError:  # the download completed but its MD5 is wrong
        os.remove(partial)  # our own corrupt download
        raise DataError(f"the file downloaded from {url} does not have MD5 {md5}; it was "
                        "deleted: run again to fetch it anew") from None
    except Exception as e:  # get_file re-raises URLError and HTTPError as a bare Exception
        if not isinstance(e, OSError) and not isinstance(e.__context__, urllib.error.URLError):
            raise
        raise DataError(f"cannot download CIFAR-10 ({e}). Put {', '.join(ALL_FILES)} into "
                        f"{os.path.join(data_dir, BATCHES_DIR)}, or the archive {ARCHIVE} into "
                        f"{data_dir}") from None
    os.replace(partial, os.path.join(data_dir, ARCHIVE))


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    """Check the files a split needs before any TensorFlow runs: present, a whole non-zero
    number of records, every label in 0..9. Returns their paths; raises DataError."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    base.check_split(split)
    folder = batches_dir(data_dir)
    if not os.path.isdir(folder):
        raise DataError(f"no CIFAR-10 in {data_dir}: {folder} does not exist; run python "
                        f"input_data.py --download --data-dir {data_dir}, or put "
                        f"{', '.join(ALL_FILES)} there")
    paths = []
    for name in _split_files(split):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            if os.path.isdir(path):
                raise DataError(f"{path} is a folder, not a CIFAR-10 batch file; remove it and "
                                f"put {name} from {ARCHIVE} ({DEFAULT_URL}) there")
            if os.path.lexists(path) and not os.path.exists(path):
                raise DataError(f"{path} cannot be read (a broken or looping link?); replace it "
                                f"with {name} from {ARCHIVE} ({DEFAULT_URL})")
            if os.path.exists(path):
                raise DataError(f"{path} is not a regular file; replace it with {name} from "
                                f"{ARCHIVE} ({DEFAULT_URL})")
            raise DataError(f"{path} is missing; put {name} from {ARCHIVE} ({DEFAULT_URL}) there")
        size = os.path.getsize(path)
        if size == 0 or size % RECORD_BYTES:
            raise DataError(f"{path}: {size} bytes is not a whole non-zero number of "
                            f"{RECORD_BYTES}-byte records (truncated, or not CIFAR-10 binary); "
                            f"replace it with {name} from {ARCHIVE}")
        labels = np.fromfile(path, np.uint8)[::RECORD_BYTES]
        bad = np.flatnonzero(labels >= NUM_CLASSES)
        if bad.size:
            raise DataError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, not 0..9 "
                            f"({bad.size} such records); the file is corrupt: replace it with "
                            f"{name} from {ARCHIVE}")
        paths.append(path)
    return paths


def _record_count(paths):
    return sum(os.path.getsize(p) // RECORD_BYTES for p in paths)


def _val_size(val_size, total):
    """VAL_SIZE (VAL_EXAMPLES for None), checked against the TOTAL training records."""
    val_size = VAL_EXAMPLES if val_size is None else val_size
    if not 0 < val_size < total:
        raise DataError(f"val_size (--val-size) {val_size} must be between 1 and {total - 1}: "
                        f"the training files hold {total} records")
    return val_size


def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images a split has (after validating its files); ``val_size`` None is
    VAL_EXAMPLES."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    total = _record_count(validate(data_dir, split))
    if split in ("train", "val"):
        val_size = _val_size(val_size, total)
        return total - val_size if split == "train" else val_size
    return total


def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """``file.bin:index`` of every record of a split, in the order ``read`` reads them without
    shuffling."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    names = [f"{os.path.basename(path)}:{index}" for path in validate(data_dir, split)
             for index in range(os.path.getsize(path) // RECORD_BYTES)]
    if split in ("train", "val"):
        val_size = _val_size(val_size, len(names))
        return names[:-val_size] if split == "train" else names[-val_size:]
    return names


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many records of each class (in label order) a split has, from the label bytes."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    labels = np.concatenate([np.fromfile(path, np.uint8)[::RECORD_BYTES]
                             for path in validate(data_dir, split)])
    if split in ("train", "val"):
        val_size = _val_size(val_size, len(labels))
        labels = labels[:-val_size] if split == "train" else labels[-val_size:]
    return np.bincount(labels, minlength=NUM_CLASSES).tolist()


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    """The names in batches.meta.txt when it is there and lists ten, else CLASS_NAMES."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    path = os.path.join(batches_dir(data_dir), META_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        except UnicodeDecodeError:
            raise DataError(f"{path} is not text (the class names, one a line); restore it "
                            "from the archive, or delete it to use the standard names") from None
        if len(names) == NUM_CLASSES:
            return names
    return list(CLASS_NAMES)


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    """NUM_CLASSES, whatever DATA_DIR holds."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return NUM_CLASSES


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    """A tenth of the training records: 5,000 of the full 50,000, fewer for a smaller set."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return max(1, _record_count(validate(data_dir, "trainval")) // 10)


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    """None: a mirrored CIFAR-10 image keeps its class."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return None


def decode(records):
    """A batch of raw records (strings) -> (images uint8 [B, 32, 32, 3] RGB, labels int32 [B])."""
    raw = tf.io.decode_raw(records, tf.uint8, fixed_length=RECORD_BYTES)
    labels = tf.cast(raw[:, 0], tf.int32)
    planes = tf.reshape(raw[:, LABEL_BYTES:], [-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE])
    return tf.transpose(planes, [0, 2, 3, 1]), labels


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split.

    Deterministic pipelines (``shuffle=False``) keep the last partial batch, so every record
    comes exactly once a pass; shuffled ones drop it. ``augment`` (for training) pads, crops and
    mirrors at random; ``image_size`` other than 32 (None: 32) then resizes bilinearly (square
    images: ``resize`` squash and crop are the same); with ``scale_jitter=(MIN, MAX)`` augment
    rescales each image to a random side in [MIN, MAX] and crops ``image_size`` from it instead
    (``--scale-jitter 32,40``: a random-resized crop);
    ``preprocess`` is ``vgg`` (BGR minus the ImageNet mean), ``standardize`` (CIFAR mean and std
    per channel) or ``none`` (RGB 0..255). ``val_size`` None is VAL_EXAMPLES. ``seed`` fixes the
    shuffling and augmentation. Works eagerly and in a ``tf.compat.v1`` graph. The files are
    validated first (DataError); nothing is downloaded. ``shard=(count, index)`` keeps every
    count-th record from the index-th: one worker's share.
    """
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    image_size = IMAGE_SIZE if image_size is None else image_size
    base.check_read_arguments(preprocess, batch_size, image_size, resize, scale_jitter)
    modes = pipeline.augmentations(augment, AUGMENT)
    jitter = scale_jitter if modes else None
    paths = validate(data_dir, split)
    total = _record_count(paths)
    # The records stay as strings read from the files (not constants in the graph) and are
    # cached in memory after the first pass.
    data = tf.data.FixedLengthRecordDataset(paths, RECORD_BYTES)
    if split in ("train", "val"):
        val_size = _val_size(val_size, total)
        data = data.take(total - val_size) if split == "train" else data.skip(total - val_size)
        total = total - val_size if split == "train" else val_size
    if shard:
        data = data.shard(*shard)
        total = (total - shard[1] + shard[0] - 1) // shard[0]
    data = data.cache()
    if shuffle:
        data = data.shuffle(total, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = pipeline.batches(data, batch_size, shuffle, bool(modes), seed,
                            None if repeat else total)

    def transform(records, batch_seed=None):
        images, labels = decode(records)
        if jitter:  # (its own seed, apart from the flips')
            jitter_seed, batch_seed = tf.unstack(tf.random.split(batch_seed, 2))
            images = pipeline.jitter_batch(images, image_size, jitter, jitter_seed)
        if modes:
            images, labels = pipeline.augment_batch(
                images, batch_seed, labels, crop="crop" in modes and not jitter,
                flip="flip" in modes)
        images = tf.cast(images, tf.float32)
        if image_size != images.shape[1]:
            images = pipeline.resize(images, image_size, resize)
        return pipeline.preprocess_batch(images, preprocess), labels

    data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)

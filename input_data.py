"""The data sets, as tf.data pipelines: CIFAR-10's binary batches (download, validate, decode,
split, augment), registered with what the programs need of a data set in ``SOURCES``.

A record of the binary version is 1 label byte (0-9) then 3072 pixel bytes: the 1024 red values,
then the green, then the blue, each plane 32x32 row-major. Images come out HWC, RGB.

Splits: ``val`` is the last ``val_size`` records of the training files taken in order
data_batch_1..5 (with the default 5,000: the second half of data_batch_5.bin), the same images
every run; ``train`` is all the other training records, so the two never overlap. ``trainval`` is
all 50,000 training records, ``test`` is test_batch.bin. Only evaluate.py reads ``test``.

``read_cifar10`` never downloads: it validates the files (``DataError`` names the file and what
to do) and builds the pipeline. The programs call ``maybe_download`` first, through
``SOURCES[name].prepare``; a new data set is one reader function and one entry there.

    python input_data.py --download          # fetch, check and extract the archive into data/
    python input_data.py --show --augment    # cifar10_samples.png: a grid with class names

Folders of images (``SOURCES["folder"]``, ``read_folder``): DATA_DIR/<class>/<image>, or
DATA_DIR/train/<class>/<image> plus (optionally) DATA_DIR/test/<class>/<image>. The second layout
is used when DATA_DIR's only folders are train/ and test/ (or train/ alone); train/ next to a
val/ (valid/, validation/) folder is a DataError, as val comes out of train/. Class names are the
sorted class folder names (of train/ in the second layout), label i the i-th. Images must lie
directly in their class folder: subfolders of a class folder, files directly in DATA_DIR (or in
train/, test/), files and folders whose names start with '.', and files of other extensions are
ignored. Extensions (any case): .jpg .jpeg .png .bmp .gif, decoded by ``tf.io.decode_image`` in
the tf.data map, and .ppm .pgm .pnm (binary P6/P5/P4 and ASCII P3/P2/P1, 16-bit too), decoded by
Pillow through ``tf.numpy_function`` in the same map. The decoder follows the content, not the
name: any file Pillow reads that TensorFlow does not (PPM/PGM, palette or 1-bit BMP, ...) goes
through Pillow. Grey, palette and RGBA images become RGB (alpha dropped); GIFs give their first
frame. Every image is resized to ``image_size`` (default 32) with ``tf.image.resize`` (bilinear).

Folder splits, all decided by each file's path relative to DATA_DIR with forward slashes
(e.g. ``cat/001.jpg`` or ``train/cat/001.jpg``), so that a file keeps its split when others are
added or removed:
  * with a test/ folder, ``test`` is test/ and ``trainval`` is train/ (test/ may lack classes but
    may not have classes train/ lacks);
  * without, ``test`` is the files whose hash h(path) % 100 < 10 (TEST_PERCENT) and ``trainval``
    all the others, where h(s) is the first 8 bytes of SHA-1(s as UTF-8), big-endian;
  * ``val`` is a part of ``trainval`` chosen by the hash h("val:" + path): with ``val_size=None``
    (the default for folders) the files with h("val:" + path) % 100 < 10 (VAL_PERCENT, about
    10% of trainval), with an integer ``val_size`` N (1 <= N < trainval images) the N trainval
    files of smallest h("val:" + path) (ties by path): stable for files that stay, but adding
    files may move some of val into train;
  * ``train`` is ``trainval`` minus ``val``.
A split that comes out empty is a DataError (add images, or choose ``val_size``).

Before a folder split is read, ``validate_folder`` opens every image of it with Pillow
(``verify()``, then a full decode: a truncated JPEG passes ``verify()``), in threads, and
remembers the verdict for each file's size and modification time in this process. Unreadable or
corrupt images, class folders without images and test/ classes that train/ lacks are one
DataError line each; ``skip_bad_images=True`` leaves the bad images out (and prints how many).
The decoded, resized images of a split are cached in memory when they fit in CACHE_BYTES.

The German Traffic Sign Recognition Benchmark (``SOURCES["gtsrb"]``, ``read_gtsrb``) in one of
three layouts, recognised in this order:
  * official: DATA_DIR/Final_Training/Images/000NN/*.ppm, each class folder with GT-000NN.csv,
    and DATA_DIR/Final_Test/Images/*.ppm with GT-final_test.csv (also taken from DATA_DIR, where
    GTSRB_Final_Test_GT.zip extracts it); all of it may be under DATA_DIR/GTSRB/ instead, as the
    archives extract. The CSVs are semicolon-separated with the header
    Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId (any column order); only the files
    they list are read, the label is ClassId, ``test`` is Final_Test. The ROI corners are pixel
    positions and both belong to the sign (the archives' readme does not say; read here as
    inclusive): ``crop_roi=True`` cuts columns X1..X2 and rows Y1..Y2, (X2 - X1 + 1) wide, before
    the resize, after checking that each image has the CSV's Width and Height and that its ROI
    lies inside it;
  * pickles: DATA_DIR/train.p, valid.p, test.p, each a dict with 'features' (uint8 [N, H, W, 3]
    RGB) and 'labels' (integers 0..42); other keys are ignored. ``train`` is train.p, ``val``
    valid.p, ``trainval`` both (train.p alone without valid.p), ``test`` test.p; ``val_size``
    must be None for train and val. They are unpickled by ``weights.unpickle_arrays``, the
    weights reader's allow-list: NumPy arrays and plain containers only, anything else refused
    (DataError naming the file) before any of it runs. No ``crop_roi`` (the images are whole
    and already resized); ``skip_bad_images`` has nothing to do;
  * class folders: DATA_DIR/<class>/TTTTT_NNNNN.ppm, or DATA_DIR/train/<class>/... with
    DATA_DIR/test/<class>/... (read like the folder source: any of its image formats). Class
    names are the sorted folder names; ``test`` is test/, and without it there is no test split
    (DataError). No ``crop_roi``.
Class names of the first two layouts are the 43 official sign names in signnames.csv
(ClassId,SignName). A training image named TTTTT_NNNNN is picture NNNNN of track TTTTT: about 30
pictures of one physical sign in a row, near copies of each other, so ``val`` holds out whole
tracks (an image and its neighbour in a track on both sides would flatter the val accuracy).
The track key is "<class folder>/TTTTT" (a file named otherwise is a track of its own); with
``val_size=None`` val is the tracks with h("val:" + key) % 100 < 10 (VAL_PERCENT, about a tenth
of the images), so a track stays on its side whatever is added; with ``val_size`` N the tracks
in order of that hash until at least N images (adding tracks may then move some out of val).
``trainval`` is all training images. Image files are checked like the folder source's (one
DataError naming the bad ones, ``skip_bad_images`` leaves them out) and decoded the same way.
"""

import concurrent.futures
import csv
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error

import typing

import numpy as np
import tensorflow as tf

import cli
import tools
import weights

DEFAULT_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
DEFAULT_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
PARTIAL = ARCHIVE + ".part"  # our download, renamed to ARCHIVE once its MD5 matches
BATCHES_DIR = "cifar-10-batches-bin"
META_FILE = "batches.meta.txt"

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
ALL_FILES = TRAIN_FILES + (TEST_FILE,)
TRAIN_EXAMPLES = 50000  # all five data batches (the trainval split)
TEST_EXAMPLES = 10000
VAL_EXAMPLES = 5000  # default val_size, taken out of TRAIN_EXAMPLES
SPLITS = ("train", "val", "trainval", "test")
PREPROCESS = ("vgg", "standardize", "none")
PAD = 4  # pixels of zero padding before the random 32x32 crop

# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images, RGB, 0..255
# (the commonly published figures), used by preprocess="standardize".
CIFAR_MEAN_RGB = (125.307, 122.950, 113.865)
CIFAR_STD_RGB = (62.993, 62.089, 66.705)


class DataError(cli.UserError, ValueError):
    """Missing or malformed data; the message names the file and what to do."""


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


def validate(data_dir, split):
    """Check the files a split needs before any TensorFlow runs: present, a whole non-zero
    number of records, every label in 0..9. Returns their paths; raises DataError."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
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


def _check_val_size(val_size, total):
    if not 0 < val_size < total:
        raise DataError(f"val_size (--val-size) {val_size} must be between 1 and {total - 1}: "
                        f"the training files hold {total} records")


def num_examples(data_dir, split, val_size=VAL_EXAMPLES):
    """How many images a split has (after validating its files)."""
    total = _record_count(validate(data_dir, split))
    if split in ("train", "val"):
        _check_val_size(val_size, total)
        return total - val_size if split == "train" else val_size
    return total


def record_names(data_dir, split, val_size=VAL_EXAMPLES):
    """``file.bin:index`` of every record of a split, in the order ``read_cifar10`` reads them
    without shuffling."""
    names = [f"{os.path.basename(path)}:{index}" for path in validate(data_dir, split)
             for index in range(os.path.getsize(path) // RECORD_BYTES)]
    if split in ("train", "val"):
        _check_val_size(val_size, len(names))
        return names[:-val_size] if split == "train" else names[-val_size:]
    return names


def class_names(data_dir):
    """The names in batches.meta.txt when it is there and lists ten, else CLASS_NAMES."""
    path = os.path.join(batches_dir(data_dir), META_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == NUM_CLASSES:
            return names
    return list(CLASS_NAMES)


def decode(records):
    """A batch of raw records (strings) -> (images uint8 [B, 32, 32, 3] RGB, labels int32 [B])."""
    raw = tf.io.decode_raw(records, tf.uint8, fixed_length=RECORD_BYTES)
    labels = tf.cast(raw[:, 0], tf.int32)
    planes = tf.reshape(raw[:, LABEL_BYTES:], [-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE])
    return tf.transpose(planes, [0, 2, 3, 1]), labels


def augment_batch(images, seed):
    """A random crop of each image (square, side S: 32 for CIFAR-10) padded by 4 zero pixels,
    mirrored with probability 1/2, drawn per image from the stateless ``seed`` (shape [2]). Two
    gathers over the batch; S is the static side when known (it keeps the static shape)."""
    batch = tf.shape(images)[0]
    side = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    crop_seed, flip_seed = tf.unstack(tf.random.split(seed, 2))
    offsets = tf.random.stateless_uniform([batch, 2], crop_seed, 0, 2 * PAD + 1, tf.int32)
    flip = tf.random.stateless_uniform([batch, 1], flip_seed, 0, 2, tf.int32)
    steps = tf.range(side)[None, :]
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + tf.where(flip > 0, side - 1 - steps, steps)
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def preprocess_batch(images, mode):
    """float32 RGB 0..255 -> what the network reads (see ``PREPROCESS``)."""
    if mode == "vgg":
        return tools.vgg_preprocess(images)
    if mode == "standardize":
        return (images - tf.constant(CIFAR_MEAN_RGB)) / tf.constant(CIFAR_STD_RGB)
    return images


def unprocess_batch(images, mode):
    """The inverse of ``preprocess_batch``: back to float32 RGB 0..255 (for image summaries)."""
    if mode == "vgg":
        return tools.vgg_unprocess(images)
    if mode == "standardize":
        return images * tf.constant(CIFAR_STD_RGB) + tf.constant(CIFAR_MEAN_RGB)
    return images


def _check_read_arguments(preprocess, batch_size, image_size):
    if preprocess not in PREPROCESS:
        raise ValueError(f"unknown preprocess {preprocess!r}; choose one of "
                         f"{', '.join(PREPROCESS)}")
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size ({batch_size}) and image_size ({image_size}) must be at "
                         "least 1")


def _batch(data, batch_size, shuffle, augment, seed):
    """Batches (the last partial one dropped when shuffling), each paired with a stateless seed
    pair for its augmentation when ``augment``: drawn from a stream fixed by ``seed``, so the
    crops and flips do not depend on the order in which the parallel map runs."""
    data = data.batch(batch_size, drop_remainder=shuffle)
    if augment:
        data = tf.data.Dataset.zip((data, tf.data.Dataset.random(seed=seed).batch(2)))
    return data


def read_cifar10(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
                 image_size=IMAGE_SIZE, repeat=False, seed=None, val_size=VAL_EXAMPLES,
                 shard=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split.

    Deterministic pipelines (``shuffle=False``) keep the last partial batch, so every record
    comes exactly once a pass; shuffled ones drop it. ``augment`` (for training) pads, crops and
    mirrors at random; ``image_size`` other than 32 then resizes bilinearly; ``preprocess`` is
    ``vgg`` (BGR minus the ImageNet mean), ``standardize`` (CIFAR mean and std per channel) or
    ``none`` (RGB 0..255). ``seed`` fixes the shuffling and augmentation. Works eagerly and in a
    ``tf.compat.v1`` graph. The files are validated first (DataError); nothing is downloaded.
    ``shard=(count, index)`` keeps every count-th record from the index-th: one worker's share.
    """
    _check_read_arguments(preprocess, batch_size, image_size)
    paths = validate(data_dir, split)
    total = _record_count(paths)
    # The records stay as strings read from the files (not constants in the graph) and are
    # cached in memory after the first pass.
    data = tf.data.FixedLengthRecordDataset(paths, RECORD_BYTES)
    if split in ("train", "val"):
        _check_val_size(val_size, total)
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
    data = _batch(data, batch_size, shuffle, augment, seed)

    def transform(records, batch_seed=None):
        images, labels = decode(records)
        if augment:
            images = augment_batch(images, batch_seed)
        images = tf.cast(images, tf.float32)
        if image_size != IMAGE_SIZE:
            images = tf.image.resize(images, [image_size, image_size])
        return preprocess_batch(images, preprocess), labels

    data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def save_grid(data_dir, split, path, augment=False, val_size=VAL_EXAMPLES, count=64, seed=0,
              dataset="cifar10"):
    """A PNG grid of the first ``count`` images of a split of ``dataset``, each titled with its
    class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = SOURCES[dataset]
    data = source.read(data_dir, split, count, augment=augment, preprocess="none", seed=seed,
                       val_size=val_size)
    images, labels = next(iter(data))
    names = source.class_names(data_dir)
    side = int(np.ceil(np.sqrt(len(labels))))
    fig, axes = plt.subplots(side, side, figsize=(1.5 * side, 1.6 * side), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images.numpy(), labels.numpy()):
        ax.imshow(image.astype(np.uint8))
        ax.set_title(names[label], fontsize=8)
    fig.suptitle(f"{'CIFAR-10' if dataset == 'cifar10' else data_dir} {split}"
                 f"{' (augmented)' if augment else ''}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------------------------
# Folders of images: DATA_DIR/<class>/<image>, or DATA_DIR/train/... plus DATA_DIR/test/...
# ----------------------------------------------------------------------------------------------

TF_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # tf.io.decode_image
PNM_EXTENSIONS = (".ppm", ".pgm", ".pnm")  # Pillow
IMAGE_EXTENSIONS = TF_EXTENSIONS + PNM_EXTENSIONS
TEST_PERCENT = 10  # share of the images in test when there is no test/ folder
VAL_PERCENT = 10  # share of trainval in val when val_size is None
CACHE_BYTES = 1 << 30  # cache a split's decoded images (float32 S x S x 3) up to this size
SHOW_FILES = 3  # files named in a DataError
SKIP_FLAG = "--skip-bad-images"

# path -> ((size, mtime_ns), (decoder or None, reason, (width, height) or None)): what
# _inspect_image found
_checked = {}
_reported = set()  # what validate_folder printed about skipped images, not to repeat it


class FolderLayout(typing.NamedTuple):
    """Where a folder data set's images are."""
    train_root: str  # the folder of the class folders: DATA_DIR, or DATA_DIR/train
    test_root: typing.Optional[str]  # DATA_DIR/test, or None (test is then hashed)
    classes: list  # sorted class folder names of train_root


def _listdir(folder):
    try:
        return sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError as e:
        raise DataError(f"cannot read {folder} ({e.strerror}); check its permissions") from None


def _subfolders(folder):
    return [name for name in _listdir(folder) if os.path.isdir(os.path.join(folder, name))]


def prepare_folder(data_dir):
    """Nothing to download: check that DATA_DIR is a folder (DataError if not)."""
    if not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"{data_dir} {what}; put the images there, one folder per class "
                        f"({os.path.join(data_dir, '<class>', '<image>')}), or pass another "
                        "--data-dir")
    return data_dir


def folder_layout(data_dir):
    """The FolderLayout of DATA_DIR (see the module docstring); DataError when there are no
    class folders."""
    prepare_folder(data_dir)
    folders = _subfolders(data_dir)
    if "train" in folders and set(folders) <= {"train", "test"}:
        train_root = os.path.join(data_dir, "train")
        test_root = os.path.join(data_dir, "test") if "test" in folders else None
    elif "train" in folders and set(folders) <= {"train", "test", "val", "valid", "validation"}:
        other = sorted(set(folders) - {"train", "test"})[0]
        raise DataError(f"{os.path.join(data_dir, other)}: a validation folder is not read (val "
                        f"is drawn from train/ by a hash of the path); move its images into "
                        f"{os.path.join(data_dir, 'train')}/<class>/ or out of {data_dir}")
    else:
        train_root, test_root = data_dir, None
    classes = _subfolders(train_root)
    if not classes:
        raise DataError(f"{train_root} holds no class folders; put the images in one folder per "
                        f"class ({os.path.join(train_root, '<class>', '<image>')})")
    return FolderLayout(train_root, test_root, classes)


def folder_class_names(data_dir):
    """The sorted class folder names of DATA_DIR (of DATA_DIR/train in that layout)."""
    return list(folder_layout(data_dir).classes)


def folder_num_classes(data_dir):
    """How many class folders DATA_DIR has."""
    return len(folder_class_names(data_dir))


def _is_image(name):
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _class_files(root, classes, data_dir):
    """{class index: sorted paths relative to DATA_DIR ('/'-separated)} of the images directly
    in ROOT/<class>/, and the class folders without any."""
    files, empty = {}, []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        rel = os.path.relpath(folder, data_dir).replace(os.sep, "/")
        files[label] = [f"{rel}/{f}" for f in _listdir(folder) if _is_image(f)
                        and not os.path.isdir(os.path.join(folder, f))]
        if not files[label]:
            empty.append(folder)
    return files, empty


def _few(items):
    """The first SHOW_FILES of ITEMS, comma-separated, and how many more there are."""
    shown = ", ".join(items[:SHOW_FILES])
    return shown + (f" and {len(items) - SHOW_FILES} more" if len(items) > SHOW_FILES else "")


def path_hash(rel_path, salt=""):
    """The split hash of a path relative to DATA_DIR: the first 8 bytes of SHA-1(SALT + path
    with '/' separators, as UTF-8) as a big-endian integer."""
    text = (salt + rel_path.replace(os.sep, "/")).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha1(text, usedforsecurity=False).digest()[:8], "big")


def _layout_files(data_dir):
    """(layout, {label: train paths}, {label: test paths} or None without a test/ folder) of a
    folder data set, paths relative to DATA_DIR; DataError for class folders without images and
    for test/ classes that train/ lacks."""
    layout = folder_layout(data_dir)
    files, empty = _class_files(layout.train_root, layout.classes, data_dir)
    test_files = None
    if layout.test_root is not None:
        test_classes = _subfolders(layout.test_root)
        missing = [os.path.join(layout.test_root, c) for c in test_classes
                   if c not in layout.classes]
        if missing:
            raise DataError(f"{len(missing)} class folders of {layout.test_root} are not in "
                            f"{layout.train_root}: {_few(missing)}; add those classes to "
                            f"{layout.train_root} or remove them from {layout.test_root}")
        test_files, test_empty = _class_files(
            layout.test_root, test_classes, data_dir)
        empty += test_empty
        labels = [layout.classes.index(c) for c in test_classes]
        test_files = {labels[i]: paths for i, paths in test_files.items()}
    if empty:
        raise DataError(f"{len(empty)} class folders hold no images "
                        f"({' '.join(IMAGE_EXTENSIONS)}; subfolders are not read): "
                        f"{_few(empty)}; add images or remove those folders")
    return layout, files, test_files


def _pool(data_dir, split):
    """(layout, [(rel path, label)] sorted by path) of the images split draws from: test/ or
    the test-hashed files for ``test``, train/ or the others for the other splits."""
    layout, files, test_files = _layout_files(data_dir)
    if test_files is not None:
        chosen = test_files if split == "test" else files
        pool = [(p, label) for label, paths in chosen.items() for p in paths]
    else:
        pool = [(p, label) for label, paths in files.items() for p in paths
                if (path_hash(p) % 100 < TEST_PERCENT) == (split == "test")]
    return layout, sorted(pool)


def _pillow_rgb(image):
    """A Pillow image as uint8 RGB HWC; 16-bit grey (mode I, 0..65535) scaled to 0..255."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.clip(np.round(np.asarray(image, np.float64) * (255 / 65535)), 0, 255)
        return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), np.uint8)


def _check_image(path):
    """(decoder, None) for an image Pillow reads whole, where decoder is "tf" when
    tf.io.decode_image decodes it the same way and "pillow" else; (None, reason) if it is bad."""
    return _inspect_image(path)[:2]


def _inspect_image(path):
    """``_check_image``'s (decoder, reason) and the image's (width, height), None if bad."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt, mode, size = image.format, image.mode, image.size
            image.verify()  # checksums, where the format has them
        with Image.open(path) as image:  # verify() leaves the image unusable
            if fmt == "JPEG":  # decode at 1/8 scale: still reads all of the data
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except OSError as e:
        if e.strerror:  # cannot read the file at all
            return None, f"cannot be read: {e.strerror}", None
        return None, _reason(e), None
    except Exception as e:  # Pillow raises many kinds on corrupt data
        return None, _reason(e), None
    tf_decodes = fmt in ("JPEG", "PNG", "GIF") or (fmt == "BMP" and mode in ("RGB", "RGBA"))
    return ("tf" if tf_decodes else "pillow"), None, size


def _reason(error):
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"corrupt: {text[:80]}"


def _check_all(paths, sizes=False):
    """_check_image of each path, remembered for its size and modification time; new files are
    opened in threads (Pillow decodes without holding the GIL). ``sizes``: (decoder, reason,
    (width, height) or None) for each path instead."""
    paths = [os.path.abspath(path) for path in paths]
    stamps, todo = {}, []
    for path in paths:
        try:
            st = os.stat(path)
            stamps[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamps[path] = None
        known = _checked.get(path)
        if stamps[path] is None or known is None or known[0] != stamps[path]:
            todo.append(path)
    workers = min(8, os.cpu_count() or 1)
    if len(todo) > 64 and workers > 1:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(_inspect_image, todo))
    else:
        results = [_inspect_image(path) for path in todo]
    for path, result in zip(todo, results):
        if stamps[path] is not None:
            _checked[path] = (stamps[path], result)
        else:
            _checked.pop(path, None)
    found = dict(zip(todo, results))
    results = [found[p] if p in found else _checked[p][1] for p in paths]
    return results if sizes else [result[:2] for result in results]


def _checked_pool(data_dir, split, skip_bad_images):
    """[(rel path, label, decoder)] of the good images of split's pool (see _pool)."""
    layout, pool = _pool(data_dir, split)
    results = _check_all([os.path.join(data_dir, p) for p, _ in pool])
    bad = [f"{os.path.join(data_dir, p)} ({reason})"
           for (p, _), (_, reason) in zip(pool, results) if reason]
    root = layout.test_root if split == "test" and layout.test_root else layout.train_root
    which = "test" if split == "test" else "trainval"  # train and val come out of trainval
    _leave_out_bad(bad, len(pool), root, which, skip_bad_images)
    return [(p, label, decoder) for (p, label), (decoder, _) in zip(pool, results) if decoder]


def _leave_out_bad(bad, count, root, which, skip_bad_images):
    """BAD ("path (reason)") of the COUNT images of ROOT: a DataError naming them, or with
    ``skip_bad_images`` a line saying they are left out (once a process)."""
    if bad and not skip_bad_images:
        raise DataError(f"{len(bad)} of the {count} {which} images in {root} are unreadable "
                        f"or corrupt: {_few(bad)}; fix or remove them, or pass {SKIP_FLAG} to "
                        "leave them out")
    if bad:
        key = (os.path.abspath(root), which, tuple(bad))
        if key not in _reported:  # once for train, val and trainval
            _reported.add(key)
            print(f"{SKIP_FLAG}: leaving out {len(bad)} of the {count} {which} images in "
                  f"{root} (unreadable or corrupt): {_few(bad)}")


def _check_folder_val_size(val_size, total, data_dir):
    if not 0 < val_size < total:
        raise DataError(f"val_size (--val-size) {val_size} must be between 1 and {total - 1}: "
                        f"the trainval images of {data_dir} number {total}")


def validate_folder(data_dir, split, skip_bad_images=False):
    """Check a split of a folder data set before any TensorFlow runs: the layout, and every
    image the split draws from (test: the test images; the others: all of trainval) opened and
    decoded with Pillow. Returns [(path relative to DATA_DIR, label, decoder)] of those images,
    sorted by path; raises DataError (bad images left out with ``skip_bad_images``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    files = _checked_pool(data_dir, split, skip_bad_images)
    if not files:
        which = "test" if split == "test" else "trainval"
        raise DataError(f"the {which} split of {data_dir} holds no images; add images")
    return files


def _folder_split(data_dir, split, val_size, skip_bad_images):
    """[(rel path, label, decoder)] of a split, sorted by path (see the module docstring)."""
    files = validate_folder(data_dir, split, skip_bad_images)
    if split not in ("train", "val"):
        return files
    if val_size is None:
        in_val = {p for p, _, _ in files if path_hash(p, "val:") % 100 < VAL_PERCENT}
        how = f"about {VAL_PERCENT}% of {len(files)} trainval images by hash; pass a --val-size"
    else:
        _check_folder_val_size(val_size, len(files), data_dir)
        ranked = sorted((path_hash(p, "val:"), p) for p, _, _ in files)
        in_val = {p for _, p in ranked[:val_size]}
        how = "choose another --val-size"
    files = [f for f in files if (f[0] in in_val) == (split == "val")]
    if not files:
        raise DataError(f"the {split} split of {data_dir} holds no images ({how})")
    return files


def folder_num_examples(data_dir, split, val_size=None, skip_bad_images=False):
    """How many images a split of a folder data set has (after validating them)."""
    return len(_folder_split(data_dir, split, val_size, skip_bad_images))


def _pillow_decode(data):
    """Encoded image bytes -> uint8 RGB HWC, by Pillow (in tf.numpy_function)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _pillow_rgb(image)


def decode_file(data, by_pillow):
    """Encoded image bytes (a string tensor) -> uint8 [H, W, 3] RGB. BY_PILLOW: a Python bool
    (one decoder) or a boolean tensor (both, chosen per image with tf.cond)."""
    def pillow():
        image = tf.numpy_function(_pillow_decode, [data], tf.uint8, stateful=False)
        image.set_shape([None, None, CHANNELS])
        return image

    def tensorflow():
        return tf.io.decode_image(data, channels=CHANNELS, expand_animations=False)

    if isinstance(by_pillow, bool):
        return pillow() if by_pillow else tensorflow()
    return tf.cond(by_pillow, pillow, tensorflow)


def resize(images, image_size):
    """uint8 image(s) [..., H, W, 3] of any size -> float32 [..., S, S, 3], bilinear: how every
    image file is brought to the network's side, in training, evaluation, prediction and in an
    exported model."""
    return tf.image.resize(images, [image_size, image_size])


def is_image_file(name):
    """Whether a file name has the extension of an image the folder reader takes."""
    return _is_image(os.path.basename(name))


def check_files(paths):
    """``[(path, decoder)]`` for image files, each opened and decoded once first (decoder:
    "tf" or "pillow", see ``decode_file``); DataError naming the bad ones (the first few, and
    how many more) otherwise."""
    results = _check_all(paths)
    bad = [f"{path} ({reason})" for path, (decoder, reason) in zip(paths, results)
           if decoder is None]
    if bad:
        raise DataError(f"{len(bad)} of the {len(paths)} images cannot be used: {_few(bad)}; "
                        "remove or replace them")
    return [(path, decoder) for path, (decoder, _) in zip(paths, results)]


def read_files(paths, batch_size, image_size, preprocess="vgg"):
    """A tf.data.Dataset of image batches (float32 [B, S, S, 3]) from image files of any
    format and size the folder reader takes, in the given order, the last batch partial: each
    decoded, resized and preprocessed exactly as ``read_folder`` does for evaluation. The files
    are checked first (``check_files``)."""
    _check_read_arguments(preprocess, batch_size, image_size)
    checked = check_files(paths)
    data = tf.data.Dataset.from_tensor_slices((
        np.array([os.fsencode(path) for path, _ in checked], dtype=object),
        np.array([decoder == "pillow" for _, decoder in checked])))
    data = data.map(lambda path, pillow: resize(decode_file(tf.io.read_file(path), pillow),
                                                image_size),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(batch_size).map(lambda images: preprocess_batch(images, preprocess),
                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def read_folder(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
                image_size=None, repeat=False, seed=None, val_size=None, skip_bad_images=False,
                shard=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split of a
    folder data set, like ``read_cifar10``: in path order and keeping the last partial batch
    unless ``shuffle`` (which drops it); every image decoded, resized bilinearly to
    ``image_size`` (default 32), then (``augment``) padded, cropped and mirrored at random as
    CIFAR-10 is, and preprocessed by ``preprocess_batch``. ``val_size``: None for about 10% of
    trainval, or a number of images (see the module docstring). The images are validated first
    (DataError); ``skip_bad_images`` leaves the bad ones out. Works eagerly and in a
    ``tf.compat.v1`` graph."""
    image_size = IMAGE_SIZE if image_size is None else image_size
    _check_read_arguments(preprocess, batch_size, image_size)
    files = _folder_split(data_dir, split, val_size, skip_bad_images)
    return _file_pipeline(data_dir, files, batch_size, shuffle, augment, preprocess, image_size,
                          repeat, seed, shard=shard)


def _file_pipeline(data_dir, files, batch_size, shuffle, augment, preprocess, image_size, repeat,
                   seed, boxes=None, shard=None):
    """``read_folder``'s pipeline over FILES, [(path relative to DATA_DIR, label, decoder)]:
    each file read, decoded, cut to its box when BOXES ([N, 4] int: x1, y1, x2, y2, the last
    column and row included) are given, resized; then ``_pipeline``."""
    # Relative paths (short constants in the graph), joined to DATA_DIR in the map.
    rel = np.array([os.fsencode(p) for p, _, _ in files], dtype=object)
    labels = np.array([label for _, label, _ in files], np.int32)
    by_pillow = np.array([decoder == "pillow" for _, _, decoder in files])
    prefix = os.fsencode(os.path.join(data_dir, ""))
    columns = {"path": rel, "label": labels}
    if by_pillow.all() or not by_pillow.any():  # one decoder: no tf.cond
        single = bool(by_pillow[0])
    else:
        columns["pillow"] = by_pillow
        single = None
    if boxes is not None:
        columns["box"] = np.asarray(boxes, np.int32).reshape(len(files), 4)

    def load(item):
        contents = tf.io.read_file(tf.strings.join([prefix, item["path"]]))
        image = decode_file(contents, single if single is not None else item["pillow"])
        if "box" in item:
            x1, y1, x2, y2 = tf.unstack(item["box"])
            image = image[y1:y2 + 1, x1:x2 + 1]
        return resize(image, image_size), item["label"]

    return _pipeline(tf.data.Dataset.from_tensor_slices(columns), load, len(files), batch_size,
                     shuffle, augment, preprocess, image_size, repeat, seed, shard)


def _pipeline(data, load, total, batch_size, shuffle, augment, preprocess, image_size, repeat,
              seed, shard=None):
    """The batches of the TOTAL elements of DATA, each made an (image float32 [S, S, 3] RGB
    0..255, label) by LOAD: cached when they fit in CACHE_BYTES, shuffled, repeated, batched,
    augmented and preprocessed as ``read_folder`` documents. ``shard=(count, index)`` keeps
    every count-th element from the index-th (one worker's share)."""
    if shard:
        data = data.shard(*shard)
        total = (total - shard[1] + shard[0] - 1) // shard[0]
    cache = total * image_size * image_size * CHANNELS * 4 <= CACHE_BYTES
    if cache:  # decode once, then shuffle the decoded images
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        data = data.shuffle(total, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    if not cache:  # shuffle the paths, decode each epoch
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = _batch(data, batch_size, shuffle, augment, seed)

    def transform(images, labels):
        return preprocess_batch(images, preprocess), labels

    def augment_transform(batch, batch_seed):
        images, labels = batch
        return transform(augment_batch(images, batch_seed), labels)

    data = data.map(augment_transform if augment else transform,
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------------------------
# The German Traffic Sign Recognition Benchmark: SOURCES["gtsrb"]
# ----------------------------------------------------------------------------------------------

GTSRB_CLASSES = 43
SIGN_NAMES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signnames.csv")
GT_FIELDS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
TEST_CSV = "GT-final_test.csv"  # in GTSRB_Final_Test_GT.zip (the images' zip has no ClassId)
PICKLES = {"train": "train.p", "val": "valid.p", "test": "test.p"}
ROI_FLAG = "--crop-roi"
_TRACK_NAME = re.compile(r"(\d+)_\d+")  # a training image's name without extension: track_picture

_pickles = {}  # absolute path -> ((size, mtime_ns), (features, labels)) of a checked pickle


class GtsrbLayout(typing.NamedTuple):
    """Which of the three GTSRB layouts DATA_DIR holds."""
    kind: str  # "official", "pickles" or "folders"
    root: str  # official: the folder of Final_Training/ and Final_Test/; else DATA_DIR
    folders: typing.Optional[FolderLayout]  # "folders": where the class folders are


class SignImage(typing.NamedTuple):
    """One image file of the official or the class-folder layout."""
    path: str  # relative to DATA_DIR, '/'-separated
    label: int
    track: str  # "<class folder>/<track>", what the val split holds out whole ("" for test)
    box: typing.Optional[tuple]  # official: (Roi.X1, Roi.Y1, Roi.X2, Roi.Y2), corners included
    size: typing.Optional[tuple]  # official: (Width, Height) as the CSV gives them
    decoder: typing.Optional[str] = None  # "tf" or "pillow", once the file was checked


def _gtsrb_help():
    return ("put GTSRB there as the official archives extract (Final_Training/Images/ and "
            "Final_Test/Images/, also under GTSRB/), as the lab's pickles train.p, valid.p and "
            "test.p, or as one folder of images per class")


def gtsrb_layout(data_dir):
    """The GtsrbLayout of DATA_DIR, tried in this order: Final_Training/ or Final_Test/ in
    DATA_DIR or DATA_DIR/GTSRB (official), DATA_DIR/train.p (pickles), class folders (as the
    folder source reads them). DataError when DATA_DIR holds none of them."""
    if not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"{data_dir} {what}; {_gtsrb_help()}, or pass another --data-dir")
    for root in (data_dir, os.path.join(data_dir, "GTSRB")):
        if any(os.path.isdir(os.path.join(root, part)) for part in ("Final_Training",
                                                                    "Final_Test")):
            return GtsrbLayout("official", root, None)
    if os.path.lexists(os.path.join(data_dir, PICKLES["train"])):
        return GtsrbLayout("pickles", data_dir, None)
    if not _subfolders(data_dir):
        raise DataError(f"{data_dir} holds no GTSRB images; {_gtsrb_help()}")
    return GtsrbLayout("folders", data_dir, folder_layout(data_dir))


def prepare_gtsrb(data_dir, crop_roi=False, skip_bad_images=False):
    """Nothing to download: check that DATA_DIR holds one of the layouts (DataError if not)."""
    gtsrb_layout(data_dir)
    return data_dir


def sign_names():
    """The 43 official sign names of signnames.csv (ClassId,SignName), the i-th for ClassId i."""
    with open(SIGN_NAMES, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    names = {int(class_id): name for class_id, name in rows[1:]}
    return [names[i] for i in range(GTSRB_CLASSES)]


def gtsrb_class_names(data_dir, crop_roi=False, skip_bad_images=False):
    """The official sign names (official layout, pickles), or the sorted class folder names."""
    layout = gtsrb_layout(data_dir)
    return list(layout.folders.classes) if layout.kind == "folders" else sign_names()


def gtsrb_num_classes(data_dir, crop_roi=False, skip_bad_images=False):
    """43, or how many class folders there are."""
    return len(gtsrb_class_names(data_dir))


def _read_gt_csv(path):
    """[(file name, (width, height), (x1, y1, x2, y2), class id)] of a ground-truth CSV
    (semicolon-separated, a header naming GT_FIELDS); DataError at the first bad line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check its permissions") \
            from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} is not a GTSRB ground-truth CSV ({e}); extract it again from "
                        "the official archive") from None
    header = [name.strip() for name in rows[0]] if rows else []
    missing = [name for name in GT_FIELDS if name not in header]
    if missing:
        raise DataError(f"{path}: its header {';'.join(header)!r} lacks {', '.join(missing)}; a "
                        f"GTSRB ground-truth CSV starts with {';'.join(GT_FIELDS)}")
    columns = [header.index(name) for name in GT_FIELDS]
    entries = []
    for line, row in enumerate(rows[1:], 2):
        if not "".join(row).strip():
            continue
        try:
            name = row[columns[0]].strip()
            width, height, x1, y1, x2, y2, class_id = (int(row[c]) for c in columns[1:])
        except (IndexError, ValueError):
            raise DataError(f"{path} line {line}: {';'.join(row)!r} is not a file name and "
                            f"seven whole numbers ({';'.join(GT_FIELDS)}); fix that line") \
                from None
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise DataError(f"{path} line {line}: {name!r} is not the name of a file next to "
                            "the CSV; fix that line")
        if not 0 <= class_id < GTSRB_CLASSES:
            raise DataError(f"{path} line {line}: ClassId {class_id} is not one of the "
                            f"{GTSRB_CLASSES} classes 0..{GTSRB_CLASSES - 1}; fix that line")
        entries.append((name, (width, height), (x1, y1, x2, y2), class_id))
    return entries


def _track(folder, name):
    """The track key of a training image: "<class folder>/TTTTT" for TTTTT_NNNNN.<ext>; a file
    named otherwise is a track of its own."""
    match = _TRACK_NAME.fullmatch(os.path.splitext(name)[0])
    return f"{folder}/{match.group(1) if match else name}"


def _relative(folder, data_dir):
    return os.path.relpath(folder, data_dir).replace(os.sep, "/")


def _official_pool(layout, data_dir, split):
    """(folder of the images, [SignImage] sorted by path) that SPLIT draws from in the official
    layout: the rows of the ground-truth CSVs, for test Final_Test's, else Final_Training's."""
    if split == "test":
        images_dir = os.path.join(layout.root, "Final_Test", "Images")
        if not os.path.isdir(images_dir):
            raise DataError(f"{images_dir} does not exist: the test split is Final_Test/Images/ "
                            f"of GTSRB_Final_Test_Images.zip, with {TEST_CSV} of "
                            f"GTSRB_Final_Test_GT.zip; extract them into {layout.root}")
        places = dict.fromkeys([images_dir, layout.root, data_dir])
        found = [os.path.join(p, TEST_CSV) for p in places
                 if os.path.isfile(os.path.join(p, TEST_CSV))]
        if not found:
            raise DataError(f"no {TEST_CSV} in {images_dir}: the test labels are in {TEST_CSV} "
                            "of GTSRB_Final_Test_GT.zip (GT-final_test.test.csv, next to the "
                            "images, has no ClassId); put it there")
        rel = _relative(images_dir, data_dir)
        images = [SignImage(f"{rel}/{name}", class_id, "", box, size)
                  for name, size, box, class_id in _read_gt_csv(found[0])]
        return images_dir, sorted(images, key=lambda image: image.path)
    images_dir = os.path.join(layout.root, "Final_Training", "Images")
    if not os.path.isdir(images_dir):
        raise DataError(f"{images_dir} does not exist: the {split} split is "
                        "Final_Training/Images/<class>/ of GTSRB_Final_Training_Images.zip; "
                        f"extract it into {layout.root}")
    classes = _subfolders(images_dir)
    if not classes:
        raise DataError(f"{images_dir} holds no class folders (000NN/ with GT-000NN.csv); "
                        "extract GTSRB_Final_Training_Images.zip again")
    images, no_csv = [], []
    for folder in classes:
        table = os.path.join(images_dir, folder, f"GT-{folder}.csv")
        if not os.path.isfile(table):
            no_csv.append(table)
            continue
        rel = _relative(os.path.join(images_dir, folder), data_dir)
        images += [SignImage(f"{rel}/{name}", class_id, _track(folder, name), box, size)
                   for name, size, box, class_id in _read_gt_csv(table)]
    if no_csv:
        raise DataError(f"{len(no_csv)} class folders of {images_dir} lack their ground-truth "
                        f"CSV: {_few(no_csv)} are missing; extract "
                        "GTSRB_Final_Training_Images.zip again, or remove those folders")
    return images_dir, sorted(images, key=lambda image: image.path)


def _folders_pool(layout, data_dir, split):
    """(folder of the class folders, [SignImage] sorted by path) that SPLIT draws from in the
    class-folder layout: test/ for test (DataError without it), else train/ or DATA_DIR."""
    folders, files, test_files = _layout_files(data_dir)
    if split == "test":
        if test_files is None:
            raise DataError(f"{data_dir} has no test split: with class folders it is "
                            f"{os.path.join(data_dir, 'test', '<class>')}/ next to "
                            f"{os.path.join(data_dir, 'train', '<class>')}/; add those, or "
                            "use --split val")
        images = [SignImage(p, label, "", None, None)
                  for label, paths in test_files.items() for p in paths]
        return folders.test_root, sorted(images)
    images = [SignImage(p, label, _track(*p.split("/")[-2:]), None, None)
              for label, paths in files.items() for p in paths]
    return folders.train_root, sorted(images)


def _roi_problem(image, size):
    """Why IMAGE (its CSV entry) cannot be cut to its ROI when it is SIZE (width, height)."""
    (width, height), (x1, y1, x2, y2) = image.size, image.box
    if tuple(size) != (width, height):
        return f"{size[0]}x{size[1]} pixels, but the CSV says {width}x{height}"
    if not (0 <= x1 <= x2 < width and 0 <= y1 <= y2 < height):
        return (f"its ROI ({x1}, {y1})-({x2}, {y2}) is not inside the {width}x{height} image; "
                "fix the CSV")
    return None


def _no_roi(layout, data_dir, crop_roi):
    if crop_roi and layout.kind == "pickles":
        raise DataError(f"{ROI_FLAG} cannot cut the pickles of {data_dir}: their images are "
                        f"whole and already resized; it needs the official layout's CSVs; "
                        f"leave {ROI_FLAG} out")
    if crop_roi and layout.kind == "folders":
        raise DataError(f"{ROI_FLAG} needs the ROIs of the official layout's CSVs; the class "
                        f"folders of {data_dir} have none: leave {ROI_FLAG} out")


def _gtsrb_files(data_dir, split, crop_roi, skip_bad_images):
    """[SignImage] with their decoders, sorted by path, of the files SPLIT draws from (test:
    the test images; the others: all training images), each opened and decoded once (and
    with ``crop_roi`` its size and ROI checked against its CSV); bad ones named in a DataError
    or, with ``skip_bad_images``, left out."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    layout = gtsrb_layout(data_dir)
    _no_roi(layout, data_dir, crop_roi)
    pool_of = _official_pool if layout.kind == "official" else _folders_pool
    root, pool = pool_of(layout, data_dir, split)
    results = _check_all([os.path.join(data_dir, image.path) for image in pool], sizes=True)
    bad, good = [], []
    for image, (decoder, reason, size) in zip(pool, results):
        if reason is None and crop_roi:
            reason = _roi_problem(image, size)
        if reason:
            bad.append(f"{os.path.join(data_dir, image.path)} ({reason})")
        else:
            good.append(image._replace(decoder=decoder))
    which = "test" if split == "test" else "trainval"
    _leave_out_bad(bad, len(pool), root, which, skip_bad_images)
    if not good:
        raise DataError(f"the {which} split of {data_dir} holds no images; add images")
    return good


def _gtsrb_split(data_dir, split, val_size, crop_roi, skip_bad_images):
    """[SignImage] of a split of the official or the class-folder layout, sorted by path: val
    holds whole tracks, those of smallest path_hash(track, "val:") (see the module docstring)."""
    images = _gtsrb_files(data_dir, split, crop_roi, skip_bad_images)
    if split not in ("train", "val"):
        return images
    sizes = {}
    for image in images:
        sizes[image.track] = sizes.get(image.track, 0) + 1
    if val_size is None:
        in_val = {t for t in sizes if path_hash(t, "val:") % 100 < VAL_PERCENT}
        how = f"about {VAL_PERCENT}% of {len(sizes)} tracks by hash; pass a --val-size"
    else:
        _check_folder_val_size(val_size, len(images), data_dir)
        in_val, taken = set(), 0
        for _, track in sorted((path_hash(t, "val:"), t) for t in sizes):
            if taken >= val_size:
                break
            in_val.add(track)
            taken += sizes[track]
        how = "choose a smaller --val-size"
    images = [image for image in images if (image.track in in_val) == (split == "val")]
    if not images:
        raise DataError(f"the {split} split of {data_dir} holds no images ({how})")
    return images


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _load_pickle(path):
    """(features uint8 [N, H, W, 3], labels int32 [N]) of a GTSRB pickle, unpickled by the
    weights reader's allow-list (nothing but NumPy arrays and plain containers) and checked;
    remembered for the file's size and modification time. DataError naming the file."""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror})") from None
    stamp = (st.st_size, st.st_mtime_ns)
    known = _pickles.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        with open(path, "rb") as f:
            content = weights.unpickle_arrays(f)
    except weights.RefusedPickle as e:
        raise DataError(f"{path}: refused: {e}; a GTSRB pickle holds only NumPy arrays in a "
                        "dict, and nothing from this one was run") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e})") from None
    except Exception as e:  # pickle raises many kinds on a truncated or corrupt stream
        raise DataError(f"{path}: truncated or corrupt ({type(e).__name__}: {e}); get it "
                        "again") from None
    if isinstance(content, dict):
        content = {k.decode("latin1") if isinstance(k, bytes) else k: v
                   for k, v in content.items()}
    if not isinstance(content, dict) or not {"features", "labels"} <= set(content):
        raise DataError(f"{path} holds {_describe(content)}, not a dict with 'features' and "
                        "'labels'; this is not a GTSRB pickle")
    features, labels = content["features"], content["labels"]
    if not (isinstance(features, np.ndarray) and features.dtype == np.uint8
            and features.ndim == 4 and features.shape[3] == CHANNELS and features.size):
        raise DataError(f"{path}: 'features' is {_describe(features)}, not uint8 RGB images "
                        "[N, height, width, 3]")
    if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
            and labels.shape == features.shape[:1]):
        raise DataError(f"{path}: 'labels' is {_describe(labels)}, not {len(features)} whole "
                        "numbers, one for each image")
    wrong = np.flatnonzero((labels < 0) | (labels >= GTSRB_CLASSES))
    if wrong.size:
        raise DataError(f"{path}: image {wrong[0]} has label {labels[wrong[0]]}, not a class "
                        f"0..{GTSRB_CLASSES - 1} ({wrong.size} such labels)")
    arrays = np.ascontiguousarray(features), labels.astype(np.int32)
    _pickles[path] = (stamp, arrays)
    return arrays


def _pickle_parts(data_dir, split, val_size):
    """[(file name, features, labels)] of a split of the pickle layout: train.p, valid.p, both
    (trainval; train.p alone without valid.p) or test.p."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split in ("train", "val") and val_size is not None:
        raise DataError(f"--val-size {val_size}: with the pickles of {data_dir} the validation "
                        f"images are {PICKLES['val']}; leave --val-size out (or pass 0 to train "
                        f"on {PICKLES['train']} and {PICKLES['val']} together)")
    keys = {"train": ["train"], "val": ["val"], "trainval": ["train", "val"],
            "test": ["test"]}[split]
    parts = []
    for key in keys:
        path = os.path.join(data_dir, PICKLES[key])
        if not os.path.lexists(path):
            if split == "trainval" and key == "val":
                continue
            raise DataError(f"{path} is missing: with pickles the {split} split is "
                            f"{PICKLES[key]}; put it there" + (
                                " (or pass --val-size 0 to train on train.p alone)"
                                if key == "val" else ""))
        parts.append((PICKLES[key], *_load_pickle(path)))
    if len({features.shape[1:] for _, features, _ in parts}) > 1:
        raise DataError(f"{data_dir}: the images of " + " and ".join(
            f"{name} are {features.shape[2]}x{features.shape[1]}" for name, features, _
            in parts) + "; trainval needs one size")
    return parts


def _pickle_names(parts):
    return [f"{name}:{i}" for name, features, _ in parts for i in range(len(features))]


def validate_gtsrb(data_dir, split, crop_roi=False, skip_bad_images=False):
    """Check a split of GTSRB before any TensorFlow runs: the layout, every image file the
    split draws from opened and decoded (``crop_roi``: also its size and ROI against the CSV),
    or the pickles read and checked. Returns the image names (``gtsrb_image_names`` without the
    train/val division); raises DataError (``skip_bad_images`` leaves bad image files out; it
    has nothing to do for pickles)."""
    layout = gtsrb_layout(data_dir)
    if layout.kind == "pickles":
        _no_roi(layout, data_dir, crop_roi)
        return _pickle_names(_pickle_parts(data_dir, split, None))
    return [image.path for image in _gtsrb_files(data_dir, split, crop_roi, skip_bad_images)]


def gtsrb_image_names(data_dir, split, val_size=None, crop_roi=False, skip_bad_images=False):
    """A name for each image of a split in the order ``read_gtsrb`` gives them: the path
    relative to DATA_DIR, or "file.p:index" for pickles."""
    layout = gtsrb_layout(data_dir)
    if layout.kind == "pickles":
        _no_roi(layout, data_dir, crop_roi)
        return _pickle_names(_pickle_parts(data_dir, split, val_size))
    return [image.path for image in _gtsrb_split(data_dir, split, val_size, crop_roi,
                                                  skip_bad_images)]


def gtsrb_num_examples(data_dir, split, val_size=None, crop_roi=False, skip_bad_images=False):
    """How many images a split of GTSRB has (after validating them)."""
    return len(gtsrb_image_names(data_dir, split, val_size, crop_roi, skip_bad_images))


def read_gtsrb(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
               image_size=None, repeat=False, seed=None, val_size=None, crop_roi=False,
               skip_bad_images=False, shard=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split of
    GTSRB in any of its three layouts, batched, shuffled, augmented and preprocessed exactly as
    ``read_folder`` does; image files decoded as the folder source decodes them (``crop_roi``:
    each first cut to its ROI), pickled images taken from their arrays; all resized bilinearly
    to ``image_size`` (default 32). ``val_size``: None for about a tenth of the tracks, or a
    number of images (whole tracks up to at least that many); must be None with pickles, whose
    val is valid.p. Validated first (DataError). Works eagerly and in a ``tf.compat.v1``
    graph. ``shard``: one worker's share, as for ``read_cifar10``."""
    image_size = IMAGE_SIZE if image_size is None else image_size
    _check_read_arguments(preprocess, batch_size, image_size)
    layout = gtsrb_layout(data_dir)
    options = (batch_size, shuffle, augment, preprocess, image_size, repeat, seed)
    if layout.kind != "pickles":
        images = _gtsrb_split(data_dir, split, val_size, crop_roi, skip_bad_images)
        files = [(image.path, image.label, image.decoder) for image in images]
        boxes = [image.box for image in images] if crop_roi else None
        return _file_pipeline(data_dir, files, *options, boxes=boxes, shard=shard)
    _no_roi(layout, data_dir, crop_roi)
    parts = _pickle_parts(data_dir, split, val_size)
    features = np.concatenate([f for _, f, _ in parts]) if len(parts) > 1 else parts[0][1]
    labels = np.concatenate([y for _, _, y in parts]) if len(parts) > 1 else parts[0][2]
    # Indices in the graph, the pixels fetched from the array in the map: the images never
    # become graph constants (a checkpoint's .meta file would carry them).
    data = tf.data.Dataset.from_tensor_slices({"index": np.arange(len(labels)),
                                               "label": labels})

    def load(item):
        image = tf.numpy_function(lambda index: features[index], [item["index"]], tf.uint8,
                                  stateful=False)
        image.set_shape(features.shape[1:])
        return resize(image, image_size), item["label"]

    return _pipeline(data, load, len(labels), *options, shard)


# ----------------------------------------------------------------------------------------------
# The data sets the programs know (--dataset)
# ----------------------------------------------------------------------------------------------

def cifar_val_size(data_dir):
    """A tenth of the training records: 5,000 of the full 50,000, fewer for a smaller set."""
    return max(1, _record_count(validate(data_dir, "trainval")) // 10)


class Source(typing.NamedTuple):
    """What the programs need of a data set; every function takes the --data-dir first."""
    prepare: typing.Callable  # (data_dir): make the data available (download), else DataError
    validate: typing.Callable  # (data_dir, split): check the files before TensorFlow runs
    read: typing.Callable  # (data_dir, split, batch_size, **options) -> tf.data.Dataset
    num_examples: typing.Callable  # (data_dir, split, val_size) -> int
    class_names: typing.Callable  # (data_dir) -> [name of class 0, ...]
    num_classes: typing.Callable  # (data_dir) -> int: call it, a folder's depends on its data
    # (data_dir) -> the val_size to use when none is given: a tenth of the training images
    default_val_size: typing.Callable
    # (data_dir, split, val_size) -> a name for each image, in the order ``read`` gives them
    image_names: typing.Callable


SOURCES = {
    "cifar10": Source(maybe_download, validate, read_cifar10, num_examples, class_names,
                      lambda data_dir: NUM_CLASSES, lambda data_dir: cifar_val_size(data_dir),
                      record_names),
    # validate, num_examples and read also take skip_bad_images=True (leave bad images out).
    "folder": Source(prepare_folder, validate_folder, read_folder, folder_num_examples,
                     folder_class_names, folder_num_classes, lambda data_dir: None,
                     lambda data_dir, split, val_size=None, skip_bad_images=False: [
                         rel for rel, _, _ in _folder_split(data_dir, split, val_size,
                                                            skip_bad_images)]),
    # Every function takes crop_roi=True (cut each image to its annotated ROI: the official
    # layout only) and skip_bad_images=True (leave bad image files out; no effect on pickles).
    "gtsrb": Source(prepare_gtsrb, validate_gtsrb, read_gtsrb, gtsrb_num_examples,
                    gtsrb_class_names, gtsrb_num_classes,
                    lambda data_dir, crop_roi=False, skip_bad_images=False: None,
                    gtsrb_image_names),
}


def main(argv=None):
    p = cli.ArgumentParser(description="Download CIFAR-10, or draw a grid of a data set's images.")
    cli.add_flags(p, "dataset", "data-dir")
    p.add_argument("--download", action="store_true",
                   help="download, check and extract CIFAR-10 unless it is already there")
    p.add_argument("--show", action="store_true", help="write a PNG grid of images")
    cli.add_flags(p, "split", split="train")
    p.add_argument("--augment", action="store_true", help="--show augmented images")
    cli.add_flags(p, "val-size")
    p.add_argument("--out", default="cifar10_samples.png", help="where --show writes the PNG")
    args = p.parse_args(argv)
    if not (args.download or args.show):
        p.error("say --download, --show or both")
    if args.download and args.dataset != "cifar10":
        p.error("--download fetches CIFAR-10; a folder of images is yours to put in place")
    try:
        if args.download:
            print(f"CIFAR-10 is in {maybe_download(args.data_dir)}")
        if args.show:
            source = SOURCES[args.dataset]  # (nothing is downloaded to draw a grid)
            val_size = (source.default_val_size(args.data_dir) if args.val_size is None
                        else args.val_size)
            save_grid(args.data_dir, args.split, args.out, args.augment, val_size,
                      dataset=args.dataset)
            print(f"wrote {args.out}")
    except DataError as e:
        print(f"input_data.py: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. --out in a folder that does not exist
        print(f"input_data.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

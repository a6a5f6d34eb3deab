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
"""

import concurrent.futures
import hashlib
import io
import os
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
                 image_size=IMAGE_SIZE, repeat=False, seed=None, val_size=VAL_EXAMPLES):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split.

    Deterministic pipelines (``shuffle=False``) keep the last partial batch, so every record
    comes exactly once a pass; shuffled ones drop it. ``augment`` (for training) pads, crops and
    mirrors at random; ``image_size`` other than 32 then resizes bilinearly; ``preprocess`` is
    ``vgg`` (BGR minus the ImageNet mean), ``standardize`` (CIFAR mean and std per channel) or
    ``none`` (RGB 0..255). ``seed`` fixes the shuffling and augmentation. Works eagerly and in a
    ``tf.compat.v1`` graph. The files are validated first (DataError); nothing is downloaded.
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

_checked = {}  # path -> ((size, mtime_ns), (decoder or None, reason)): what _check_image found
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


def _pool(data_dir, split):
    """(layout, [(rel path, label)] sorted by path) of the images split draws from: test/ or
    the test-hashed files for ``test``, train/ or the others for the other splits."""
    layout = folder_layout(data_dir)
    files, empty = _class_files(layout.train_root, layout.classes, data_dir)
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
    if layout.test_root is not None:
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
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt, mode = image.format, image.mode
            image.verify()  # checksums, where the format has them
        with Image.open(path) as image:  # verify() leaves the image unusable
            if fmt == "JPEG":  # decode at 1/8 scale: still reads all of the data
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except OSError as e:
        if e.strerror:  # cannot read the file at all
            return None, f"cannot be read: {e.strerror}"
        return None, _reason(e)
    except Exception as e:  # Pillow raises many kinds on corrupt data
        return None, _reason(e)
    tf_decodes = fmt in ("JPEG", "PNG", "GIF") or (fmt == "BMP" and mode in ("RGB", "RGBA"))
    return ("tf" if tf_decodes else "pillow"), None


def _reason(error):
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"corrupt: {text[:80]}"


def _check_all(paths):
    """_check_image of each path, remembered for its size and modification time; new files are
    opened in threads (Pillow decodes without holding the GIL)."""
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
            results = list(pool.map(_check_image, todo))
    else:
        results = [_check_image(path) for path in todo]
    for path, result in zip(todo, results):
        if stamps[path] is not None:
            _checked[path] = (stamps[path], result)
        else:
            _checked.pop(path, None)
    found = dict(zip(todo, results))
    return [found[p] if p in found else _checked[p][1] for p in paths]


def _checked_pool(data_dir, split, skip_bad_images):
    """[(rel path, label, decoder)] of the good images of split's pool (see _pool)."""
    layout, pool = _pool(data_dir, split)
    results = _check_all([os.path.join(data_dir, p) for p, _ in pool])
    bad = [f"{os.path.join(data_dir, p)} ({reason})"
           for (p, _), (_, reason) in zip(pool, results) if reason]
    root = layout.test_root if split == "test" and layout.test_root else layout.train_root
    which = "test" if split == "test" else "trainval"  # train and val come out of trainval
    if bad and not skip_bad_images:
        raise DataError(f"{len(bad)} of the {len(pool)} {which} images in {root} are unreadable "
                        f"or corrupt: {_few(bad)}; fix or remove them, or pass {SKIP_FLAG} to "
                        "leave them out")
    if bad:
        key = (os.path.abspath(root), which, tuple(bad))
        if key not in _reported:  # once for train, val and trainval
            _reported.add(key)
            print(f"{SKIP_FLAG}: leaving out {len(bad)} of the {len(pool)} {which} images in "
                  f"{root} (unreadable or corrupt): {_few(bad)}")
    return [(p, label, decoder) for (p, label), (decoder, _) in zip(pool, results) if decoder]


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
                image_size=None, repeat=False, seed=None, val_size=None, skip_bad_images=False):
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
    total = len(files)
    # Relative paths (short constants in the graph), joined to DATA_DIR in the map.
    rel = np.array([os.fsencode(p) for p, _, _ in files], dtype=object)
    labels = np.array([label for _, label, _ in files], np.int32)
    by_pillow = np.array([decoder == "pillow" for _, _, decoder in files])
    prefix = os.fsencode(os.path.join(data_dir, ""))
    if by_pillow.all() or not by_pillow.any():  # one decoder: no tf.cond
        data = tf.data.Dataset.from_tensor_slices((rel, labels))
        single = bool(by_pillow[0])
    else:
        data = tf.data.Dataset.from_tensor_slices((rel, labels, by_pillow))
        single = None

    def load(path, label, pillow=None):
        contents = tf.io.read_file(tf.strings.join([prefix, path]))
        image = decode_file(contents, single if single is not None else pillow)
        return resize(image, image_size), label

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

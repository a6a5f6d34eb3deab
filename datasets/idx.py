"""What MNIST and Fashion-MNIST share (datasets/mnist.py, datasets/fashion_mnist.py, each a
data source of its own): their four IDX files, read and checked, downloaded, split and read
into tf.data. Each function takes the data set's module first (``source``: its NAME, TITLE,
URL, MD5, BYTES, AUGMENT and ``mirrors``); ``publish`` records a data set's module, so that a
file of one is refused in another's place.

Both are four files in DATA_DIR itself, each gzip-compressed as published or uncompressed
(the same name without .gz; where both are there the .gz is read):

    train-images-idx3-ubyte.gz  magic 2051, N, 28, 28 (32-bit big-endian), then N*28*28 pixels
    train-labels-idx1-ubyte.gz  magic 2049, N, then N label bytes 0..9
    t10k-images-idx3-ubyte.gz   the same for the 10,000 test images
    t10k-labels-idx1-ubyte.gz

The pixels are grey, one byte each, rows top to bottom; images come out uint8 HWC with the grey
value in all three channels (so every network, and its ImageNet weights, takes them), resized
to ``image_size`` (default 32; AlexNet's is 67 or more). Both data sets' files have the same
names: give each its own --data-dir (a file of the other, known by its size and MD5, is
refused).

Splits: ``val`` is the last ``val_size`` training images (None: a tenth, 6,000 of 60,000),
``train`` the ones before them, ``trainval`` all of them, ``test`` the t10k files. Training
needs only the train files; only ``test`` (evaluate.py) needs t10k.

``maybe_download`` (a source's ``prepare``) downloads the four files into DATA_DIR when none of
them is there (when some are, ``validate`` names the missing ones): each with
tf.keras.utils.get_file to NAME.part, checked for its size and MD5 (the official ones, as
torchvision publishes them), then all four renamed into place, so an interrupted run leaves
only .part files, which the next run checks and reuses or fetches again. A file under one of
the four names is never deleted or overwritten. ``validate`` checks the IDX headers (magic
numbers, 28x28, counts matching each other and the length of the data) and the labels before
TensorFlow runs; every problem is one DataError naming the file and what to do. ``read`` parses
the files with NumPy once a process (remembered for each file's size and modification time)
and keeps the pixels out of the graph: the indices are in it, the pixels are fetched by
``tf.numpy_function``.
"""

import gzip
import hashlib
import os
import struct
import urllib.error
import zlib

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import image_files
from datasets import pipeline

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
ALL_FILES = TRAIN_FILES + TEST_FILES
PARTIAL = ".part"  # our download of NAME is NAME.part until its size and MD5 matched

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
ROWS = COLS = 28
CHANNELS = base.CHANNELS
NUM_CLASSES = 10
READ_CHUNK = 1 << 20

DataError = base.DataError

_parsed = {}  # absolute path -> ((size, mtime_ns), uint8 array): what _parse found
_published = []  # the IDX data sets' modules (publish): none's file taken for another's


class _Bad(Exception):
    """What is wrong with an IDX file (the DataError adds its path and what to do)."""


def raw_name(name):
    """The uncompressed file's name: NAME without .gz."""
    return name[:-len(".gz")]


def find(data_dir, name):
    """DATA_DIR/NAME (gzip) if anything is there under that name, else DATA_DIR/NAME without
    .gz if that is, else None."""
    for path in (os.path.join(data_dir, name), os.path.join(data_dir, raw_name(name))):
        if os.path.lexists(path):
            return path
    return None


def _md5(path):
    """The MD5 of a file as hex, read in 1 MB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_at_most(f, limit):
    """Up to LIMIT bytes of an open file, read in chunks (a header claiming billions of
    images allocates nothing)."""
    chunks, total = [], 0
    while total < limit:
        chunk = f.read(min(READ_CHUNK, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _parse_open(f, kind, compressed):
    """The uint8 array of an open IDX file of KIND ("images": [N, 28, 28], "labels": [N]);
    _Bad when its header or length is wrong."""
    magic_wanted, ndim = (IMAGES_MAGIC, 3) if kind == "images" else (LABELS_MAGIC, 1)
    header_size = 4 * (1 + ndim)
    head = f.read(header_size)
    unpacked = " uncompressed" if compressed else ""
    if len(head) < header_size:
        raise _Bad(f"{len(head)} bytes{unpacked}, shorter than the {header_size}-byte IDX "
                   f"header of {kind} (empty or truncated)")
    magic, count, *shape = struct.unpack(f">{1 + ndim}I", head)
    if magic != magic_wanted:
        hint = (" (it is gzip-compressed: its name must end in .gz)"
                if not compressed and head[:2] == b"\x1f\x8b" else "")
        raise _Bad(f"magic number {magic}, not {magic_wanted}{hint}: this is not an IDX file "
                   f"of {kind}")
    if shape and tuple(shape) != (ROWS, COLS):
        raise _Bad(f"its header says {shape[0]}x{shape[1]} images, not {ROWS}x{COLS}")
    if count == 0:
        raise _Bad(f"its header says 0 {kind}")
    expected = count * (ROWS * COLS if shape else 1)
    if not compressed:  # (the length is known without reading)
        size = os.fstat(f.fileno()).st_size
        if size != header_size + expected:
            how = "truncated" if size < header_size + expected else "too long"
            raise _Bad(f"{size} bytes, but the header's {count} {kind} take "
                       f"{header_size + expected} ({how})")
    body = _read_at_most(f, expected + 1)
    if len(body) < expected:
        raise _Bad(f"truncated: the header says {count} {kind} ({expected} bytes{unpacked}), "
                   f"only {len(body)} bytes follow")
    if len(body) > expected:
        raise _Bad(f"more than the {expected} bytes{unpacked} that the header's {count} {kind} "
                   "take")
    array = np.frombuffer(body, np.uint8)
    return array.reshape(count, ROWS, COLS) if shape else array


def parse(path, kind, fix):
    """The uint8 array of the IDX file at PATH (gzip when its name ends in .gz) of KIND:
    images [N, 28, 28] or labels [N] (checked to be 0..9); remembered for the file's size and
    modification time. DataError naming the file and ending in FIX (what to do)."""
    return image_files.remembered(_parsed, path, lambda p: _parse_file(p, kind, fix), fix)


def _parse_file(path, kind, fix):
    """``parse``'s reading and checking of the file at (absolute) PATH."""
    compressed = path.endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            array = _parse_open(f, kind, compressed)
    except _Bad as e:
        raise DataError(f"{path}: {e}; {fix}") from None
    except EOFError:
        raise DataError(f"{path}: truncated (its gzip data ends early); {fix}") from None
    except gzip.BadGzipFile as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); {fix}, or give an "
                        "uncompressed file the name without .gz") from None
    except zlib.error as e:
        raise DataError(f"{path}: its gzip data is corrupt ({e}); {fix}") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); {fix}") from None
    if kind == "labels":
        bad = np.flatnonzero(array >= NUM_CLASSES)
        if bad.size:
            raise DataError(f"{path}: label {array[bad[0]]} at index {bad[0]}, not 0..9 "
                            f"({bad.size} such labels); the file is corrupt: {fix}")
    return array



def publish(source):
    """Record SOURCE, a data set's module, among the IDX data sets: a file of its (its size and
    MD5 in BYTES and MD5) is then refused in another's DATA_DIR. Returns SOURCE."""
    if source not in _published:
        _published.append(source)
    return source


def _fix(source, *names):
    """What to do about bad files NAMES of SOURCE: put the official ones in their place."""
    if len(names) == 1:
        return f"replace it with {source.TITLE}'s {names[0]} ({source.URL}{names[0]})"
    return (f"replace them with {source.TITLE}'s {' and '.join(names)} (from {source.URL})")


# ----------------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------------

def maybe_download(source, data_dir, url=None, md5=None, sizes=None):
    """Return DATA_DIR, first downloading SOURCE's four files into it if it holds none of them
    (gzip or uncompressed; when it holds some, ``validate`` reports the missing ones).

    ``url`` is the folder the files are fetched from (default: the official one, source.URL),
    ``md5`` and ``sizes`` map each file name to its MD5 and size in bytes (default: the official
    ones, source.MD5 and source.BYTES; a name left out or None is not checked for it). Each file
    goes to NAME.part, where a leftover of an earlier run is used without a request if it
    matches its size and MD5 (else fetched again); a fresh download that does not match is
    deleted (DataError). The four get their names once all of them are there. Raises DataError
    when offline."""
    url = source.URL if url is None else url
    md5 = source.MD5 if md5 is None else md5
    sizes = source.BYTES if sizes is None else sizes
    if any(find(data_dir, name) for name in ALL_FILES):
        return data_dir
    data_dir = os.path.abspath(data_dir)
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {data_dir} ({e.strerror}); choose another "
                        "--data-dir") from None
    if not os.access(data_dir, os.W_OK):  # get_file would silently use /tmp/.keras instead
        raise DataError(f"cannot write to {data_dir}; choose another --data-dir")
    partials = [_fetch(source, data_dir, name, url + name, md5.get(name), sizes.get(name))
                for name in ALL_FILES]
    for name, partial in zip(ALL_FILES, partials):
        os.replace(partial, os.path.join(data_dir, name))
    print(f"{source.TITLE} downloaded to {data_dir}")
    return data_dir


def _mismatch(path, md5, size):
    """How the file at PATH differs from SIZE bytes and MD5 (None: not checked), or None."""
    found = os.path.getsize(path)
    if size is not None and found != size:
        return f"is {found} bytes, not {size}"
    if md5 is not None:
        digest = _md5(path)
        if digest != md5:
            return f"has MD5 {digest}, not {md5}"
    return None


def _fetch(source, data_dir, name, url, md5, size):
    """DATA_DIR/NAME.part: a leftover one used if it matches MD5 (and SIZE), else URL fetched
    to it with get_file and checked; DataError if it does not match or when offline."""
    partial = os.path.join(data_dir, name + PARTIAL)
    if os.path.isfile(partial):  # ours, from an interrupted run
        if md5 is not None and _mismatch(partial, md5, size) is None:
            return partial
        os.remove(partial)
    print(f"{source.TITLE} is not in {data_dir}: getting {url}")
    try:
        tf.keras.utils.get_file(name + PARTIAL, url, cache_dir=data_dir, cache_subdir="")
    except Exception as e:  # get_file re-raises URLError and HTTPError as a bare Exception
        if not isinstance(e, OSError) and not isinstance(e.__context__, urllib.error.URLError):
            raise
        raise DataError(f"cannot download {source.TITLE} ({e}). Put {', '.join(ALL_FILES)} "
                        f"(gzip, or uncompressed without .gz) into {data_dir}") from None
    problem = _mismatch(partial, md5, size)
    if problem:
        os.remove(partial)  # our own corrupt download
        raise DataError(f"the file downloaded from {url} {problem}; it was deleted: run "
                        "again to fetch it anew")
    return partial


# ----------------------------------------------------------------------------------------------
# The files of a split
# ----------------------------------------------------------------------------------------------

def _path(source, data_dir, name, split):
    """The file of NAME in DATA_DIR (gzip or not), checked to be a regular file that is not
    another published data set's; DataError if it is not there."""
    path = find(data_dir, name)
    gz, raw = os.path.join(data_dir, name), os.path.join(data_dir, raw_name(name))
    if path is None:
        others = [n for n in ALL_FILES if find(data_dir, n)]
        also = (f" ({', '.join(others)} of the four are there: put the others next to them, "
                "or remove them all so that all four are downloaded)" if others else "")
        needed = "the test split (t10k)" if split == "test" else f"the {split} split"
        raise DataError(f"{gz} is missing (and so is {raw}); {needed} needs it: put "
                        f"{source.TITLE}'s {name} ({source.URL}{name}) there{also}")
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder, not an IDX file; remove it and put "
                        f"{source.TITLE}'s {name} ({source.URL}{name}) there")
    if not os.path.exists(path):
        raise DataError(f"{path} cannot be read (a broken or looping link?); "
                        f"{_fix(source, name)}")
    if not os.path.isfile(path):
        raise DataError(f"{path} is not a regular file; {_fix(source, name)}")
    for other in _published:
        if (other is not source and path == gz and other.BYTES.get(name) is not None
                and os.path.getsize(path) == other.BYTES[name]
                and _md5(path) == other.MD5.get(name)):
            raise DataError(f"{path} is {other.TITLE}'s {name} (its size and MD5), not "
                            f"{source.TITLE}'s: the two have the same file names; keep "
                            f"each in its own --data-dir")
    return path


def _arrays(source, data_dir, split):
    """(images file, labels file, images uint8 [N, 28, 28], labels uint8 [N]) a split draws
    from: the train files, or t10k for test; each checked (DataError)."""
    base.check_split(split)
    if not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"no {source.TITLE} in {data_dir}: it {what}; run train_and_val.py "
                        f"--dataset {source.NAME} --data-dir {data_dir} to download it, or "
                        f"put {', '.join(ALL_FILES)} there")
    names = TEST_FILES if split == "test" else TRAIN_FILES
    images_path = _path(source, data_dir, names[0], split)
    images = parse(images_path, "images", _fix(source, names[0]))
    labels_path = _path(source, data_dir, names[1], split)
    labels = parse(labels_path, "labels", _fix(source, names[1]))
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} "
                        f"{len(labels)} labels: they are not a pair; {_fix(source, *names)}")
    return images_path, labels_path, images, labels


def _range(source, data_dir, split, val_size):
    """(images file, images, labels, start, stop): the split is images[start:stop]."""
    path, _, images, labels = _arrays(source, data_dir, split)
    total = len(labels)
    if split not in ("train", "val"):
        return path, images, labels, 0, total
    val_size = max(1, total // 10) if val_size is None else val_size
    if not 0 < val_size < total:
        raise DataError(f"val_size (--val-size) {val_size} must be between 1 and "
                        f"{total - 1}: the training files of {data_dir} hold {total} "
                        "images")
    start, stop = (0, total - val_size) if split == "train" else (total - val_size, total)
    return path, images, labels, start, stop


# ----------------------------------------------------------------------------------------------
# The sources' functions (each data set's module checks its options, then calls these)
# ----------------------------------------------------------------------------------------------

def validate(source, data_dir, split):
    """The paths of the two files a split needs, checked before any TensorFlow runs: there
    (gzip or not), IDX images and labels of the same count, 28x28, as long as their headers say,
    every label in 0..9; DataError."""
    return list(_arrays(source, data_dir, split)[:2])


def num_examples(source, data_dir, split, val_size=None):
    """How many images a split has (after validating its files)."""
    _, _, _, start, stop = _range(source, data_dir, split, val_size)
    return stop - start


def image_names(source, data_dir, split, val_size=None):
    """``file:index`` of every image of a split (the index in its file), in read's order."""
    path, _, _, start, stop = _range(source, data_dir, split, val_size)
    return [f"{os.path.basename(path)}:{index}" for index in range(start, stop)]


def class_counts(source, data_dir, split, val_size=None):
    """How many images of each class (in label order) a split has, from its labels."""
    _, _, labels, start, stop = _range(source, data_dir, split, val_size)
    return np.bincount(labels[start:stop], minlength=NUM_CLASSES).tolist()


def default_val_size(source, data_dir):
    """A tenth of the training images: 6,000 of the full 60,000, fewer for a smaller set."""
    return max(1, len(_arrays(source, data_dir, "trainval")[3]) // 10)


def read(source, data_dir, split, batch_size, shuffle, augment, preprocess, image_size, repeat,
         seed, val_size, shard, resize, scale_jitter):
    """The tf.data.Dataset of a split that SOURCE's ``read`` documents: the grey images in all
    three channels, through ``pipeline.pipeline`` (augment=True: source.AUGMENT, the flips
    following source.mirrors)."""
    image_size = base.IMAGE_SIZE if image_size is None else image_size
    base.check_read_arguments(preprocess, batch_size, image_size, resize, scale_jitter)
    _, images, labels, start, stop = _range(source, data_dir, split, val_size)
    # Indices in the graph, the pixels fetched from the array in the map: the images never
    # become graph constants (a checkpoint's .meta file would carry them).
    data = tf.data.Dataset.from_tensor_slices({
        "index": np.arange(start, stop), "label": labels[start:stop].astype(np.int32)})

    def load(item):
        grey = tf.numpy_function(lambda index: images[index], [item["index"]], tf.uint8,
                                 stateful=False)
        grey.set_shape([ROWS, COLS])
        return tf.image.grayscale_to_rgb(grey[:, :, None]), item["label"]

    return pipeline.pipeline(
        data, load, stop - start, batch_size, shuffle, augment, preprocess, image_size,
        repeat, seed, shard, resize_mode=resize, scale_jitter=scale_jitter,
        default_augment=source.AUGMENT, mirrors=source.mirrors(data_dir))

"""Cached codes: the files extract_codes.py writes and the tf.data pipeline that reads them back.

A codes folder holds ``<split>.npz`` (``codes`` float32 [N, D], ``labels`` int [N], ``files``
str [N]) for each split the data set has, and ``manifest.json`` saying what made them: network,
layer, image size, preprocessing, the weights file (its path and SHA-256), the data set, its
validation share, class names and a fingerprint of the images. The manifest is written last, so
a folder without one holds no codes to trust.

    manifest = codes.read_manifest("codes/flowers")
    values, labels, files = codes.load("codes/flowers", "train")
    dataset = codes.dataset(values, labels, batch_size=128, shuffle=True, repeat=True)
"""

import hashlib
import os
import zipfile

import numpy as np
import tensorflow as tf

from common.cli import UsageError
from common.json_files import read_json
from datasets import pipeline
import nets

MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
# Manifest entries that say where things are, not what the codes are: moving the weights file
# or the images does not make the codes stale (their SHA-256 and fingerprint say when it does).
WHERE = ("weights_file", "data_dir", "splits")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(data_dir, leave_out=()):
    """SHA-256 of every file's path, size and modification time under ``data_dir`` (not under
    the folders ``leave_out``: the codes' own, when they are written inside it)."""
    digest = hashlib.sha256()
    leave_out = {os.path.abspath(p) for p in leave_out}
    for folder, dirs, names in sorted(os.walk(data_dir)):
        dirs[:] = sorted(d for d in dirs
                         if os.path.abspath(os.path.join(folder, d)) not in leave_out)
        for name in sorted(names):
            path = os.path.join(folder, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, data_dir)}\0{stat.st_size}\0"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def same_codes(old, new):
    """Whether two manifests describe the same codes (wherever the files now are)."""
    return ({k: v for k, v in old.items() if k not in WHERE}
            == {k: v for k, v in new.items() if k not in WHERE})


def read_manifest(codes_dir, flag="--codes"):
    """The manifest of a complete codes folder; UsageError naming the flag otherwise, or
    naming what in it is not what extract_codes.py writes."""
    path = os.path.join(codes_dir, MANIFEST)
    if not os.path.isfile(path):
        raise UsageError(f"{flag} {codes_dir}: no {MANIFEST} there (no codes, or an extraction "
                         "that did not finish); make them with extract_codes.py --out "
                         f"{codes_dir}")
    manifest = read_json(path)
    needed = ("network", "layer", "image_size", "class_names", "splits")
    again = "make the codes again with extract_codes.py"
    if not isinstance(manifest, dict) or any(k not in manifest for k in needed):
        raise UsageError(f"{path} is not a manifest extract_codes.py wrote; {again}")
    network = nets.NETWORKS.get(manifest["network"]) if isinstance(manifest["network"], str) \
        else None
    names, splits = manifest["class_names"], manifest["splits"]
    problem = (
        f"network {manifest['network']!r} is not one of nets.py's" if network is None else
        f"layer {manifest['layer']!r} is not a code layer of {network.name} "
        f"({', '.join(network.code_layers)})" if not isinstance(manifest["layer"], str)
        or manifest["layer"] not in network.code_layers
        else f"image_size {manifest['image_size']!r} is not a side"
        if not isinstance(manifest["image_size"], int) or manifest["image_size"] < 1 else
        "class_names is not a list of at least two names"
        if not isinstance(names, list) or len(names) < 2 or not all(
            isinstance(n, str) for n in names) else
        "splits is not a count of codes for each split"
        if not isinstance(splits, dict) or not all(
            s in SPLITS and isinstance(n, int) for s, n in splits.items()) else None)
    if problem:
        raise UsageError(f"{path}: {problem}; {again}")
    return manifest


def load(codes_dir, split, flag="--codes", num_classes=None):
    """``(codes, labels, files)`` of one split; UsageError when the split is not there, or its
    file is damaged (truncated, say), or has labels beyond ``num_classes``."""
    path = os.path.join(codes_dir, f"{split}.npz")
    again = "make them again with extract_codes.py"
    try:
        with np.load(path, allow_pickle=False) as data:
            values, labels, files = data["codes"], data["labels"], data["files"]
    except FileNotFoundError:
        raise UsageError(f"{flag} {codes_dir} has no {split} codes ({split}.npz); the data set "
                         f"had no {split} split when they were made") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise UsageError(f"{path}: not codes extract_codes.py wrote, or damaged ({e}); "
                         f"{again}") from None
    if (values.ndim != 2 or labels.ndim != 1 or labels.dtype.kind not in "iu"
            or values.dtype.kind != "f" or len(values) != len(labels) or len(files) != len(labels)):
        raise UsageError(f"{path}: codes, labels and files are not of the shapes and kinds "
                         f"extract_codes.py writes; {again}")
    if num_classes is not None and len(labels) and not (
            0 <= labels.min() and labels.max() < num_classes):
        raise UsageError(f"{path}: labels from {labels.min()} to {labels.max()}, where the "
                         f"manifest has {num_classes} classes; {again}")
    return values.astype(np.float32, copy=False), labels.astype(np.int64), files


def _count(codes_dir, split):
    """How many codes a split's file holds, read from its labels and the header of its codes
    (not the codes themselves, which can be gigabytes): None where they do not agree."""
    with np.load(os.path.join(codes_dir, f"{split}.npz"), allow_pickle=False) as data:
        labels, files = data["labels"], data["files"]
        with data.zip.open("codes.npy") as f:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
    agree = (labels.ndim == 1 and labels.dtype.kind in "iu" and dtype.kind == "f"
             and len(shape) == 2 and shape[0] == len(labels) == len(files))
    return len(labels) if agree else None


def intact(codes_dir):
    """The manifest of ``codes_dir`` when it and every split it lists are there with the counts
    it gives (a truncated file has lost its zip directory), else None: codes that are not
    intact are made again."""
    try:
        manifest = read_manifest(codes_dir)
        for split, count in manifest["splits"].items():
            if _count(codes_dir, split) != count:
                return None
    except Exception:  # noqa: BLE001 (whatever cannot be read back is made again)
        return None
    return manifest


def dataset(values, labels, batch_size, shuffle=False, repeat=False, seed=0):
    """A ``tf.data.Dataset`` of ``(codes, labels)`` batches. The arrays stay in NumPy and each
    batch is gathered from them by position, so codes of any size go through without becoming
    a constant of the graph (which is limited to 2 GB)."""
    count, width = values.shape

    def gather(positions):
        return values[positions], labels[positions]

    positions = tf.data.Dataset.range(count)
    if shuffle:
        positions = positions.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        positions = positions.repeat()
    batches = positions.batch(pipeline.whole_batch(batch_size, None if repeat else count)).map(
        lambda p: tf.numpy_function(gather, [p], (tf.float32, tf.int64), stateful=False))
    return batches.map(lambda c, l: (tf.ensure_shape(c, [None, width]),
                                     tf.ensure_shape(l, [None]))).prefetch(2)

"""The embedding projector for cached codes: what TensorBoard's projector plugin reads, written
into a codes folder by ``extract_codes.py --projector``, so that ``tensorboard --logdir
CODES_DIR`` shows the images of one split placed by the network's codes.

    CODES_DIR/projector_config.pbtxt     the plugin's ProjectorConfig (tensorboard's own
                                         protobuf): the tensor's name, metadata.tsv, sprite.png
    CODES_DIR/projector.ckpt.*           a checkpoint of one float32 variable [N, D], the codes
    CODES_DIR/checkpoint                 of the N images shown, named LAYER_SPLIT (fc6_test)
    CODES_DIR/metadata.tsv               a header row (file, class), then a row per image
    CODES_DIR/sprite.png                 each image's thumbnail, row by row, in the same order
    CODES_DIR/projector.json             what made them: the codes' manifest, split, count

Every path is relative to the codes folder (the config names no checkpoint: the plugin finds it
through ``checkpoint``), so the folder can be moved. A split of more than ``maximum`` images
gives a sample of that many, the images of smallest ``path_hash("projector:" + file)`` kept in
the split's order: the same ones every run, and a smaller maximum takes part of a larger one's.
The thumbnails are the images as the data set's reader gives them to the network (GTSRB's
``--crop-roi`` included), RGB without preprocessing, at a side of at most 64 pixels and of the
codes' image size that keeps the sprite within TensorBoard's 8192x8192 pixels. Tabs and line
breaks in names become spaces in metadata.tsv. The files are made in a temporary folder; then
the old projector's files are removed (the config and record first), the new ones renamed into
place, the config after the others and the record last: a projector whose record is missing or
says otherwise is made again.

    record, written = projector.write(codes_dir, manifest, "test", 2000, source, data_dir)
"""

import json
import math
import os
import re
import shutil

from google.protobuf import text_format
import numpy as np
from tensorboard.plugins import projector as tb_projector
import tensorflow as tf

from common import cli
from common import files as written
from common import json_files
from common.progress import Progress
from datasets import base
from datasets import image_files
from inference import codes
import model

tf1 = tf.compat.v1

DEFAULT_MAX = 2000  # images in the projector unless --projector-max says otherwise
SPRITE_LIMIT = 8192  # the largest sprite side TensorBoard's projector takes, in pixels
MAX_SIDE = 64  # the largest thumbnail side
MIN_SIDE = 8  # the smallest: the most images a projector takes is (8192 / 8) ** 2
MAX_POINTS = (SPRITE_LIMIT // MIN_SIDE) ** 2
SPLIT_ORDER = ("test", "val", "train")  # the first the codes have is the default
SALT = "projector:"  # of the sample's hash (not the splits' own)

CONFIG = tb_projector.metadata.PROJECTOR_FILENAME  # projector_config.pbtxt
CHECKPOINT = "projector.ckpt"
STATE = "checkpoint"  # where tf.train.latest_checkpoint (and so the plugin) finds it
METADATA = "metadata.tsv"
SPRITE = "sprite.png"
RECORD = "projector.json"
PART = ".projector.part"  # the folder a new projector is made in
# What str.splitlines breaks a line at, and the tab: none may reach a row of metadata.tsv
_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def choose_split(splits, asked=None, flag="--projector-split"):
    """The split the projector shows: ``asked``, which must be one of ``splits`` (those the codes
    have; UsageError otherwise), or the first of test, val and train there is."""
    if asked is None:
        asked = next((split for split in SPLIT_ORDER if split in splits), "train")
    if asked not in splits:
        raise cli.UsageError(f"{flag} {asked}: the data set has no {asked} split here; choose "
                             f"{' or '.join(s for s in codes.SPLITS if s in splits)}")
    return asked


def sample(files, maximum):
    """The positions (sorted) of at most ``maximum`` of ``files``: those of smallest
    ``path_hash(SALT + file)`` (ties by name), the same ones whatever order the files are in."""
    ranked = sorted(range(len(files)), key=lambda i: (
        image_files.path_hash(str(files[i]), SALT), str(files[i])))
    return np.sort(np.array(ranked[:maximum], np.int64))


def sprite_grid(count):
    """(columns, rows) of the sprite of ``count`` thumbnails: as many columns as the square
    root, rounded up, and the rows they need."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return columns, max(1, math.ceil(count / columns))


def thumbnail_side(count, image_size):
    """The side of each of ``count`` thumbnails: at most MAX_SIDE, the codes' image size, and
    what keeps the sprite within SPRITE_LIMIT pixels."""
    return max(1, min(MAX_SIDE, image_size, SPRITE_LIMIT // sprite_grid(count)[0]))


def clean(text):
    """``text`` with its tabs and line breaks turned to spaces: one cell of a TSV row."""
    return _BREAKS.sub(" ", str(text))


def metadata_text(files, labels, class_names):
    """metadata.tsv: the header, then file and class name of each point, tab-separated."""
    return "".join(["file\tclass\n"] + [f"{clean(f)}\t{clean(class_names[label])}\n"
                                          for f, label in zip(files, labels)])


def sprite(images, side):
    """uint8 [rows * side, columns * side, 3]: ``images`` (uint8 [N, side, side, 3]) row by
    row from the top left, the cells after the last one black."""
    columns, rows = sprite_grid(len(images))
    sheet = np.zeros((rows * side, columns * side, 3), np.uint8)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        sheet[row * side:(row + 1) * side, column * side:(column + 1) * side] = image
    return sheet


def thumbnails(source, data_dir, split, keep, labels, side, batch_size, val_size=None,
               options=None):
    """uint8 RGB [len(keep), side, side, 3]: the images at positions ``keep`` (sorted) of a
    split, read by ``source.read`` (resized to ``side``, preprocess "none": RGB 0..255) in the
    order of ``source.image_names``, the order of the codes; ``labels`` are the codes' own, to
    check that the images are those the codes were made of."""
    wanted = np.zeros(len(labels), bool)
    wanted[keep] = True
    found, seen = [], 0
    with tf.Graph().as_default():
        images, read_labels, iterator = model.inputs(lambda: source.read(
            data_dir, split, batch_size, preprocess="none", image_size=side, val_size=val_size,
            **(options or {})), initializable=True)
        with tf1.Session() as session:
            session.run(iterator.initializer)
            with Progress(f"{split} thumbnails", len(labels)) as progress:
                for batch, batch_labels in model.each_batch(session, [images, read_labels]):
                    end = seen + len(batch)
                    if end > len(labels) or np.any(batch_labels != labels[seen:end]):
                        break
                    kept = np.rint(batch[wanted[seen:end]])
                    found.append(np.clip(kept, 0, 255).astype(np.uint8))
                    seen = end
                    progress.update(seen)
    if seen != len(labels):
        raise base.DataError(f"the {split} images of {data_dir} are not those its codes "
                                      "were made of (they changed meanwhile?); run again")
    return np.concatenate(found)


def write_checkpoint(folder, name, values):
    """``folder``/projector.ckpt.* holding ``values`` as the variable ``name``, and its
    ``checkpoint`` state naming it relative to the folder."""
    with tf.Graph().as_default(), tf.device("/cpu:0"):
        value = tf1.placeholder(tf.float32, values.shape)
        variable = tf1.Variable(value, name=name, trainable=False)
        saver = tf1.train.Saver({name: variable}, save_relative_paths=True)
        with tf1.Session() as session:
            session.run(variable.initializer, {value: values})
            saver.save(session, os.path.join(folder, CHECKPOINT), write_meta_graph=False)


def config_text(tensor_name, side):
    config = tb_projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.metadata_path = METADATA
    embedding.sprite.image_path = SPRITE
    embedding.sprite.single_image_dim.extend([side, side])
    return text_format.MessageToString(config)


def read_record(codes_dir):
    """The record of the projector in ``codes_dir`` (a dict), or None: none, or unreadable."""
    try:
        with open(os.path.join(codes_dir, RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def current(codes_dir, manifest, split, count):
    """Whether ``codes_dir`` holds the projector of ``count`` images of ``split`` of the codes
    ``manifest`` describes, every file of it there."""
    record = read_record(codes_dir)
    return bool(record and isinstance(record.get("manifest"), dict)
                and codes.same_codes(record["manifest"], manifest)
                and record.get("split") == split and record.get("count") == count
                and isinstance(record.get("files"), list)
                and all(isinstance(name, str) and os.path.isfile(os.path.join(codes_dir, name))
                        for name in record["files"]))


def ours(name):
    """Whether a file name in a codes folder is one of a projector's (never the codes')."""
    return name in (CONFIG, STATE, METADATA, SPRITE, RECORD) or name.startswith(CHECKPOINT + ".")


def remove(codes_dir):
    """Remove the projector files of ``codes_dir`` (the config and record first); the codes and
    anything else stay."""
    names = [CONFIG, RECORD] + sorted(n for n in os.listdir(codes_dir) if ours(n))
    for name in dict.fromkeys(names):
        path = os.path.join(codes_dir, name)
        if os.path.isfile(path):
            os.remove(path)


def discard(codes_dir):
    """Remove the projector of ``codes_dir`` if there is one (its record or config is there);
    True if there was."""
    if not any(os.path.isfile(os.path.join(codes_dir, name)) for name in (RECORD, CONFIG)):
        return False
    remove(codes_dir)
    return True


def remove_stale(codes_dir, manifest):
    """Remove a projector made of other codes than ``manifest``'s (it would show codes that are
    no longer there); True if there was one."""
    record = read_record(codes_dir)
    if record is None or (isinstance(record.get("manifest"), dict)
                          and codes.same_codes(record["manifest"], manifest)):
        return False
    remove(codes_dir)
    return True


def write(codes_dir, manifest, split, maximum, source, data_dir, batch_size=100,
          val_size=None, options=None):
    """Write the projector of at most ``maximum`` images of ``split`` of the codes in
    ``codes_dir`` (``manifest``: theirs, with its splits; the images of ``source`` in
    ``data_dir``, read in batches of ``batch_size``) unless it is there already. Returns its
    record, and whether it was written."""
    count = min(maximum, manifest["splits"][split])
    if current(codes_dir, manifest, split, count):
        return read_record(codes_dir), False
    values, labels, files = codes.load(codes_dir, split)
    keep = sample(files, maximum)
    side = thumbnail_side(len(keep), manifest["image_size"])
    images = thumbnails(source, data_dir, split, keep, labels, side, batch_size, val_size,
                        options)
    tensor_name = f"{manifest['layer']}_{split}"
    part = os.path.join(codes_dir, PART)
    shutil.rmtree(part, ignore_errors=True)  # (a killed run's)
    os.makedirs(part)
    with written.naming(codes_dir):  # (a write that fails names the codes' folder)
        try:
            write_checkpoint(part, tensor_name, values[keep])
            with open(os.path.join(part, METADATA), "w", encoding="utf-8",
                      errors="backslashreplace", newline="\n") as f:
                f.write(metadata_text(files[keep], labels[keep], manifest["class_names"]))
            from PIL import Image
            Image.fromarray(sprite(images, side)).save(os.path.join(part, SPRITE), format="PNG")
            with open(os.path.join(part, CONFIG), "w") as f:
                f.write(config_text(tensor_name, side))
            made = sorted(os.listdir(part))
            remove(codes_dir)  # the old projector, whole: a killed run leaves no mix of two
            for name in made:
                if name != CONFIG:
                    os.replace(os.path.join(part, name), os.path.join(codes_dir, name))
            os.replace(os.path.join(part, CONFIG), os.path.join(codes_dir, CONFIG))
        finally:
            shutil.rmtree(part, ignore_errors=True)
    record = {"split": split, "count": int(len(keep)), "of": int(len(files)), "side": side,
              "tensor_name": tensor_name, "files": made, "manifest": manifest}
    json_files.write_json(os.path.join(codes_dir, RECORD), record)
    return record, True

"""The tf.data pipelines of the data sources: batching, augmentation and preprocessing, and the
pipeline that reads image files.

Batches are ``(images float32 [B, S, S, 3], labels int32 [B])``. Deterministic pipelines
(``shuffle=False``) keep the last partial batch, so every image comes exactly once a pass;
shuffled ones drop it. ``augment_batch`` pads each image by 4 zero pixels, takes a random crop
of its own side and mirrors it with probability 1/2, each image drawn on its own from a
stateless seed that a stream fixed by ``seed`` gives each batch. ``preprocess_batch``: ``vgg``
(BGR minus the ImageNet mean, what the pretrained weights expect), ``standardize`` (the
per-channel CIFAR-10 mean and standard deviation), ``none`` (RGB 0..255);
``unprocess_batch`` is its inverse. ``scale_jitter=(MIN, MAX)`` (with ``augment``) replaces
the padded crop: each image's shorter side is rescaled to a random S in [MIN, MAX], its aspect
kept, then a random square of the image side is cut from it and mirrored with probability 1/2
(``jitter_crop``, the VGG paper's scale jittering). ``file_pipeline`` reads image files
(``image_files``) resized bilinearly (``resize``: ``squash`` to the square, or ``crop``, the
shorter side to the square's side and the central square of that) and caches the decoded images
of a split in memory when they fit in CACHE_BYTES.
"""

import os

import numpy as np
import tensorflow as tf

from datasets.base import AUGMENTATIONS
from datasets.base import CHANNELS
from datasets.base import CIFAR_MEAN_RGB
from datasets.base import CIFAR_STD_RGB
from datasets.base import JITTER_STREAM
from datasets.base import KEEP
from datasets.base import PAD
from datasets.base import check_read_arguments
from datasets.image_files import check_files
from datasets.image_files import decode_file
import tools

CACHE_BYTES = 1 << 30  # cache a split's decoded images (float32 S x S x 3) up to this size


# ----------------------------------------------------------------------------------------------
# Batches: augmentation and preprocessing
# ----------------------------------------------------------------------------------------------

def augmentations(augment, default=AUGMENTATIONS):
    """The augmentations a reader's ``augment`` asks for, a tuple of AUGMENTATIONS: False, None
    or "none" for none, True for the source's DEFAULT, or "crop,flip", "crop", ("flip",) ..."""
    if augment is True:
        return tuple(default)
    if not augment or augment == "none":
        return ()
    modes = tuple(augment.split(",")) if isinstance(augment, str) else tuple(augment)
    unknown = [m for m in modes if m not in AUGMENTATIONS]
    if unknown or len(set(modes)) != len(modes):
        raise ValueError(f"augment {augment!r}: give 'none' or some of {', '.join(AUGMENTATIONS)}"
                         ", each once")
    return modes


def augment_batch(images, seed, labels=None, crop=True, flip=True, mirrors=None):
    """A random crop of each image (square, side S: 32 for CIFAR-10) padded by 4 zero pixels,
    mirrored with probability 1/2, drawn per image from the stateless ``seed`` (shape [2]). Two
    gathers over the batch; S is the static side when known (it keeps the static shape).
    ``crop``/``flip`` False leave that part out. ``mirrors`` (a list: the class a mirrored
    image of each class shows, -1 for none) keeps the labels true: only images of a class with
    a mirror class are flipped, and their ``labels`` become it. Returns ``(images, labels)``."""
    batch = tf.shape(images)[0]
    side = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    crop_seed, flip_seed = tf.unstack(tf.random.split(seed, 2))
    offsets = tf.random.stateless_uniform([batch, 2], crop_seed, 0, 2 * PAD + 1, tf.int32)
    if not crop:
        offsets = tf.fill([batch, 2], PAD)
    flipped = tf.random.stateless_uniform([batch, 1], flip_seed, 0, 2, tf.int32) > 0
    flipped = tf.logical_and(flipped, flip)
    if mirrors is not None and flip:
        mirror_of = tf.gather(tf.constant(mirrors, labels.dtype), labels)
        flipped = tf.logical_and(flipped, (mirror_of >= 0)[:, None])
        labels = tf.where(flipped[:, 0], mirror_of, labels)
    steps = tf.range(side)[None, :]
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + tf.where(flipped, side - 1 - steps, steps)
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1), labels


def preprocess_batch(images, mode):
    """RGB 0..255 (float32, or uint8 as a TFLite model takes them) -> what the network reads,
    float32 (see ``PREPROCESS``)."""
    if mode == "vgg":
        return tools.vgg_preprocess(images)
    images = tf.cast(images, tf.float32)
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


def whole_batch(batch_size, total):
    """``batch_size``, or ``total`` when that is smaller and given: a batch as large as a data
    set that does not repeat (tf.data would first reserve room for ``batch_size`` elements, and
    a huge --batch-size would never get it)."""
    return batch_size if total is None else max(1, min(batch_size, total))


def batches(data, batch_size, shuffle, augment, seed, total=None):
    """Batches (the last partial one dropped when shuffling), each paired with a stateless seed
    pair for its augmentation when ``augment``: drawn from a stream fixed by ``seed``, so the
    crops and flips do not depend on the order in which the parallel map runs. ``total``: how
    many elements DATA holds when it does not repeat (None when it does)."""
    data = data.batch(whole_batch(batch_size, total), drop_remainder=shuffle)
    if augment:
        data = tf.data.Dataset.zip((data, tf.data.Dataset.random(seed=seed).batch(2)))
    return data


def resize(images, image_size, mode="squash"):
    """uint8 image(s) [..., H, W, 3] of any size -> float32 [..., S, S, 3], bilinear: how every
    image file is brought to the network's side, in training, evaluation, prediction and in an
    exported model. ``squash``: to S x S whatever the aspect; ``crop``: the shorter side to S,
    the aspect kept, then the central S x S (TF-slim's VGG evaluation, at S); ``keep``: as
    they are (float32), for dense evaluation."""
    if mode == KEEP:
        return tf.cast(images, tf.float32)
    if mode == "crop":
        return tf.image.resize_with_crop_or_pad(shorter_side(images, image_size), image_size,
                                                image_size)
    return tf.image.resize(images, [image_size, image_size])


def shorter_side(images, side):
    """Image(s) [..., H, W, C] resized bilinearly (float32) so that their shorter side is SIDE
    (an int or an int32 scalar tensor), the aspect kept: the longer side rounded, at least
    SIDE."""
    shape = tf.shape(images)
    height, width = tf.cast(shape[-3], tf.float64), tf.cast(shape[-2], tf.float64)
    scale = tf.cast(side, tf.float64) / tf.minimum(height, width)
    size = tf.maximum(tf.cast(tf.round(tf.stack([height, width]) * scale), tf.int32), side)
    return tf.image.resize(images, size)


def at_most(image, side):
    """A uint8 image [H, W, C] whose shorter side is above SIDE resized down to SIDE (aspect
    kept, rounded back to uint8); others as they are. What a split caches for scale jitter."""
    shape = tf.shape(image)

    def smaller():
        return tf.cast(tf.clip_by_value(tf.round(shorter_side(image, side)), 0, 255), tf.uint8)

    return tf.cond(tf.minimum(shape[0], shape[1]) > side, smaller, lambda: image)


def jitter_crop(image, image_size, scale_jitter, seed, flip=True):
    """Scale jittering of one image [H, W, C] (uint8 or float32) from the stateless SEED
    (shape [2]): the shorter side rescaled to a random S in [MIN, MAX] (``scale_jitter``),
    aspect kept, a random IMAGE_SIZE square cut from it, mirrored with probability 1/2 (unless
    ``flip`` is False: the readers flip after batching, where the labels are); float32."""
    side_seed, crop_seed, flip_seed = tf.unstack(tf.random.split(seed, 3))
    side = tf.random.stateless_uniform([], side_seed, scale_jitter[0], scale_jitter[1] + 1,
                                       tf.int32)
    image = shorter_side(image, side)
    image = tf.image.stateless_random_crop(image, [image_size, image_size, CHANNELS], crop_seed)
    return tf.image.stateless_random_flip_left_right(image, flip_seed) if flip else image


def jitter_batch(images, image_size, scale_jitter, seed):
    """``jitter_crop`` (without the flip) of each image of a batch [B, H, W, C] of one size,
    each from its own seed split from the batch's SEED."""
    seeds = tf.random.experimental.stateless_split(seed, tf.shape(images)[0])
    return tf.map_fn(lambda item: jitter_crop(item[0], image_size, scale_jitter, item[1],
                                              flip=False),
                     (images, seeds), fn_output_signature=tf.TensorSpec(
                         [image_size, image_size, CHANNELS], tf.float32))


# ----------------------------------------------------------------------------------------------
# Reading image files
# ----------------------------------------------------------------------------------------------

def read_files(paths, batch_size, image_size, preprocess="vgg", resize_mode="squash"):
    """A tf.data.Dataset of image batches (float32 [B, S, S, 3]) from image files of any
    format and size the folder reader takes, in the given order, the last batch partial: each
    decoded, resized (``resize_mode``, see ``resize``) and preprocessed exactly as
    ``image_folder.read`` does for evaluation. The files are checked first (``check_files``)."""
    check_read_arguments(preprocess, batch_size, image_size, resize_mode)
    checked = check_files(paths)
    data = tf.data.Dataset.from_tensor_slices((
        np.array([os.fsencode(path) for path, _ in checked], dtype=object),
        np.array([decoder == "pillow" for _, decoder in checked])))
    data = data.map(lambda path, pillow: resize(decode_file(tf.io.read_file(path), pillow),
                                                image_size, resize_mode),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(1 if resize_mode == KEEP else whole_batch(batch_size, len(checked))).map(
        lambda images: preprocess_batch(images, preprocess),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def fixed_parallelism(data):
    """``data`` with tf.data's autotuning model off: its AUTOTUNE maps run on min(16, cores)
    threads and its prefetch buffers grow as they empty (what tf.data does without the model).
    With the model on, each iterator has a thread that wakes at growing intervals, and freeing
    the iterator (a split read again, a session closed) waits for it, for nothing the decoded
    and cached images here need (the README gives the time it saves)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def file_pipeline(data_dir, files, batch_size, shuffle, augment, preprocess, image_size, repeat,
                  seed, boxes=None, shard=None, **sizing):
    """``image_folder.read``'s pipeline over FILES, [(path relative to DATA_DIR, label,
    decoder)]: each file read, decoded, cut to its box when BOXES ([N, 4] int: x1, y1, x2, y2,
    the last column and row included) are given; then ``pipeline`` (``sizing``: its
    ``resize_mode``, ``scale_jitter``, ``default_augment`` and ``mirrors``)."""
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
        return image, item["label"]

    return pipeline(tf.data.Dataset.from_tensor_slices(columns), load, len(files), batch_size,
                    shuffle, augment, preprocess, image_size, repeat, seed, shard, **sizing)


def pipeline(data, load, total, batch_size, shuffle, augment, preprocess, image_size, repeat,
             seed, shard=None, resize_mode="squash", scale_jitter=None,
             default_augment=AUGMENTATIONS, mirrors=None):
    """The batches of the TOTAL elements of DATA, each made an (image uint8 [H, W, 3] RGB,
    label int32) by LOAD, then resized (``resize_mode``): cached when they fit in CACHE_BYTES,
    shuffled, repeated, batched, augmented and preprocessed as ``image_folder.read`` documents.
    ``augment``: see ``augmentations`` (True: ``default_augment``, the source's); its flips
    keep the labels true by ``mirrors`` (see ``augment_batch``; None: every class is its own
    mirror). With augmentation and ``scale_jitter`` (MIN, MAX) images are cached with their
    shorter side at most MAX and each is jittered (``jitter_crop``) before batching, in place
    of the padded crop. ``shard=(count, index)`` keeps every count-th element from the
    index-th (one worker's share)."""
    check_read_arguments(preprocess, batch_size, image_size, resize_mode, scale_jitter)
    modes = augmentations(augment, default_augment)
    jitter = scale_jitter if modes else None
    if shard:
        data = data.shard(*shard)
        total = (total - shard[1] + shard[0] - 1) // shard[0]

    def sized(item):
        image, label = load(item)
        return (at_most(image, jitter[1]) if jitter else resize(image, image_size, resize_mode),
                label)

    # bytes an image takes in the cache (uint8 up to MAX x 2 MAX for jitter, float32 else)
    each = jitter[1] * jitter[1] * 2 * CHANNELS if jitter else image_size ** 2 * CHANNELS * 4
    cache = total * each <= CACHE_BYTES and resize_mode != KEEP  # (KEEP: sizes unknown)
    if cache:  # decode once, then shuffle the decoded images
        data = data.map(sized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        data = data.shuffle(total, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    if not cache:  # shuffle the paths, decode each epoch
        data = data.map(sized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if jitter:  # each image its own seed, from a stream fixed by SEED (not the batches')
        stream = tf.data.Dataset.random(seed=None if seed is None else seed + JITTER_STREAM)
        data = tf.data.Dataset.zip((data, stream.batch(2))).map(
            lambda item, image_seed: (jitter_crop(item[0], image_size, jitter, image_seed,
                                                  flip=False), item[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # (images kept at their own sizes do not stack into batches)
    data = batches(data, 1 if resize_mode == KEEP else batch_size, shuffle, bool(modes), seed,
                   None if repeat else total)

    def transform(images, labels):
        return preprocess_batch(images, preprocess), labels

    def augment_transform(batch, batch_seed):
        images, labels = batch
        images, labels = augment_batch(images, batch_seed, labels,
                                       crop="crop" in modes and not jitter,
                                       flip="flip" in modes, mirrors=mirrors)
        return transform(images, labels)

    data = data.map(augment_transform if modes else transform,
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)

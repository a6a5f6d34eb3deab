"""What the data sources (``data_cifar10``, ``data_folder``, ``data_gtsrb``) share: the error
they raise, the options they may take, batching, augmentation and preprocessing, and image
files: checking, decoding, and the tf.data pipeline that reads them.

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
(``jitter_crop``, the VGG paper's scale jittering).

Image files: .jpg .jpeg .png .bmp .gif (any case) decoded by ``tf.io.decode_image``, .ppm .pgm
.pnm by Pillow through ``tf.numpy_function``, in the same tf.data map; the decoder follows the
content, not the name (``inspect_image``). Before it is read, each file is opened with Pillow
(``verify()``, then a full decode) by ``check_all``, in threads, the verdict remembered for its
size and modification time in this process. ``file_pipeline`` reads files resized bilinearly
(``resize``: ``squash`` to the square, or ``crop``, the shorter side to the square's side and the
central square of that) and caches the decoded images of a split in memory when they fit in
CACHE_BYTES.
"""

import concurrent.futures
import hashlib
import io
import os
import stat

import numpy as np
import tensorflow as tf

import cli
import tools

IMAGE_SIZE = 32  # the side images are resized to unless told: CIFAR-10's own
CHANNELS = 3
SPLITS = ("train", "val", "trainval", "test")
PREPROCESS = ("vgg", "standardize", "none")
RESIZE = ("squash", "crop")  # how an image of any shape becomes the network's square
KEEP = "keep"  # (a resize mode for dense evaluation: images kept at their own size, one a batch)
PAD = 4  # pixels of zero padding before the random crop
AUGMENTATIONS = ("crop", "flip")  # what a reader's augment may ask for
JITTER_STREAM = 7919  # added to the seed of the scale jitter's random stream

# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images, RGB, 0..255
# (the commonly published figures), used by preprocess="standardize".
CIFAR_MEAN_RGB = (125.307, 122.950, 113.865)
CIFAR_STD_RGB = (62.993, 62.089, 66.705)

TF_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # tf.io.decode_image
PNM_EXTENSIONS = (".ppm", ".pgm", ".pnm")  # Pillow
IMAGE_EXTENSIONS = TF_EXTENSIONS + PNM_EXTENSIONS
CACHE_BYTES = 1 << 30  # cache a split's decoded images (float32 S x S x 3) up to this size
SHOW_FILES = 3  # files named in a DataError
SKIP_FLAG = "--skip-bad-images"

# Every option a source may take (its OPTIONS), each with the error of a source without it.
OPTION_ERRORS = {"skip_bad_images": "--skip-bad-images goes with --dataset folder or gtsrb",
                 "crop_roi": "--crop-roi goes with --dataset gtsrb"}

# path -> ((size, mtime_ns), (decoder or None, reason, (width, height) or None)): what
# inspect_image found
_checked = {}
_reported = set()  # what leave_out_bad printed about skipped images, not to repeat it


class DataError(cli.UserError, ValueError):
    """Missing or malformed data; the message names the file and what to do."""


def check_options(allowed, **options):
    """UsageError for the first option of OPTION_ERRORS that is set in OPTIONS but not
    ALLOWED (a source's OPTIONS)."""
    for name, message in OPTION_ERRORS.items():
        if options.get(name) and name not in allowed:
            raise cli.UsageError(message)


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def check_read_arguments(preprocess, batch_size, image_size, resize_mode="squash",
                         scale_jitter=None):
    if preprocess not in PREPROCESS:
        raise ValueError(f"unknown preprocess {preprocess!r}; choose one of "
                         f"{', '.join(PREPROCESS)}")
    if resize_mode not in RESIZE + (KEEP,):
        raise ValueError(f"unknown resize {resize_mode!r}; choose one of {', '.join(RESIZE)}")
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size ({batch_size}) and image_size ({image_size}) must be at "
                         "least 1")
    if scale_jitter is not None and not image_size <= scale_jitter[0] <= scale_jitter[1]:
        raise ValueError(f"scale_jitter {tuple(scale_jitter)} must be (MIN, MAX) with "
                         f"image_size ({image_size}) <= MIN <= MAX")


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


def batches(data, batch_size, shuffle, augment, seed):
    """Batches (the last partial one dropped when shuffling), each paired with a stateless seed
    pair for its augmentation when ``augment``: drawn from a stream fixed by ``seed``, so the
    crops and flips do not depend on the order in which the parallel map runs."""
    data = data.batch(batch_size, drop_remainder=shuffle)
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
# Folders and file names
# ----------------------------------------------------------------------------------------------

def listdir(folder):
    """The sorted names in FOLDER but those starting with '.'; DataError if it cannot be read."""
    try:
        return sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError as e:
        raise DataError(f"cannot read {folder} ({e.strerror}); check its permissions") from None


def subfolders(folder):
    return [name for name in listdir(folder) if os.path.isdir(os.path.join(folder, name))]


def is_image_file(name):
    """Whether a file name has the extension of an image the folder reader takes."""
    name = os.path.basename(name)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def few(items):
    """The first SHOW_FILES of ITEMS, comma-separated, and how many more there are."""
    shown = ", ".join(items[:SHOW_FILES])
    return shown + (f" and {len(items) - SHOW_FILES} more" if len(items) > SHOW_FILES else "")


def image_files(paths):
    """The image files of ``paths``: files as given, folders as every image under them in
    sorted order; UsageError for a path that is neither, or a folder without images."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            inside = []
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                inside += [os.path.join(folder, n) for n in sorted(names)
                           if is_image_file(n)]
            if not inside:
                raise cli.UsageError(f"{path}: a folder without images (JPEG, PNG, BMP, GIF, "
                                     "PPM, PGM); give image files or folders of them")
            found += inside
        else:
            raise cli.UsageError(f"{path}: no such file or folder")
    return found


def path_hash(rel_path, salt=""):
    """The split hash of a path relative to DATA_DIR: the first 8 bytes of SHA-1(SALT + path
    with '/' separators, as UTF-8) as a big-endian integer."""
    text = (salt + rel_path.replace(os.sep, "/")).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha1(text, usedforsecurity=False).digest()[:8], "big")


# ----------------------------------------------------------------------------------------------
# Checking image files
# ----------------------------------------------------------------------------------------------

def _pillow_rgb(image):
    """A Pillow image as uint8 RGB HWC; 16-bit grey (mode I, 0..65535) scaled to 0..255."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.clip(np.round(np.asarray(image, np.float64) * (255 / 65535)), 0, 255)
        return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), np.uint8)


def image_rgb(path):
    """The image file at ``path`` as uint8 RGB [H, W, 3], decoded by Pillow (for pictures of
    it: explain.py's overlays)."""
    from PIL import Image

    with Image.open(path) as image:
        return _pillow_rgb(image)


def inspect_image(path):
    """(decoder, None, (width, height)) for an image Pillow reads whole, where decoder is "tf"
    when tf.io.decode_image decodes it the same way and "pillow" else; (None, reason, None) if
    it is bad."""
    from PIL import Image

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe or a device would never end
            return None, "not a regular file", None
        with Image.open(path) as image:
            fmt, size = image.format, image.size
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
    tf_decodes = fmt in ("JPEG", "PNG", "GIF") or (fmt == "BMP" and _tf_decodes_bmp(path))
    return ("tf" if tf_decodes else "pillow"), None, size


def _tf_decodes_bmp(path):
    """Whether tf.io.decode_bmp decodes this BMP as Pillow does: it takes the bytes of each
    pixel as its channels, so only uncompressed 24- and 32-bit files (16 bits a pixel would be
    2 channels, 8 bits palette indices); Pillow decodes the others."""
    with open(path, "rb") as f:
        head = f.read(34)
    if len(head) < 34 or int.from_bytes(head[14:18], "little") < 40:  # an OS/2 header
        return False
    bits, compression = int.from_bytes(head[28:30], "little"), int.from_bytes(head[30:34],
                                                                               "little")
    return bits in (24, 32) and compression == 0  # (bit fields: Pillow reads the masks)


def _reason(error):
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"corrupt: {text[:80]}"


def check_all(paths, sizes=False):
    """(decoder, reason) of each path (see ``inspect_image``), remembered for its size and
    modification time; new files are opened in threads (Pillow decodes without holding the
    GIL). ``sizes``: (decoder, reason, (width, height) or None) for each path instead."""
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
            results = list(pool.map(inspect_image, todo))
    else:
        results = [inspect_image(path) for path in todo]
    for path, result in zip(todo, results):
        if stamps[path] is not None:
            _checked[path] = (stamps[path], result)
        else:
            _checked.pop(path, None)
    found = dict(zip(todo, results))
    results = [found[p] if p in found else _checked[p][1] for p in paths]
    return results if sizes else [result[:2] for result in results]


def say_once(key, text):
    """Print TEXT unless KEY was said before in this process (lines about a data set that
    train, val and trainval would each repeat)."""
    if key not in _reported:
        _reported.add(key)
        print(text)


def remembered(cache, path, load, fix=""):
    """``load(path)`` of the file at PATH (absolute), kept in CACHE ({path: (stamp, value)})
    for the file's size and modification time, so a file is read once a process while it stays
    as it is; DataError naming it (and FIX, what to do) when it cannot be read."""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror})" + (f"; {fix}" if fix else "")) \
            from None
    stamp = (st.st_size, st.st_mtime_ns)
    known = cache.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    value = load(path)
    cache[path] = (stamp, value)
    return value


def leave_out_bad(bad, count, root, which, skip_bad_images):
    """BAD ("path (reason)") of the COUNT images of ROOT: a DataError naming them, or with
    ``skip_bad_images`` a line saying they are left out (once a process)."""
    if bad and not skip_bad_images:
        raise DataError(f"{len(bad)} of the {count} {which} images in {root} are unreadable "
                        f"or corrupt: {few(bad)}; fix or remove them, or pass {SKIP_FLAG} to "
                        "leave them out")
    if bad:
        key = (os.path.abspath(root), which, tuple(bad))
        if key not in _reported:  # once for train, val and trainval
            _reported.add(key)
            print(f"{SKIP_FLAG}: leaving out {len(bad)} of the {count} {which} images in "
                  f"{root} (unreadable or corrupt): {few(bad)}")


def check_files(paths):
    """``[(path, decoder)]`` for image files, each opened and decoded once first (decoder:
    "tf" or "pillow", see ``decode_file``); DataError naming the bad ones (the first few, and
    how many more) otherwise."""
    results = check_all(paths)
    bad = [f"{path} ({reason})" for path, (decoder, reason) in zip(paths, results)
           if decoder is None]
    if bad:
        raise DataError(f"{len(bad)} of the {len(paths)} images cannot be used: {few(bad)}; "
                        "remove or replace them")
    return [(path, decoder) for path, (decoder, _) in zip(paths, results)]


# ----------------------------------------------------------------------------------------------
# Decoding and reading image files
# ----------------------------------------------------------------------------------------------

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


def read_files(paths, batch_size, image_size, preprocess="vgg", resize_mode="squash"):
    """A tf.data.Dataset of image batches (float32 [B, S, S, 3]) from image files of any
    format and size the folder reader takes, in the given order, the last batch partial: each
    decoded, resized (``resize_mode``, see ``resize``) and preprocessed exactly as
    ``data_folder.read`` does for evaluation. The files are checked first (``check_files``)."""
    check_read_arguments(preprocess, batch_size, image_size, resize_mode)
    checked = check_files(paths)
    data = tf.data.Dataset.from_tensor_slices((
        np.array([os.fsencode(path) for path, _ in checked], dtype=object),
        np.array([decoder == "pillow" for _, decoder in checked])))
    data = data.map(lambda path, pillow: resize(decode_file(tf.io.read_file(path), pillow),
                                                image_size, resize_mode),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(1 if resize_mode == KEEP else batch_size).map(
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
    """``data_folder.read``'s pipeline over FILES, [(path relative to DATA_DIR, label,
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
    shuffled, repeated, batched, augmented and preprocessed as ``data_folder.read`` documents.
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
    data = batches(data, 1 if resize_mode == KEEP else batch_size, shuffle, bool(modes), seed)

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

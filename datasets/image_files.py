"""Image files, for the sources that read them (folders, GTSRB) and the programs that take
them (predict.py, explain.py): listing folders, checking each file before TensorFlow reads it,
and decoding.

.jpg .jpeg .png .bmp .gif (any case) are decoded by ``tf.io.decode_image``, .ppm .pgm .pnm by
Pillow through ``tf.numpy_function``, in the same tf.data map; the decoder follows the content,
not the name (``inspect_image``). Before it is read, each file is opened with Pillow
(``verify()``, then a full decode) by ``check_all``, in threads, the verdict remembered for its
size and modification time in this process.
"""

import concurrent.futures
import hashlib
import io
import os
import stat

import numpy as np
import tensorflow as tf

from common import cli
from datasets.base import CHANNELS
from datasets.base import SKIP_FLAG
from datasets.base import DataError
from datasets.base import few

TF_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # tf.io.decode_image
PNM_EXTENSIONS = (".ppm", ".pgm", ".pnm")  # Pillow
IMAGE_EXTENSIONS = TF_EXTENSIONS + PNM_EXTENSIONS

# path -> ((size, mtime_ns), (decoder or None, reason, (width, height) or None)): what
# inspect_image found
_checked = {}
_reported = set()  # what leave_out_bad printed about skipped images, not to repeat it


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
    """The sorted names of FOLDER's folders (links to folders too), but those starting with '.';
    DataError for a link to a folder that is not there (a disk not mounted), which would
    otherwise go unseen with the images in it: a class, a validation or a test split."""
    names = listdir(folder)
    for name in names:
        path = os.path.join(folder, name)
        if os.path.islink(path) and not os.path.exists(path) and not is_image_file(name):
            raise DataError(f"{path} is a link to {os.readlink(path)}, which is not there (a "
                            "disk not mounted?); mount it, or remove the link")
    return [name for name in names if os.path.isdir(os.path.join(folder, name))]


def is_image_file(name):
    """Whether a file name has the extension of an image the folder reader takes."""
    name = os.path.basename(name)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


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
# Decoding
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

"""Folders of images as a data source (``input_data.SOURCES["folder"]``).

DATA_DIR/<class>/<image>, or DATA_DIR/train/<class>/<image> plus (optionally)
DATA_DIR/test/<class>/<image> and a validation folder DATA_DIR/val/<class>/<image> (or valid/,
validation/: one of them). The second layout is used when DATA_DIR's only folders are train/ and
those. Class names are the sorted class folder names (of train/ in the second layout), label i
the i-th; test/ and val/ may lack classes (said once), not have classes train/ lacks. Images
must lie directly in their class folder: subfolders of a class folder, files directly in
DATA_DIR (or in train/, test/), files and folders whose names start with '.', and files of
other extensions are ignored. Extensions (any case): .jpg .jpeg .png .bmp .gif, decoded by
``tf.io.decode_image`` in the tf.data map, and .ppm .pgm .pnm (binary P6/P5/P4 and ASCII
P3/P2/P1, 16-bit too), decoded by Pillow through ``tf.numpy_function`` in the same map. The
decoder follows the content, not the name: any file Pillow reads that TensorFlow does not
(PPM/PGM, palette or 1-bit BMP, ...) goes through Pillow. Grey, palette and RGBA images
become RGB (alpha dropped); GIFs give their first frame. Every image is resized to
``image_size`` (default 32) with ``tf.image.resize`` (bilinear).

With a validation folder, ``val`` is that folder, ``train`` all of train/, ``trainval`` both,
``test`` test/ (no test split without it), and ``val_size`` must be None (or 0: ``trainval``).
Otherwise the splits are all decided by each file's path relative to DATA_DIR with forward
slashes (e.g. ``cat/001.jpg`` or ``train/cat/001.jpg``), so that a file keeps its split when
others are added or removed:
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

Before a split is read, ``validate`` (``input_data.validate_folder``) opens every image of it
with Pillow (``verify()``, then a full decode: a truncated JPEG passes ``verify()``), in threads,
and remembers the verdict for each file's size and modification time in this process.
Unreadable or corrupt images, class folders without images and test/ classes that train/ lacks
are one DataError line each; ``skip_bad_images=True`` leaves the bad images out (and prints how
many). ``crop_roi`` is not an option here (UsageError). The decoded, resized images of a split
are cached in memory when they fit in ``pipeline.CACHE_BYTES``.
"""

import os
import typing

from datasets import base
from datasets import image_files
from datasets import pipeline

NAME = "folder"
OPTIONS = ("skip_bad_images",)
AUGMENT = ("crop", "flip")  # what augment=True means (--augment crop for classes a mirror changes)
BN_REFRESH = 0  # --bn-refresh when not given: not measured here, so the moving averages
SCRATCH_LEARNING_RATE = 0.01  # --learning-rate from scratch when not given: the shared default

TEST_PERCENT = 10  # share of the images in test when there is no test/ folder
VAL_FOLDERS = ("val", "valid", "validation")  # names of a validation folder next to train/
VAL_PERCENT = 10  # share of trainval in val when val_size is None

DataError = base.DataError


class FolderLayout(typing.NamedTuple):
    """Where a folder data set's images are."""
    train_root: str  # the folder of the class folders: DATA_DIR, or DATA_DIR/train
    test_root: typing.Optional[str]  # DATA_DIR/test, or None (test is then hashed)
    classes: list  # sorted class folder names of train_root
    val_root: typing.Optional[str] = None  # DATA_DIR/val (valid, validation), or None


def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    """Nothing to download: check that DATA_DIR is a folder (DataError if not)."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    if not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"{data_dir} {what}; put the images there, one folder per class "
                        f"({os.path.join(data_dir, '<class>', '<image>')}), or pass another "
                        "--data-dir")
    return data_dir


def folder_layout(data_dir):
    """The FolderLayout of DATA_DIR (see the module docstring); DataError when there are no
    class folders."""
    prepare(data_dir)
    folders = image_files.subfolders(data_dir)
    val_root = None
    if "train" in folders and set(folders) <= {"train", "test", *VAL_FOLDERS}:
        train_root = os.path.join(data_dir, "train")
        test_root = os.path.join(data_dir, "test") if "test" in folders else None
        vals = [os.path.join(data_dir, name) for name in VAL_FOLDERS if name in folders]
        if len(vals) > 1:
            raise DataError(f"{' and '.join(vals)} are both validation folders; keep one (merge "
                            "them, or move one out of the data dir)")
        val_root = vals[0] if vals else None
    else:
        train_root, test_root = data_dir, None
    classes = image_files.subfolders(train_root)
    if not classes:
        raise DataError(f"{train_root} holds no class folders; put the images in one folder per "
                        f"class ({os.path.join(train_root, '<class>', '<image>')})")
    return FolderLayout(train_root, test_root, classes, val_root)


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    """The sorted class folder names of DATA_DIR (of DATA_DIR/train in that layout)."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return list(folder_layout(data_dir).classes)


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    """How many class folders DATA_DIR has."""
    return len(class_names(data_dir, crop_roi=crop_roi, skip_bad_images=skip_bad_images))


def _class_files(root, classes, data_dir):
    """{class index: sorted paths relative to DATA_DIR ('/'-separated)} of the images directly
    in ROOT/<class>/, and the class folders without any."""
    files, empty = {}, []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        rel = os.path.relpath(folder, data_dir).replace(os.sep, "/")
        files[label] = [f"{rel}/{f}" for f in image_files.listdir(folder)
                        if image_files.is_image_file(f)
                        and not os.path.isdir(os.path.join(folder, f))]
        if not files[label]:
            empty.append(folder)
    return files, empty


def _other_files(root, layout, data_dir):
    """{label: paths} of ROOT (test/ or val/), whose classes are train/'s; DataError for one
    train/ lacks, a line (once) for train/ classes it lacks; and its empty class folders."""
    classes = image_files.subfolders(root)
    missing = [os.path.join(root, c) for c in classes if c not in layout.classes]
    if missing:
        raise DataError(f"{len(missing)} class folders of {root} are not in "
                        f"{layout.train_root}: {base.few(missing)}; add those "
                        f"classes to {layout.train_root} or remove them from {root}")
    lacking = [c for c in layout.classes if c not in classes]
    if lacking:
        image_files.say_once(("lacking", os.path.abspath(root), tuple(lacking)),
                               f"{root} has no folder for {len(lacking)} of the "
                               f"{len(layout.classes)} classes ({base.few(lacking)}): "
                               "its figures cover the others")
    found, empty = _class_files(root, classes, data_dir)
    labels = [layout.classes.index(c) for c in classes]
    return {labels[i]: paths for i, paths in found.items()}, empty


def layout_files(data_dir, with_val=False):
    """(layout, {label: train paths}, {label: test paths} or None without a test/ folder) of a
    folder data set, paths relative to DATA_DIR, and with ``with_val`` the same of its
    validation folder (None without one) last; DataError for class folders without images and
    for test/ or val/ classes that train/ lacks."""
    layout = folder_layout(data_dir)
    files, empty = _class_files(layout.train_root, layout.classes, data_dir)
    test_files = val_files = None
    if layout.test_root is not None:
        test_files, test_empty = _other_files(layout.test_root, layout, data_dir)
        empty += test_empty
    if layout.val_root is not None:
        val_files, val_empty = _other_files(layout.val_root, layout, data_dir)
        empty += val_empty
    if empty:
        raise DataError(f"{len(empty)} class folders hold no images "
                        f"({' '.join(image_files.IMAGE_EXTENSIONS)}; subfolders are not "
                        f"read): {base.few(empty)}; add images or remove those folders")
    return (layout, files, test_files, val_files) if with_val else (layout, files, test_files)


def _pool(data_dir, split):
    """(layout, [(rel path, label)] sorted by path) of the images split draws from: test/ or
    the test-hashed files for ``test``, train/ or the others for the other splits; with a
    validation folder, the split itself (train/, val/, both, test/)."""
    layout, files, test_files, val_files = layout_files(data_dir, with_val=True)
    if val_files is not None:
        if split == "test" and test_files is None:
            raise DataError(f"{data_dir} has no test split: with {layout.val_root} as the "
                            f"validation split, test is {os.path.join(data_dir, 'test')}/"
                            "<class>/; add it, or evaluate --split val")
        chosen = {"test": [test_files], "train": [files], "val": [val_files],
                  "trainval": [files, val_files]}[split]
        pool = [(p, label) for part in chosen for label, paths in part.items() for p in paths]
    elif test_files is not None:
        chosen = test_files if split == "test" else files
        pool = [(p, label) for label, paths in chosen.items() for p in paths]
    else:
        pool = [(p, label) for label, paths in files.items() for p in paths
                if (image_files.path_hash(p) % 100 < TEST_PERCENT) == (split == "test")]
    return layout, sorted(pool)


def _checked_pool(data_dir, split, skip_bad_images):
    """[(rel path, label, decoder)] of the good images of split's pool (see _pool)."""
    layout, pool = _pool(data_dir, split)
    results = image_files.check_all([os.path.join(data_dir, p) for p, _ in pool])
    bad = [f"{os.path.join(data_dir, p)} ({reason})"
           for (p, _), (_, reason) in zip(pool, results) if reason]
    image_files.leave_out_bad(bad, len(pool), *_pool_root(layout, split), skip_bad_images)
    return [(p, label, decoder) for (p, label), (decoder, _) in zip(pool, results) if decoder]


def _pool_root(layout, split):
    """(the folder split's pool is read from, the pool's name): train and val come out of
    trainval, but with a validation folder, where val is that folder and train train/."""
    root = layout.test_root if split == "test" and layout.test_root else layout.train_root
    which = "test" if split == "test" else "trainval"
    if layout.val_root and split != "test":
        root, which = (layout.val_root, "val") if split == "val" else (root, split)
    return root, which


def check_val_size(val_size, total, data_dir):
    """DataError unless 1 <= VAL_SIZE < TOTAL, the trainval images of DATA_DIR."""
    if not 0 < val_size < total:
        raise DataError(f"val_size (--val-size) {val_size} must be between 1 and {total - 1}: "
                        f"the trainval images of {data_dir} number {total}")


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    """Check a split of a folder data set before any TensorFlow runs: the layout, and every
    image the split draws from (test: the test images; the others: all of trainval) opened and
    decoded with Pillow. Returns [(path relative to DATA_DIR, label, decoder)] of those images,
    sorted by path; raises DataError (bad images left out with ``skip_bad_images``)."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    base.check_split(split)
    files = _checked_pool(data_dir, split, skip_bad_images)
    if not files:
        layout = folder_layout(data_dir)
        root, which = _pool_root(layout, split)
        if root in (layout.val_root, layout.test_root):  # the split's own folder
            rest = " to validate on a part of train/" if which == "val" else ""
            raise DataError(f"{root}, the {which} split of {data_dir}, holds no images; put "
                            f"them there ({os.path.join(root, '<class>', '<image>')}), or "
                            f"remove it{rest}")
        raise DataError(f"the {which} split of {data_dir} holds no images; add images")
    return files


def _split(data_dir, split, val_size, skip_bad_images):
    """[(rel path, label, decoder)] of a split, sorted by path (see the module docstring)."""
    files = validate(data_dir, split, skip_bad_images=skip_bad_images)
    val_root = folder_layout(data_dir).val_root
    if val_root and val_size:
        raise DataError(f"--val-size {val_size}: {val_root} is the validation split (a "
                        "validation folder); leave --val-size out (0 trains on train/ and it)")
    if split not in ("train", "val") or val_root:
        return files
    if val_size is None:
        in_val = {p for p, _, _ in files
                  if image_files.path_hash(p, "val:") % 100 < VAL_PERCENT}
        how = f"about {VAL_PERCENT}% of {len(files)} trainval images by hash; pass a --val-size"
    else:
        check_val_size(val_size, len(files), data_dir)
        ranked = sorted((image_files.path_hash(p, "val:"), p) for p, _, _ in files)
        in_val = {p for _, p in ranked[:val_size]}
        how = "choose another --val-size"
    files = [f for f in files if (f[0] in in_val) == (split == "val")]
    if not files:
        raise DataError(f"the {split} split of {data_dir} holds no images ({how})")
    return files


def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images a split of a folder data set has (after validating them)."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return len(_split(data_dir, split, val_size, skip_bad_images))


def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """The path relative to DATA_DIR of each image of a split, in the order ``read`` gives
    them without shuffling."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return [rel for rel, _, _ in _split(data_dir, split, val_size, skip_bad_images)]


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images of each class (in label order) a split has."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    counts = [0] * num_classes(data_dir)
    for _, label, _ in _split(data_dir, split, val_size, skip_bad_images):
        counts[label] += 1
    return counts


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    """None: val is about VAL_PERCENT% of trainval, by hash."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return None


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    """None: a mirrored image keeps its class (as far as this source knows; --augment crop
    says otherwise)."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return None


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split of a
    folder data set, like ``cifar10.read``: in path order and keeping the last partial
    batch unless ``shuffle`` (which drops it); every image decoded, resized bilinearly to
    ``image_size`` (default 32; ``resize``: ``squash`` or ``crop``, see
    ``pipeline.resize``), then (``augment``) padded, cropped and mirrored at random as
    CIFAR-10 is, or scale-jittered (``scale_jitter=(MIN, MAX)``, see
    ``pipeline.jitter_crop``), and preprocessed by ``preprocess_batch``. ``val_size``:
    None for about 10% of trainval, or a number of images (see the module docstring). The
    images are validated first (DataError); ``skip_bad_images`` leaves the bad ones out. Works
    eagerly and in a ``tf.compat.v1`` graph. ``shard``: one worker's share, as for
    ``cifar10.read``."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    image_size = base.IMAGE_SIZE if image_size is None else image_size
    base.check_read_arguments(preprocess, batch_size, image_size)
    files = _split(data_dir, split, val_size, skip_bad_images)
    return pipeline.file_pipeline(data_dir, files, batch_size, shuffle, augment, preprocess,
                                       image_size, repeat, seed, shard=shard, resize_mode=resize,
                                       scale_jitter=scale_jitter, default_augment=AUGMENT)

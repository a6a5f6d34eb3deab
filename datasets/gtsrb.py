"""GTSRB, the German Traffic Sign Recognition Benchmark, as a data source
(``input_data.SOURCES["gtsrb"]``), in one of three layouts, recognised in this order:
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
``val_size=None`` val is the tracks with h("val:" + key) % 100 < 10 (``image_folder.VAL_PERCENT``,
about a tenth of the images), so a track stays on its side whatever is added; with ``val_size`` N
the tracks in order of that hash until at least N images (adding tracks may then move some out
of val).
``trainval`` is all training images. Image files are checked like the folder source's (one
DataError naming the bad ones, ``skip_bad_images`` leaves them out) and decoded the same way.
"""

import csv
import os
import re
import typing

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import image_files
from datasets import image_folder
from datasets import pipeline
import weights

NAME = "gtsrb"
OPTIONS = ("crop_roi", "skip_bad_images")
AUGMENT = ("flip",)  # measured best (docs/recipes.md): the padded crop costs; flips: MIRRORS
BN_REFRESH = 0  # --bn-refresh when not given: no gain on both seeds (docs/recipes.md)
SCRATCH_LEARNING_RATE = 0.05  # --learning-rate from scratch when not given: beat 0.01

# What a left-right mirror image of each sign shows, by ClassId (signnames.csv): the signs a
# mirror leaves as they are, and the pairs it swaps; every other sign (speed-limit digits, the
# lorry, unpaired curves and arrows, the roundabout's direction) becomes no sign: never flipped.
MIRROR_SELF = (11, 12, 13, 15, 17, 18, 22, 26, 30, 35)
MIRROR_PAIRS = ((19, 20), (33, 34), (36, 37), (38, 39))
# Class folder names of the German-named copies (as in ../shared/data/gtsrb-sample), by ClassId
GERMAN_NAMES = (
    "20_kmh", "30_kmh", "50_kmh", "60_kmh", "70_kmh", "80_kmh", "80_aufgehoben", "100_kmh",
    "120_kmh", "ueberholverbot", "lkw_ueberholverbot", "einmalige_vorfahrt", "vorfahrsstrasse",
    "vorfahrt_gewaehren", "stopp", "durchfahrt_verboten", "lkw_verboten", "verbot_der_einfahrt",
    "gefahrenstelle", "scharfe_kurve_links", "scharfe_kurve_rechts", "s_kurve_links",
    "unebene_fahrbahn", "rutschgefahr", "verengte_fahrbahn", "baustelle", "ampel", "fussgaenger",
    "achtung_kinder", "achtung_fahrrad", "achtung_eis", "achtung_wildwechsel", "unbegrenzt",
    "vorgeschrieben_rechts", "vorgeschrieben_links", "vorgeschrieben_geradeaus",
    "vorgeschrieben_geradeaus_rechts", "vorgeschrieben_geradeaus_links", "vorbeifahren_rechts",
    "vorbeifahren_links", "kreisverkehr", "ueberholverbot_aufgehoben",
    "lkw_ueberholverbot_aufgehoben")

NUM_CLASSES = 43
SIGN_NAMES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signnames.csv")
GT_FIELDS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
TEST_CSV = "GT-final_test.csv"  # in GTSRB_Final_Test_GT.zip (the images' zip has no ClassId)
PICKLES = {"train": "train.p", "val": "valid.p", "test": "test.p"}
ROI_FLAG = "--crop-roi"
_TRACK_NAME = re.compile(r"(\d+)_\d+")  # a training image's name without extension: track_picture

DataError = base.DataError

_pickles = {}  # absolute path -> ((size, mtime_ns), (features, labels)) of a checked pickle


class GtsrbLayout(typing.NamedTuple):
    """Which of the three GTSRB layouts DATA_DIR holds."""
    kind: str  # "official", "pickles" or "folders"
    root: str  # official: the folder of Final_Training/ and Final_Test/; else DATA_DIR
    folders: typing.Optional[image_folder.FolderLayout]  # "folders": where the class folders are


class SignImage(typing.NamedTuple):
    """One image file of the official or the class-folder layout."""
    path: str  # relative to DATA_DIR, '/'-separated
    label: int
    track: str  # "<class folder>/<track>", what the val split holds out whole ("" for test)
    box: typing.Optional[tuple]  # official: (Roi.X1, Roi.Y1, Roi.X2, Roi.Y2), corners included
    size: typing.Optional[tuple]  # official: (Width, Height) as the CSV gives them
    decoder: typing.Optional[str] = None  # "tf" or "pillow", once the file was checked


def _help():
    return ("put GTSRB there as the official archives extract (Final_Training/Images/ and "
            "Final_Test/Images/, also under GTSRB/), as the lab's pickles train.p, valid.p and "
            "test.p, or as one folder of images per class")


def gtsrb_layout(data_dir):
    """The GtsrbLayout of DATA_DIR, tried in this order: Final_Training/ or Final_Test/ in
    DATA_DIR or DATA_DIR/GTSRB (official), DATA_DIR/train.p (pickles), class folders (as the
    folder source reads them). DataError when DATA_DIR holds none of them."""
    if not os.path.isdir(data_dir):
        what = "is not a folder" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"{data_dir} {what}; {_help()}, or pass another --data-dir")
    for root in (data_dir, os.path.join(data_dir, "GTSRB")):
        if any(os.path.isdir(os.path.join(root, part)) for part in ("Final_Training",
                                                                    "Final_Test")):
            return GtsrbLayout("official", root, None)
    if os.path.lexists(os.path.join(data_dir, PICKLES["train"])):
        return GtsrbLayout("pickles", data_dir, None)
    if not image_files.subfolders(data_dir):
        raise DataError(f"{data_dir} holds no GTSRB images; {_help()}")
    folders = image_folder.folder_layout(data_dir)
    if folders.val_root:
        raise DataError(f"{folders.val_root}: GTSRB's val holds out whole tracks of train/, so "
                        "a validation folder is not read; use --dataset folder to take it as "
                        "the validation split, or move it out of the data dir")
    return GtsrbLayout("folders", data_dir, folders)


def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    """Nothing to download: check that DATA_DIR holds one of the layouts (DataError if not)."""
    gtsrb_layout(data_dir)
    return data_dir


def sign_names():
    """The 43 official sign names of signnames.csv (ClassId,SignName), the i-th for ClassId i."""
    with open(SIGN_NAMES, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    names = {int(class_id): name for class_id, name in rows[1:]}
    return [names[i] for i in range(NUM_CLASSES)]


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    """The official sign names (official layout, pickles), or the sorted class folder names."""
    layout = gtsrb_layout(data_dir)
    return list(layout.folders.classes) if layout.kind == "folders" else sign_names()


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    """43, or how many class folders there are."""
    return len(class_names(data_dir))


def mirror_ids():
    """``[m]`` by ClassId: the ClassId a mirrored sign of each shows, -1 for none."""
    ids = [-1] * NUM_CLASSES
    for class_id in MIRROR_SELF:
        ids[class_id] = class_id
    for left, right in MIRROR_PAIRS:
        ids[left], ids[right] = right, left
    return ids


def class_id(name):
    """The ClassId a class name stands for: an official sign name, a German folder name of
    GERMAN_NAMES, or a number (the official folders 00000..00042); None if none."""
    official = {n.lower(): i for i, n in enumerate(sign_names())}
    german = {n: i for i, n in enumerate(GERMAN_NAMES)}
    key = name.strip().lower()
    if key.isdigit() and int(key) < NUM_CLASSES:
        return int(key)
    return official.get(key, german.get(key))


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    """For each class (in label order), the label a mirrored image of it shows, -1 for none
    (``MIRROR_SELF``, ``MIRROR_PAIRS``); classes whose ClassId their name does not tell, or
    whose partner is not among the classes, are never flipped."""
    names = class_names(data_dir)
    ids = [class_id(name) for name in names]
    by_id = {i: label for label, i in enumerate(ids) if i is not None}
    table = mirror_ids()
    return [by_id.get(table[i], -1) if i is not None and table[i] >= 0 else -1 for i in ids]


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
        if not 0 <= class_id < NUM_CLASSES:
            raise DataError(f"{path} line {line}: ClassId {class_id} is not one of the "
                            f"{NUM_CLASSES} classes 0..{NUM_CLASSES - 1}; fix that line")
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
    classes = image_files.subfolders(images_dir)
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
                        f"CSV: {base.few(no_csv)} are missing; extract "
                        "GTSRB_Final_Training_Images.zip again, or remove those folders")
    return images_dir, sorted(images, key=lambda image: image.path)


def _folders_pool(layout, data_dir, split):
    """(folder of the class folders, [SignImage] sorted by path) that SPLIT draws from in the
    class-folder layout: test/ for test (DataError without it), else train/ or DATA_DIR."""
    folders, files, test_files = image_folder.layout_files(data_dir)
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


def _files(data_dir, split, crop_roi, skip_bad_images):
    """[SignImage] with their decoders, sorted by path, of the files SPLIT draws from (test:
    the test images; the others: all training images), each opened and decoded once (and
    with ``crop_roi`` its size and ROI checked against its CSV); bad ones named in a DataError
    or, with ``skip_bad_images``, left out."""
    base.check_split(split)
    layout = gtsrb_layout(data_dir)
    _no_roi(layout, data_dir, crop_roi)
    pool_of = _official_pool if layout.kind == "official" else _folders_pool
    root, pool = pool_of(layout, data_dir, split)
    results = image_files.check_all([os.path.join(data_dir, image.path) for image in pool],
                                      sizes=True)
    bad, good = [], []
    for image, (decoder, reason, size) in zip(pool, results):
        if reason is None and crop_roi:
            reason = _roi_problem(image, size)
        if reason:
            bad.append(f"{os.path.join(data_dir, image.path)} ({reason})")
        else:
            good.append(image._replace(decoder=decoder))
    which = "test" if split == "test" else "trainval"
    image_files.leave_out_bad(bad, len(pool), root, which, skip_bad_images)
    if not good:
        raise DataError(f"the {which} split of {data_dir} holds no images; add images")
    return good


def _split(data_dir, split, val_size, crop_roi, skip_bad_images):
    """[SignImage] of a split of the official or the class-folder layout, sorted by path: val
    holds whole tracks, those of smallest path_hash(track, "val:") (see the module docstring)."""
    images = _files(data_dir, split, crop_roi, skip_bad_images)
    if split not in ("train", "val"):
        return images
    sizes = {}
    for image in images:
        sizes[image.track] = sizes.get(image.track, 0) + 1
    if val_size is None:
        percent = image_folder.VAL_PERCENT
        in_val = {t for t in sizes if image_files.path_hash(t, "val:") % 100 < percent}
        how = f"about {percent}% of {len(sizes)} tracks by hash; pass a --val-size"
    else:
        image_folder.check_val_size(val_size, len(images), data_dir)
        in_val, taken = set(), 0
        for _, track in sorted((image_files.path_hash(t, "val:"), t) for t in sizes):
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
    return image_files.remembered(_pickles, path, _read_pickle)


def _read_pickle(path):
    """``_load_pickle``'s reading and checking of the pickle at (absolute) PATH."""
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
            and features.ndim == 4 and features.shape[3] == base.CHANNELS
            and features.size):
        raise DataError(f"{path}: 'features' is {_describe(features)}, not uint8 RGB images "
                        "[N, height, width, 3]")
    if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
            and labels.shape == features.shape[:1]):
        raise DataError(f"{path}: 'labels' is {_describe(labels)}, not {len(features)} whole "
                        "numbers, one for each image")
    wrong = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if wrong.size:
        raise DataError(f"{path}: image {wrong[0]} has label {labels[wrong[0]]}, not a class "
                        f"0..{NUM_CLASSES - 1} ({wrong.size} such labels)")
    return np.ascontiguousarray(features), labels.astype(np.int32)


def _pickle_parts(data_dir, split, val_size):
    """[(file name, features, labels)] of a split of the pickle layout: train.p, valid.p, both
    (trainval; train.p alone without valid.p) or test.p."""
    base.check_split(split)
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


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    """Check a split of GTSRB before any TensorFlow runs: the layout, every image file the
    split draws from opened and decoded (``crop_roi``: also its size and ROI against the CSV),
    or the pickles read and checked. Returns the image names (``image_names`` without the
    train/val division); raises DataError (``skip_bad_images`` leaves bad image files out; it
    has nothing to do for pickles)."""
    layout = gtsrb_layout(data_dir)
    if layout.kind == "pickles":
        _no_roi(layout, data_dir, crop_roi)
        return _pickle_names(_pickle_parts(data_dir, split, None))
    return [image.path for image in _files(data_dir, split, crop_roi, skip_bad_images)]


def image_names(data_dir, split, val_size=None, *, crop_roi=False,
                skip_bad_images=False):
    """A name for each image of a split in the order ``read`` gives them: the path
    relative to DATA_DIR, or "file.p:index" for pickles."""
    layout = gtsrb_layout(data_dir)
    if layout.kind == "pickles":
        _no_roi(layout, data_dir, crop_roi)
        return _pickle_names(_pickle_parts(data_dir, split, val_size))
    return [image.path for image in _split(data_dir, split, val_size, crop_roi,
                                           skip_bad_images)]


def num_examples(data_dir, split, val_size=None, *, crop_roi=False,
                 skip_bad_images=False):
    """How many images a split of GTSRB has (after validating them)."""
    return len(image_names(data_dir, split, val_size, crop_roi=crop_roi,
                           skip_bad_images=skip_bad_images))


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images of each class (in label order) a split has."""
    layout = gtsrb_layout(data_dir)
    if layout.kind == "pickles":
        _no_roi(layout, data_dir, crop_roi)
        labels = [y for _, _, part in _pickle_parts(data_dir, split, val_size) for y in part]
    else:
        labels = [image.label for image in _split(data_dir, split, val_size, crop_roi,
                                                  skip_bad_images)]
    return np.bincount(np.asarray(labels, np.int64),
                       minlength=num_classes(data_dir)).tolist()


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    """None: val is about a tenth of the tracks, by hash (valid.p for pickles)."""
    return None


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split of
    GTSRB in any of its three layouts, batched, shuffled, augmented and preprocessed exactly as
    ``image_folder.read`` does; image files decoded as the folder source decodes them
    (``crop_roi``: each first cut to its ROI), pickled images taken from their arrays; all
    resized bilinearly to ``image_size`` (default 32; ``resize`` and ``scale_jitter`` as for
    ``image_folder.read``). ``val_size``: None for about a tenth of
    the tracks, or a number of images (whole tracks up to at least that many); must be None
    with pickles, whose val is valid.p. Validated first (DataError). Works eagerly and in a
    ``tf.compat.v1`` graph. ``shard``: one worker's share, as for ``cifar10.read``."""
    image_size = base.IMAGE_SIZE if image_size is None else image_size
    base.check_read_arguments(preprocess, batch_size, image_size)
    layout = gtsrb_layout(data_dir)
    options = (batch_size, shuffle, augment, preprocess, image_size, repeat, seed)
    sizing = dict(resize_mode=resize, scale_jitter=scale_jitter, default_augment=AUGMENT,
                  mirrors=mirrors(data_dir))
    if layout.kind != "pickles":
        images = _split(data_dir, split, val_size, crop_roi, skip_bad_images)
        files = [(image.path, image.label, image.decoder) for image in images]
        boxes = [image.box for image in images] if crop_roi else None
        return pipeline.file_pipeline(data_dir, files, *options, boxes=boxes, shard=shard,
                                           **sizing)
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
        return image, item["label"]

    return pipeline.pipeline(data, load, len(labels), *options, shard, **sizing)

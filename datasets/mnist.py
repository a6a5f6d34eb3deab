"""MNIST, the handwritten digits 0..9, as a data source (``input_data.SOURCES["mnist"]``): its
four IDX files, where they are published and their sizes and MD5s; the reading, checking,
download and splits are datasets/idx.py's, shared with Fashion-MNIST.

Augmentation (``augment=True``) crops and never flips: a mirrored 2 is no digit, so ``mirrors``
says no class survives a mirror (and ``--augment flip`` flips nothing). Its files have the same
names as Fashion-MNIST's: give each its own --data-dir (a file of the other is refused).

    python train_and_val.py --dataset mnist --data-dir data/mnist --arch vgg11 --batch-norm \\
        --pretrained none                       # downloads MNIST into data/mnist first
"""

import sys

from datasets import base
from datasets import idx

NAME = "mnist"
OPTIONS = ()
AUGMENT = ("crop",)  # what augment=True means: a mirrored digit is none
BN_REFRESH = 100  # --bn-refresh when not given: 93.0, 95.0 -> 96.5, 96.0% (docs/recipes.md)
SCRATCH_LEARNING_RATE = 0.01  # --learning-rate from scratch when not given: the shared default
TITLE = "MNIST"  # its name in messages

URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # the folder of the official files
# The official files: MD5 as torchvision's MNIST lists them, bytes as yann.lecun.com/exdb/mnist
# does (None: not checked).
MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
       "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
       "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
       "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
BYTES = {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
         "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542}
NUM_CLASSES = idx.NUM_CLASSES
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))

DataError = base.DataError
_SOURCE = sys.modules[__name__]  # what idx's functions read NAME, TITLE, URL, ... from


def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    """``maybe_download``: DATA_DIR, the four files downloaded into it when none is there."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return maybe_download(data_dir)


def maybe_download(data_dir, url=None, md5=None, sizes=None):
    """DATA_DIR, MNIST's four files first downloaded into it from URL (None: the official
    folder) when it holds none of them, each checked against its MD5 and size (None: MD5 and
    BYTES): see ``idx.maybe_download``. DataError when offline or a file does not match."""
    return idx.maybe_download(_SOURCE, data_dir, url, md5, sizes)


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    """Check the two files a split needs before any TensorFlow runs: there (gzip or not),
    IDX images and labels of the same count, 28x28, as long as their headers say, every
    label in 0..9. Returns their paths; raises DataError."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.validate(_SOURCE, data_dir, split)


def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images a split has (after validating its files); ``val_size`` None is a
    tenth of the training images."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.num_examples(_SOURCE, data_dir, split, val_size)


def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """``file:index`` of every image of a split (the index in its file), in the order
    ``read`` reads them without shuffling."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.image_names(_SOURCE, data_dir, split, val_size)


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    """How many images of each digit a split has, from its labels."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.class_counts(_SOURCE, data_dir, split, val_size)


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    """The digits "0".."9", in label order."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return list(CLASS_NAMES)


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    """NUM_CLASSES, whatever DATA_DIR holds."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return NUM_CLASSES


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    """A tenth of the training images: 6,000 of the full 60,000, fewer for a smaller set."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.default_val_size(_SOURCE, data_dir)


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    """-1 for every class: a mirrored digit is none, so nothing is flipped."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return [-1] * NUM_CLASSES


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` for a split:
    the grey images in all three channels, resized bilinearly to ``image_size`` (None: 32),
    then batched, shuffled, augmented and preprocessed as ``cifar10.read`` documents
    (``augment=True``: AUGMENT; flips follow ``mirrors``). ``val_size`` None is a tenth of the
    training images. Validated first (DataError); nothing is downloaded. Works eagerly and in
    a ``tf.compat.v1`` graph. ``shard``: one worker's share, as for ``cifar10.read``."""
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)
    return idx.read(_SOURCE, data_dir, split, batch_size, shuffle, augment, preprocess,
                    image_size, repeat, seed, val_size, shard, resize, scale_jitter)


idx.publish(_SOURCE)

"""The data sets the programs know (``--dataset NAME``): ``SOURCES[NAME]`` is a source's module,
and every source offers the same functions, so that no program names one.

    cifar10.py         CIFAR-10's binary batches: download, MD5, validation, decoding, splits
    image_folder.py    folders of images, one per class, with hashed splits
    gtsrb.py           the German Traffic Sign Recognition Benchmark in its three layouts
    mnist.py           MNIST's handwritten digits
    fashion_mnist.py   Fashion-MNIST's clothes
    idx.py             what those two share: their IDX files read, checked, downloaded, split
    pipeline.py        what all share: batching, augmentation, preprocessing
    image_files.py     listing, checking and decoding image files
    base.py            the contract of a source (Source), constants, DataError, option checks

What a source offers (its attributes and functions, each function's parameters, what it
returns and raises) is written in one place: ``Source`` in datasets/base.py. A new data set is
one module of datasets/ keeping it and one entry in ``SOURCES``; tests/test_sources.py checks
every entry against it. ``data_options(cfg)`` gives the options (``crop_roi``,
``skip_bad_images``) from the flags. The names of before the split (``read_cifar10``,
``read_folder``, ``validate_folder``, ...) are still importable from here.

    python input_data.py --download          # fetch, check and extract CIFAR-10 into data/
    python input_data.py --show --augment    # cifar10_samples.png: a grid with class names
"""

import os
import sys

from common import cli

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line; its start-up lines held
    cli.quiet_interrupt("input_data.py")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from datasets import base  # noqa: E402
from datasets import cifar10  # noqa: E402
from datasets import fashion_mnist  # noqa: E402
from datasets import gtsrb  # noqa: E402
from datasets import image_files  # noqa: E402
from datasets import image_folder  # noqa: E402
from datasets import mnist  # noqa: E402
from datasets import pipeline  # noqa: E402

# The data sets, by --dataset name: each a module keeping datasets.base.Source
SOURCES = {source.NAME: source for source in (cifar10, image_folder, gtsrb, mnist,
                                              fashion_mnist)}

# Shared by the sources
DataError = base.DataError
CIFAR_MEAN_RGB = base.CIFAR_MEAN_RGB
CIFAR_STD_RGB = base.CIFAR_STD_RGB
preprocess_batch = pipeline.preprocess_batch
unprocess_batch = pipeline.unprocess_batch
resize = pipeline.resize
shorter_side = pipeline.shorter_side
KEEP = base.KEEP
read_files = pipeline.read_files
fixed_parallelism = pipeline.fixed_parallelism
is_image_file = image_files.is_image_file
image_files = image_files.image_files

# CIFAR-10
ALL_FILES = cifar10.ALL_FILES
BATCHES_DIR = cifar10.BATCHES_DIR
CLASS_NAMES = cifar10.CLASS_NAMES
NUM_CLASSES = cifar10.NUM_CLASSES
RECORD_BYTES = cifar10.RECORD_BYTES
TEST_FILE = cifar10.TEST_FILE
TRAIN_FILES = cifar10.TRAIN_FILES
VAL_EXAMPLES = cifar10.VAL_EXAMPLES
maybe_download = cifar10.maybe_download
validate = cifar10.validate
num_examples = cifar10.num_examples
class_names = cifar10.class_names
read_cifar10 = cifar10.read

# Folders of images
prepare_folder = image_folder.prepare
validate_folder = image_folder.validate
folder_num_examples = image_folder.num_examples
folder_class_names = image_folder.class_names
read_folder = image_folder.read

# GTSRB
SIGN_NAMES = gtsrb.SIGN_NAMES
sign_names = gtsrb.sign_names


def data_options(cfg, dataset=None):
    """The options the data set's functions take beyond the usual ones, from a program's
    configuration ``cfg`` (its --skip-bad-images and --crop-roi: any object with those
    attributes); UsageError where the data set (default ``cfg.dataset``) does not take them."""
    options = {name: True for name in base.OPTION_ERRORS
               if getattr(cfg, name, False)}
    base.check_options(SOURCES[dataset or cfg.dataset].OPTIONS, **options)
    return options


def save_grid(data_dir, split, path, augment=False, val_size=VAL_EXAMPLES, count=64, seed=0,
              dataset="cifar10", **reading):
    """A PNG grid of the first ``count`` images of a split of ``dataset``, each titled with its
    class. The batch is read in a graph of its own, so this works eagerly and in a graph."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = SOURCES[dataset]
    with tf.Graph().as_default():
        data = source.read(data_dir, split, count, augment=augment, preprocess="none",
                           seed=seed, val_size=val_size, **reading)
        batch = tf.compat.v1.data.make_one_shot_iterator(fixed_parallelism(data)).get_next()
        with tf.compat.v1.Session() as session:
            images, labels = session.run(batch)
    names = source.class_names(data_dir)
    side = int(np.ceil(np.sqrt(len(labels))))
    fig, axes = plt.subplots(side, side, figsize=(1.5 * side, 1.6 * side), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels):
        ax.imshow(image.astype(np.uint8))
        ax.set_title(names[label], fontsize=8)
    fig.suptitle(f"{'CIFAR-10' if dataset == 'cifar10' else data_dir} {split}"
                 f"{' (augmented)' if augment not in (None, False, 'none') else ''}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)


def picture_formats():
    """The file name endings matplotlib writes a figure as (png, pdf, svg, jpg, tif, ...)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    try:
        return sorted("." + ending for ending in figure.canvas.get_supported_filetypes())
    finally:
        plt.close(figure)


def check_picture_path(path, data_dir):
    """UsageError unless ``path`` is a name matplotlib writes a picture as, not in a folder
    below ``data_dir`` (where the data files and class folders are), so no data file is ever
    written over and no picture joins the images of a class."""
    formats = picture_formats()
    if os.path.splitext(path)[1].lower() not in formats:
        raise cli.UsageError(f"--out {path}: the grid is a picture; give a name ending in "
                             f"{', '.join(formats)}")
    folder, data = os.path.dirname(os.path.abspath(path)), os.path.abspath(data_dir)
    if folder != data and os.path.commonpath([folder, data]) == data:
        raise cli.UsageError(f"--out {path} is inside --data-dir {data_dir}; write the grid "
                             "elsewhere (nothing is written among the data)")


def work(cfg):
    """What the command line asks: download CIFAR-10 (--download), draw a grid (--show)."""
    if cfg.show:
        check_picture_path(cfg.out, cfg.data_dir)
    if cfg.download:
        print(f"CIFAR-10 is in {cifar10.maybe_download(cfg.data_dir)}")
    if cfg.show:
        source = SOURCES[cfg.dataset]  # (nothing is downloaded to draw a grid)
        val_size = (source.default_val_size(cfg.data_dir) if cfg.val_size is None
                    else cfg.val_size)
        save_grid(cfg.data_dir, cfg.split, cfg.out, cfg.augment, val_size,
                  dataset=cfg.dataset, image_size=cfg.image_size,
                  resize=cfg.resize or "squash", scale_jitter=cfg.scale_jitter)
        print(f"wrote {cfg.out}")
    return 0


def parse_args(argv=None):
    p = cli.ArgumentParser(description="Download CIFAR-10, or draw a grid of a data set's images.")
    cli.add_flags(p, "dataset", "data-dir", choices={"dataset": tuple(SOURCES)})
    p.add_argument("--download", action="store_true",
                   help="download, check and extract CIFAR-10 unless it is already there")
    p.add_argument("--show", action="store_true", help="write a PNG grid of images")
    cli.add_flags(p, "split", split="train")
    p.add_argument("--augment", nargs="?", const=True, type=cli.augmentations,
                   metavar="crop,flip|crop|flip",
                   help="--show augmented images: as training does (the data set's own), or "
                        "those given")
    cli.add_flags(p, "val-size", "image-size", "resize", "scale-jitter", "verbose")
    p.add_argument("--out", type=cli.path, default="cifar10_samples.png",
                   help="where --show writes the PNG")
    args = p.parse_args(argv)
    side = args.image_size or base.IMAGE_SIZE
    if args.scale_jitter and not (args.augment not in (None, "none") and
                                  args.scale_jitter[0] >= side):
        p.error(f"--scale-jitter goes with --augment, its MIN at least --image-size ({side})")
    if not (args.download or args.show):
        p.error("say --download, --show or both")
    if args.download and args.dataset != cifar10.NAME:
        p.error("--download fetches CIFAR-10; a folder of images is yours to put in place")
    return cli.freeze(args)


def main(argv=None):
    return cli.run_main("input_data.py", work, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

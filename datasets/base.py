"""What every data source shares: the contract a source keeps (``Source``: what it offers, with
its parameters, what each returns and raises; ``contract_problems`` says where a source does
not keep it), the constants of its images and splits, the error it raises (``DataError``), the
options it may take and the checks of a reader's arguments."""

import inspect
import typing

from common import cli

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

SHOW_FILES = 3  # files named in a DataError
SKIP_FLAG = "--skip-bad-images"

# Every option a source may take (its OPTIONS), each with the error of a source without it.
OPTION_ERRORS = {"skip_bad_images": "--skip-bad-images goes with --dataset folder or gtsrb",
                 "crop_roi": "--crop-roi goes with --dataset gtsrb"}


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


def few(items):
    """The first SHOW_FILES of ITEMS, comma-separated, and how many more there are."""
    shown = ", ".join(items[:SHOW_FILES])
    return shown + (f" and {len(items) - SHOW_FILES} more" if len(items) > SHOW_FILES else "")


# ----------------------------------------------------------------------------------------------
# The contract of a data source
# ----------------------------------------------------------------------------------------------

@typing.runtime_checkable
class Source(typing.Protocol):
    """What a data source offers: ``input_data.SOURCES[NAME]``, a module of datasets/ with
    these attributes and functions (a module's functions are this class's static methods).

    Every function takes the --data-dir first and the keyword-only options ``crop_roi=False,
    skip_bad_images=False``. An option set that the source does not list in OPTIONS is a
    cli.UsageError with its message of OPTION_ERRORS (``check_options(OPTIONS, ...)``), raised
    before the data dir is looked at. Missing or malformed data is a DataError, one line naming
    the file and what to do; an argument out of its range (an unknown split: ``check_split``;
    read's: ``check_read_arguments``) is a ValueError, but a ``val_size`` the data cannot give
    is a DataError. Only ``prepare`` may download or write, and only into the data dir.

    Splits (SPLITS): ``train`` and ``val`` never overlap and together are ``trainval``;
    ``test`` is apart from them. ``val_size``: the number of trainval images held out as
    ``val``, None for the source's own choice (see ``default_val_size``). A split's images come
    in one order, the same in read (without shuffling), num_examples, image_names and
    class_counts. A new data set is one module offering all of this and one entry in
    ``input_data.SOURCES``; tests/test_sources.py checks every entry against this class.
    """

    NAME: str  # its --dataset name, the key of input_data.SOURCES
    OPTIONS: tuple  # the options of OPTION_ERRORS it takes: some of "crop_roi", "skip_bad_images"
    AUGMENT: tuple  # what read's augment=True means: some of AUGMENTATIONS, such as ("crop",)
    # train_and_val.py's --bn-refresh when not given: batches (0 keeps the moving averages), the
    # value measured best for this data set (docs/recipes.md, defaults per data set)
    BN_REFRESH: int
    # train_and_val.py's --learning-rate when not given and training from scratch (--pretrained
    # none): the peak rate measured best for this data set (pretrained weights keep 0.01)
    SCRATCH_LEARNING_RATE: float

    @staticmethod
    def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
        """Make the data available before anything else is asked (download it into DATA_DIR
        when the source can and it is not there, or only check that DATA_DIR holds the data
        set's layout); returns where the data is (DATA_DIR, or a folder in it). DataError when
        it cannot (offline, a file in the way)."""

    @staticmethod
    def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
        """Check every file SPLIT needs before TensorFlow runs (there, readable, well formed,
        its labels in range), so that read never fails on bad data; returns a list of what it
        checked (its files or images; no program uses it). DataError for the first problem;
        ``skip_bad_images`` (when taken) leaves unreadable images out instead, saying how many."""

    @staticmethod
    def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
             image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
             crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
        """A tf.data.Dataset of ``(images float32 [B, S, S, 3], labels int32 [B])`` of SPLIT,
        validated first (DataError), nothing downloaded; it works eagerly and in a
        ``tf.compat.v1`` graph. S is ``image_size`` (None: IMAGE_SIZE), each image resized to
        it by ``resize`` (RESIZE, or KEEP: each image at its own size, one a batch). Without
        ``shuffle`` the images come in the split's order and the last partial batch is kept;
        ``shuffle`` reshuffles each pass and drops it; ``repeat`` repeats without end; ``seed``
        fixes the shuffling and augmentation. ``augment``: False, True (AUGMENT) or some of
        AUGMENTATIONS ("crop,flip"): a random crop after PAD pixels of zeros, a mirror with
        probability 1/2 that keeps the labels true by ``mirrors``; ``scale_jitter=(MIN, MAX)``
        rescales the shorter side to a random one in [MIN, MAX] and crops S of it instead.
        ``preprocess``: PREPROCESS. ``shard=(count, index)``: every count-th image from the
        index-th (one worker's share). datasets/pipeline.py's ``pipeline`` does all of this
        from a tf.data.Dataset of the split's elements and a function loading one."""

    @staticmethod
    def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
        """How many images SPLIT has (an int of at least 1), its files validated first;
        DataError for bad data, or when ``val_size`` leaves train or val empty."""

    @staticmethod
    def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
        """A name for each image of SPLIT (a list of str: a path relative to DATA_DIR, or
        ``file:index`` for images packed in a file), in read's order without shuffling,
        num_examples long; DataError as num_examples."""

    @staticmethod
    def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
        """The name of each class, in label order (a list of str, num_classes long): fixed by
        the data set, or read from DATA_DIR (DataError when it holds no layout the source
        knows)."""

    @staticmethod
    def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
        """How many classes there are (an int, len(class_names)): the labels are 0 to
        num_classes - 1; DataError as class_names."""

    @staticmethod
    def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
        """The ``val_size`` the programs use when --val-size is not given: an int (such as a
        tenth of trainval), or None when the source chooses val itself (a hash of each file's
        path, a folder of its own); DataError when it needs the data and finds it bad."""

    @staticmethod
    def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
        """What a mirrored image shows: None when every class stays itself, else a list with,
        for each class in label order, the label of its mirror image, or -1 where a mirror is
        of no class (such an image is never flipped). read's flips follow it, and so do
        evaluate.py's --tta flip; DataError as class_names."""

    @staticmethod
    def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
        """How many images of each class SPLIT has: a list of int, num_classes long, in label
        order, summing to num_examples (training's class weights come from it); DataError
        as num_examples."""


def contract_functions():
    """{name: signature} of Source's functions, in the order the class declares them."""
    return {name: inspect.signature(member.__func__) for name, member in vars(Source).items()
            if isinstance(member, staticmethod)}


def contract_problems(source):
    """Where SOURCE (a module) does not keep the contract: a line for each attribute or function
    of Source it lacks, each attribute of the wrong type and each function whose parameters
    are not Source's; [] when it keeps it."""
    who = getattr(source, "__name__", repr(source))
    problems = []
    for name, kind in typing.get_type_hints(Source).items():
        if not hasattr(source, name):
            problems.append(f"{who} has no {name} (datasets/base.py's Source: a {kind.__name__})")
        elif not isinstance(getattr(source, name), kind):
            problems.append(f"{who}.{name} is a {type(getattr(source, name)).__name__}, not a "
                            f"{kind.__name__}")
    for name, expected in contract_functions().items():
        found = getattr(source, name, None)
        if not callable(found):
            problems.append(f"{who} has no function {name}{expected} (datasets/base.py's "
                            "Source)")
        elif inspect.signature(found) != expected:
            problems.append(f"{who}.{name}{inspect.signature(found)} does not take the "
                            f"parameters of Source.{name}{expected}")
    return problems

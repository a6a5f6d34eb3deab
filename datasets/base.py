"""What every data source shares: the constants of its images and splits, the error it raises
(``DataError``), the options it may take and the checks of a reader's arguments."""

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

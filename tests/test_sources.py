"""Every data source in ``input_data.SOURCES`` offers one interface: the same functions with the
same parameters (names, kinds, defaults) as the reference below, its name, the options it
takes, and a UsageError for an option it does not take; and ``input_data.data_options`` turns
the flags into those options."""

import argparse
import contextlib
import inspect

import pytest

from common import cli
import input_data

KNOWN_OPTIONS = ("crop_roi", "skip_bad_images")
MESSAGES = {"skip_bad_images": "--skip-bad-images goes with --dataset folder or gtsrb",
            "crop_roi": "--crop-roi goes with --dataset gtsrb"}
EXPECTED_OPTIONS = {"cifar10": (), "folder": ("skip_bad_images",),
                    "gtsrb": ("crop_roi", "skip_bad_images"), "mnist": (), "fashion-mnist": ()}


# The reference interface: each source's function of the same name has exactly these parameters.

def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    pass


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    pass


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    pass


def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    pass


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    pass


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    pass


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    pass


def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    pass


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    pass


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    pass


INTERFACE = {f.__name__: f for f in (prepare, validate, read, num_examples, class_names,
                                     num_classes, default_val_size, image_names, mirrors,
                                     class_counts)}
ARGUMENTS = {"validate": ("train",), "read": ("train", 8), "num_examples": ("train",),
             "image_names": ("train",), "class_counts": ("train",)}
# (the arguments after the data dir; the others take none)
SOURCE_NAMES = sorted(input_data.SOURCES)


@pytest.mark.parametrize("function", sorted(INTERFACE))
@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_functions_have_the_reference_parameters(name, function):
    found = getattr(input_data.SOURCES[name], function, None)
    assert callable(found), f"source {name} has no function {function}"
    expected = inspect.signature(INTERFACE[function])
    assert str(inspect.signature(found)) == str(expected)
    assert inspect.signature(found) == expected  # kinds and defaults, not only their text


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_name_and_options(name):
    source = input_data.SOURCES[name]
    assert source.NAME == name
    assert isinstance(source.OPTIONS, tuple)
    assert len(set(source.OPTIONS)) == len(source.OPTIONS)
    assert set(source.OPTIONS) <= set(KNOWN_OPTIONS)
    assert isinstance(source.AUGMENT, tuple) and set(source.AUGMENT) <= {"crop", "flip"}


def test_the_sources_and_their_options():
    assert {name: source.OPTIONS for name, source in input_data.SOURCES.items()} == \
        EXPECTED_OPTIONS


@pytest.mark.parametrize("function", sorted(INTERFACE))
@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_an_option_the_source_does_not_take_is_a_usage_error(name, function, tmp_path):
    source = input_data.SOURCES[name]
    not_a_folder = tmp_path / "data"  # a file: whatever gets past the options check stops
    not_a_folder.write_text("")  # at the data dir with a DataError (and downloads nothing)
    call = getattr(source, function)
    for option in KNOWN_OPTIONS:
        if option in source.OPTIONS:
            with contextlib.suppress(input_data.DataError):  # taken: not a UsageError
                call(str(not_a_folder), *ARGUMENTS.get(function, ()), **{option: True})
        else:
            with pytest.raises(cli.UsageError) as error:
                call(str(not_a_folder), *ARGUMENTS.get(function, ()), **{option: True})
            assert str(error.value) == MESSAGES[option]
            assert not isinstance(error.value, input_data.DataError)
    assert not_a_folder.read_text() == ""


@pytest.mark.parametrize("dataset, flags, expected", [
    ("cifar10", {}, {}),
    ("cifar10", {"skip_bad_images": False, "crop_roi": False}, {}),
    ("folder", {"skip_bad_images": True}, {"skip_bad_images": True}),
    ("folder", {"skip_bad_images": True, "crop_roi": False}, {"skip_bad_images": True}),
    ("gtsrb", {"crop_roi": True}, {"crop_roi": True}),
    ("gtsrb", {"skip_bad_images": True, "crop_roi": True},
     {"skip_bad_images": True, "crop_roi": True}),
])
def test_data_options(dataset, flags, expected):
    assert input_data.data_options(argparse.Namespace(dataset=dataset, **flags)) == expected


@pytest.mark.parametrize("dataset, flags, option", [
    ("cifar10", {"skip_bad_images": True}, "skip_bad_images"),
    ("cifar10", {"crop_roi": True}, "crop_roi"),
    ("cifar10", {"skip_bad_images": True, "crop_roi": True}, "skip_bad_images"),
    ("folder", {"crop_roi": True}, "crop_roi"),
    ("folder", {"skip_bad_images": True, "crop_roi": True}, "crop_roi"),
])
def test_data_options_refused(dataset, flags, option):
    with pytest.raises(cli.UsageError) as error:
        input_data.data_options(argparse.Namespace(dataset=dataset, **flags))
    assert str(error.value) == MESSAGES[option]


def test_data_options_of_another_dataset():
    """``dataset`` (evaluate.py: the run's data set) is checked instead of --dataset."""
    args = argparse.Namespace(dataset="cifar10", crop_roi=True)
    assert input_data.data_options(args, "gtsrb") == {"crop_roi": True}
    with pytest.raises(cli.UsageError, match="--crop-roi goes with --dataset gtsrb"):
        input_data.data_options(argparse.Namespace(dataset="gtsrb", crop_roi=True), "folder")

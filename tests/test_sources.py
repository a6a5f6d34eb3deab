"""Every data source in ``input_data.SOURCES`` keeps the one contract written in datasets/base.py
(``Source``): a module with its name, the options it takes and what augment=True means, each
function with Source's parameters (names, kinds, defaults) and a UsageError for an option it
does not take. A source written here from the contract's words alone passes the same checks and
trains; a module lacking part of the contract is told which; and ``input_data.data_options``
turns the flags into the options."""

import argparse
import contextlib
import importlib.util
import inspect
import json
import re
import sys
import types

import numpy as np
import pytest

from common import cli
from datasets import base
import helpers
import input_data

KNOWN_OPTIONS = ("crop_roi", "skip_bad_images")
MESSAGES = {"skip_bad_images": "--skip-bad-images goes with --dataset folder or gtsrb",
            "crop_roi": "--crop-roi goes with --dataset gtsrb"}
EXPECTED_OPTIONS = {"cifar10": (), "folder": ("skip_bad_images",),
                    "gtsrb": ("crop_roi", "skip_bad_images"), "mnist": (), "fashion-mnist": ()}

INTERFACE = base.contract_functions()  # {function: its parameters}, from the contract itself
ARGUMENTS = {"validate": ("train",), "read": ("train", 8), "num_examples": ("train",),
             "image_names": ("train",), "class_counts": ("train",)}
# (the arguments after the data dir; the others take none)
SOURCE_NAMES = sorted(input_data.SOURCES)


# ----------------------------------------------------------------------------------------------
# What every source must pass
# ----------------------------------------------------------------------------------------------

def check_function(source, function):
    """SOURCE's FUNCTION takes exactly the contract's parameters."""
    found = getattr(source, function, None)
    assert callable(found), f"source {source.NAME} has no function {function}"
    expected = INTERFACE[function]
    assert str(inspect.signature(found)) == str(expected)
    assert inspect.signature(found) == expected  # kinds and defaults, not only their text


def check_name_and_options(source, name):
    assert source.NAME == name
    assert isinstance(source.OPTIONS, tuple)
    assert len(set(source.OPTIONS)) == len(source.OPTIONS)
    assert set(source.OPTIONS) <= set(KNOWN_OPTIONS)
    assert isinstance(source.AUGMENT, tuple) and set(source.AUGMENT) <= {"crop", "flip"}
    assert isinstance(source, types.ModuleType)  # one pattern: a source is a module
    assert isinstance(source, base.Source) and base.contract_problems(source) == []


def check_options_refused(source, function, tmp_path):
    """An option the source does not take is a UsageError with its message, before the data
    dir (a file here) is looked at; one it takes is not."""
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


def test_the_contract_has_what_the_programs_call():
    """Source declares the attributes and functions the programs use (none may go missing from
    it unnoticed), each function documented, taking the data dir first and the options after
    a *, off by default."""
    assert set(INTERFACE) == {"prepare", "validate", "read", "num_examples", "image_names",
                              "class_names", "num_classes", "default_val_size", "mirrors",
                              "class_counts"}
    assert base.Source.__annotations__ == {"NAME": str, "OPTIONS": tuple, "AUGMENT": tuple,
                                           "BN_REFRESH": int, "SCRATCH_LEARNING_RATE": float}
    for function, signature in INTERFACE.items():
        parameters = list(signature.parameters.values())
        assert parameters[0].name == "data_dir"
        assert parameters[0].default is inspect.Parameter.empty, function
        options = {p.name: p.default for p in parameters if p.kind == p.KEYWORD_ONLY}
        assert {name: options.get(name) for name in KNOWN_OPTIONS} == dict.fromkeys(
            KNOWN_OPTIONS, False), function
        assert "DataError" in inspect.getdoc(getattr(base.Source, function)), function
    assert set(ARGUMENTS) <= set(INTERFACE)


@pytest.mark.parametrize("function", sorted(INTERFACE))
@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_functions_have_the_reference_parameters(name, function):
    check_function(input_data.SOURCES[name], function)


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_name_and_options(name):
    check_name_and_options(input_data.SOURCES[name], name)


def test_the_sources_and_their_options():
    assert {name: source.OPTIONS for name, source in input_data.SOURCES.items()} == \
        EXPECTED_OPTIONS


@pytest.mark.parametrize("function", sorted(INTERFACE))
@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_an_option_the_source_does_not_take_is_a_usage_error(name, function, tmp_path):
    check_options_refused(input_data.SOURCES[name], function, tmp_path)


# ----------------------------------------------------------------------------------------------
# A source written from the contract's words alone
# ----------------------------------------------------------------------------------------------

LITTLE = '''"""A few small images as a data source: DATA_DIR/trainval.npz and test.npz, each with
"images" (uint8 [N, H, W, 3], RGB) and "labels" (int, 0 or 1); val is the last val_size
images of trainval, train the ones before them."""

import os

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import pipeline

NAME = "little"
OPTIONS = ()
AUGMENT = ("crop", "flip")
BN_REFRESH = 0
SCRATCH_LEARNING_RATE = 0.01
CLASSES = ("dark", "light")


def _options(crop_roi, skip_bad_images):
    base.check_options(OPTIONS, crop_roi=crop_roi, skip_bad_images=skip_bad_images)


def _file(data_dir, split):
    base.check_split(split)
    return os.path.join(data_dir, "test.npz" if split == "test" else "trainval.npz")


def _arrays(data_dir, split):
    path = _file(data_dir, split)
    if not os.path.isfile(path):
        raise base.DataError(f"{path} is missing; put the {split} split's images there")
    with np.load(path) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 4 or len(images) != len(labels) or not len(labels):
        raise base.DataError(f"{path} does not hold images and as many labels; write it again")
    return images, labels


def _range(data_dir, split, val_size):
    """(images, labels, start, stop) of the file SPLIT draws from: it is [start:stop]."""
    images, labels = _arrays(data_dir, split)
    if split not in ("train", "val"):
        return images, labels, 0, len(labels)
    val_size = max(1, len(labels) // 10) if val_size is None else val_size
    if not 0 < val_size < len(labels):
        raise base.DataError(f"val_size {val_size} must be between 1 and {len(labels) - 1}")
    cut = len(labels) - val_size
    return (images, labels) + ((0, cut) if split == "train" else (cut, len(labels)))


def prepare(data_dir, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    if not os.path.isdir(data_dir):
        raise base.DataError(f"{data_dir} is not a folder; write trainval.npz into one")
    return data_dir


def validate(data_dir, split, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    _arrays(data_dir, split)
    return [_file(data_dir, split)]


def read(data_dir, split, batch_size, shuffle=False, augment=False, preprocess="vgg",
         image_size=None, repeat=False, seed=None, val_size=None, shard=None, *,
         crop_roi=False, skip_bad_images=False, resize="squash", scale_jitter=None):
    _options(crop_roi, skip_bad_images)
    image_size = base.IMAGE_SIZE if image_size is None else image_size
    base.check_read_arguments(preprocess, batch_size, image_size, resize, scale_jitter)
    images, labels, start, stop = _range(data_dir, split, val_size)
    data = tf.data.Dataset.from_tensor_slices({"image": images[start:stop],
                                               "label": labels[start:stop].astype(np.int32)})
    return pipeline.pipeline(
        data, lambda item: (item["image"], item["label"]), stop - start, batch_size, shuffle,
        augment, preprocess, image_size, repeat, seed, shard, resize_mode=resize,
        scale_jitter=scale_jitter, default_augment=AUGMENT, mirrors=mirrors(data_dir))


def num_examples(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    _, _, start, stop = _range(data_dir, split, val_size)
    return stop - start


def image_names(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    _, _, start, stop = _range(data_dir, split, val_size)
    return [f"{os.path.basename(_file(data_dir, split))}:{i}" for i in range(start, stop)]


def class_names(data_dir, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    return list(CLASSES)


def num_classes(data_dir, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    return len(CLASSES)


def default_val_size(data_dir, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    return max(1, len(_arrays(data_dir, "trainval")[1]) // 10)


def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    return None


def class_counts(data_dir, split, val_size=None, *, crop_roi=False, skip_bad_images=False):
    _options(crop_roi, skip_bad_images)
    _, labels, start, stop = _range(data_dir, split, val_size)
    return np.bincount(labels[start:stop], minlength=len(CLASSES)).tolist()
'''
LITTLE_COUNT, LITTLE_TEST = 24, 6


def load_module(monkeypatch, folder, name, text):
    """The module NAME written to FOLDER/NAME.py with TEXT, imported, in sys.modules until the
    test ends (where tf.data's AutoGraph looks for its functions)."""
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def without(text, function):
    """TEXT with the definition of FUNCTION (up to the next one) left out."""
    cut = re.sub(rf"\ndef {function}\(.*?(?=\ndef |\Z)", "\n", text, flags=re.S)
    assert cut != text
    return cut


def little_data(folder, seed=0):
    """trainval.npz and test.npz of dark and light 12x12 images in FOLDER; the labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    labels = {}
    for split, count in (("trainval", LITTLE_COUNT), ("test", LITTLE_TEST)):
        labels[split] = np.arange(count) % 2
        images = (rng.integers(0, 60, (count, 12, 12, 3)) +
                  170 * labels[split][:, None, None, None]).astype(np.uint8)
        np.savez(folder / f"{split}.npz", images=images, labels=labels[split])
    return labels


@pytest.fixture
def little(tmp_path, monkeypatch):
    """The written source, in input_data.SOURCES for this test only (monkeypatch takes it
    out again), and its data dir."""
    module = load_module(monkeypatch, tmp_path, "little_source", LITTLE)
    monkeypatch.setitem(input_data.SOURCES, module.NAME, module)
    data_dir = tmp_path / "little"
    return module, data_dir, little_data(data_dir)


def test_a_source_written_from_the_contract_passes_every_check(little, tmp_path):
    source, data_dir, labels = little
    check_name_and_options(source, "little")
    for function in INTERFACE:
        check_function(source, function)
        (tmp_path / function).mkdir()
        check_options_refused(source, function, tmp_path / function)
    with pytest.raises(cli.UsageError, match="--crop-roi goes with --dataset gtsrb"):
        input_data.data_options(argparse.Namespace(dataset="little", crop_roi=True))
    data_dir = str(data_dir)
    assert source.num_examples(data_dir, "train", 4) == LITTLE_COUNT - 4
    assert source.class_counts(data_dir, "val", 4) == [2, 2]
    assert source.image_names(data_dir, "val", 4)[0] == f"trainval.npz:{LITTLE_COUNT - 4}"
    images, got = next(iter(source.read(data_dir, "test", LITTLE_TEST, preprocess="none")))
    assert images.shape == (LITTLE_TEST, 32, 32, 3)
    np.testing.assert_array_equal(got, labels["test"])


def test_a_source_written_from_the_contract_trains(little, tmp_path):
    _, data_dir, _ = little
    logs = tmp_path / "logs"
    result = helpers.call("train_and_val.py", "--dataset", "little", "--data-dir", data_dir,
                          "--arch", "tinynet", "--pretrained", "none", "--max-steps", 2,
                          "--batch-size", 4, "--val-size", 4, "--log-dir", logs, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"on {LITTLE_COUNT - 4} images (train)" in result.stdout
    assert helpers.steps(logs / "train")[-1] == 2
    config = json.loads((logs / "train" / "config.json").read_text())
    assert config["runs"][-1]["dataset"] == "little"


def test_the_written_source_is_gone_after_its_tests(tmp_path):
    """(run after them) No other test sees it: not in the table, not a --dataset choice."""
    assert "little" not in input_data.SOURCES
    result = helpers.call("train_and_val.py", "--dataset", "little", "--data-dir", tmp_path,
                          "--log-dir", tmp_path / "logs", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'little'" in result.stderr


@pytest.mark.parametrize("function", ["class_counts", "mirrors", "read"])
def test_a_module_missing_a_function_is_told_which(tmp_path, monkeypatch, function):
    source = load_module(monkeypatch, tmp_path, "partial_source", without(LITTLE, function))
    assert base.contract_problems(source) == [
        f"partial_source has no function {function}{INTERFACE[function]} (datasets/base.py's "
        "Source)"]
    assert not isinstance(source, base.Source)
    with pytest.raises(AssertionError, match=rf"source little has no function {function}\b"):
        check_function(source, function)


def test_a_module_missing_an_attribute_or_taking_other_parameters_is_told_which(tmp_path,
                                                                                monkeypatch):
    text = LITTLE.replace('AUGMENT = ("crop", "flip")\n', "").replace(
        "def mirrors(data_dir, *, crop_roi=False, skip_bad_images=False):",
        "def mirrors(data_dir, crop_roi=False, skip_bad_images=False):").replace(
        'OPTIONS = ()', 'OPTIONS = ["crop_roi"]')
    source = load_module(monkeypatch, tmp_path, "odd_source", text)
    assert base.contract_problems(source) == [
        "odd_source.OPTIONS is a list, not a tuple",
        "odd_source has no AUGMENT (datasets/base.py's Source: a tuple)",
        "odd_source.mirrors(data_dir, crop_roi=False, skip_bad_images=False) does not take the "
        "parameters of Source.mirrors(data_dir, *, crop_roi=False, skip_bad_images=False)"]
    assert not isinstance(source, base.Source)  # (no AUGMENT)
    with pytest.raises(AssertionError):
        check_function(source, "mirrors")


# ----------------------------------------------------------------------------------------------
# The options from the flags
# ----------------------------------------------------------------------------------------------

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

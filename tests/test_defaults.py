"""Each data set's defaults reach the training program: a run that gives no --augment and no
--bn-refresh (and from scratch no --learning-rate) uses, and records in config.json, its
source's own (``AUGMENT``, ``BN_REFRESH``, ``SCRATCH_LEARNING_RATE``: the measured choices of
docs/recipes.md), pretrained weights the shared 0.01, and the flags override them (--augment:
test_augment.py, --bn-refresh: test_statistics.py). How well each default trains is the
Recipes table's business."""

import gzip
import json
import math

import numpy as np
import pytest

from common import cli
from datasets import idx
import helpers
import input_data
import train_and_val


def write_idx(folder, count=48, seed=0):
    """The two training files of MNIST's format in FOLDER: noise digits, random labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    images, labels = idx.TRAIN_FILES
    for name, array in ((images, rng.integers(0, 256, (count, 28, 28))),
                        (labels, rng.integers(0, 10, count))):
        (folder / name).write_bytes(gzip.compress(helpers.idx_bytes(array), mtime=0))


def data_dir(name, root, tmp_path):
    """A small data set of source NAME in its own format."""
    if name == "cifar10":
        return root / "data"
    folder = tmp_path / "data"
    if name in ("mnist", "fashion-mnist"):
        write_idx(folder)
    else:  # class folders; GTSRB's named as its signs
        classes = ["stopp", "vorfahrt_gewaehren"] if name == "gtsrb" else ["cats", "dogs"]
        helpers.write_folder(folder, classes, per_class=16)
    return folder


def last_run(tmp_path, logs="logs"):
    return json.loads((tmp_path / logs / "train" / "config.json").read_text())["runs"][-1]


def test_every_source_states_its_defaults():
    for name, source in input_data.SOURCES.items():
        assert source.AUGMENT and set(source.AUGMENT) <= {"crop", "flip"}, name
        assert isinstance(source.BN_REFRESH, int) and source.BN_REFRESH >= 0, name
        assert 0 < source.SCRATCH_LEARNING_RATE < 1, name


@pytest.mark.parametrize("name", sorted(input_data.SOURCES))
def test_a_run_without_the_flags_uses_its_sources_defaults(name, workspace, tmp_path):
    root, _ = workspace
    source = input_data.SOURCES[name]
    args = helpers.tiny_args(root, tmp_path, "--dataset", name, "--batch-norm", "--max-steps",
                             "2", "--val-every", "2", "--val-size", "8",
                             "--data-dir", data_dir(name, root, tmp_path))
    rate = args.index("--learning-rate")
    del args[rate:rate + 2]  # (tiny_args's own)
    assert train_and_val.main([str(a) for a in args]) == 0
    run = last_run(tmp_path)
    assert run["augment"] == ",".join(source.AUGMENT)
    passes = math.ceil(run["train_images"] / run["batch_size"])
    assert run["bn_refresh"] == min(source.BN_REFRESH, passes)
    assert run["learning_rate"] == source.SCRATCH_LEARNING_RATE  # (--pretrained none)


def test_pretrained_weights_and_the_flag_keep_their_learning_rate(workspace, tmp_path):
    root, _ = workspace
    scratch = input_data.SOURCES["gtsrb"].SCRATCH_LEARNING_RATE
    assert scratch != cli.default("learning-rate")  # (else this tests nothing)
    signs = data_dir("gtsrb", root, tmp_path)
    for flags, rate in (([], cli.default("learning-rate")), (["--learning-rate", "0.002"], 0.002)):
        logs = f"logs{rate}"
        args = helpers.train_args(root, tmp_path, "--dataset", "gtsrb", "--max-steps", "1",
                                  "--val-size", "8", "--data-dir", signs, *flags,
                                  "--log-dir", tmp_path / logs)
        assert train_and_val.main([str(a) for a in args]) == 0
        assert last_run(tmp_path, logs)["learning_rate"] == rate  # (VGG11 from vgg11.npy)

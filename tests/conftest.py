"""Make the flat project modules importable from the tests, and keep TensorFlow quiet."""

import os
import sys

import pytest

import helpers
from helpers import ENV
from helpers import ROOT
import py2_npy

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ENV["TF_CPP_MIN_LOG_LEVEL"])
# Every test runs on the CPU, in-process and in the programs it starts, so results compare exactly
# (a GPU's TF32 matmuls would not meet the tests' tolerances).
os.environ["CUDA_VISIBLE_DEVICES"] = ENV["CUDA_VISIBLE_DEVICES"]
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """(root, weights): a learnable CIFAR-format data set in ROOT/data and VGG11 weights in the
    public layout in ROOT/vgg11.npy, shared by the tests that train."""
    root = tmp_path_factory.mktemp("workspace")
    helpers.write_dataset(str(root / "data"))
    weights = helpers.he_weights("vgg11")
    py2_npy.write(str(root / "vgg11.npy"), weights)
    return root, weights


@pytest.fixture(scope="session", autouse=True)
def registered_networks():
    """tests/tiny_net.py in the network table for every test and fixture."""
    helpers.register_networks()


# The files that take longest, longest first: pytest-xdist hands out whole files (--dist
# loadfile) in the order collected (--no-loadscope-reorder), so the longest file starts at once
# instead of last, and the two test processes end together. Files not named follow, as collected.
LONGEST_FIRST = ("test_scale_out.py", "test_train_eval.py", "test_codes.py", "test_convert.py",
                 "test_predict_export.py", "test_from_run.py", "test_behaviour_failures.py",
                 "test_behaviour_screen.py", "test_tflite.py", "test_behaviour_safety.py",
                 "test_model.py", "test_nets.py", "test_behaviour_kills.py", "test_alexnet.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # (stable: files keep order)

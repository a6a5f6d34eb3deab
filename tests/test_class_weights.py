"""--class-weights: the loss weighs each image by its class as the formula says; 'balanced' and a
JSON file give the weights; on a heavily imbalanced toy set the rare class's recall is higher
with balanced weights than without."""

import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from common import cli
from datasets import image_folder
import helpers
import nets
import tiny_net
import tools
from training import inputs

tf1 = tf.compat.v1


def test_the_loss_weighs_each_image_by_its_class():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 2, 1, 0])
    weights = [0.5, 2.0, 3.0]
    with tf.Graph().as_default(), tf1.Session() as session:
        total, plain = session.run(tools.loss(tf.constant(logits), tf.constant(labels),
                                              class_weights=weights))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce = -log_p[np.arange(6), labels]
    assert total == pytest.approx(np.mean(np.array(weights)[labels] * ce), rel=1e-5)
    assert plain == pytest.approx(ce.mean(), rel=1e-5)  # what the progress line reports


def test_balanced_and_file_weights(tmp_path):
    assert inputs.class_weights("balanced", [30, 10, 0], ["a", "b", "c"]) == \
        [40 / 90, 40 / 30, 0.0]
    table = tmp_path / "weights.json"
    table.write_text(json.dumps({"b": 4}))
    assert inputs.class_weights(str(table), [1, 1], ["a", "b"]) == [1.0, 4.0]
    for text, words in (('{"z": 1}', "z not among the classes"),
                        ('{"a": -1}', "not a JSON object of class name: weight"),
                        ('{"a": 1e39}', r"numbers from 0 to 3\.4e\+38"),
                        ('{"a": NaN}', "not a JSON object of class name: weight"),
                        ('{"a": "2"}', "not a JSON object of class name: weight"),
                        ("[1, 2", "not readable JSON"),
                        ('{"a": 0, "b": 0}', "every class with training images has the "
                                             "weight 0")):
        table.write_text(text)
        with pytest.raises(cli.UsageError, match=words):
            inputs.class_weights(str(table), [1, 1], ["a", "b"])
    assert inputs.class_weights(None, [1], ["a"]) is None
    table.write_text('{"a": 0, "b": 2}')  # (b has no training image: nothing would count)
    with pytest.raises(cli.UsageError, match="every class with training images"):
        inputs.class_weights(str(table), [3, 0], ["a", "b"])
    assert inputs.class_weights(str(table), [3, 1], ["a", "b"]) == [0.0, 2.0]


@pytest.fixture
def tinynet():
    nets.register(tiny_net.NETWORK)  # (conftest.py keeps it registered for the session)


def test_balanced_weights_raise_the_rare_class_recall(tinynet, tmp_path):
    """60 images of one class, 6 of another, their colours overlapping from image to image:
    without weights the network answers the common class for all."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for name, count, red in (("common", 60, 110), ("rare", 6, 140)):
        (data / name).mkdir(parents=True)
        for n in range(count):
            pixels = rng.normal(0, 10, (16, 16, 3)) + [red + rng.normal(0, 25), 100, 100]
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                data / name / f"{n}.png")
    recall = {}
    for how in (None, "balanced"):
        logs = tmp_path / f"logs-{how}"
        flags = ["--class-weights", how] if how else []
        trained = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir", data,
                               "--arch", "tinynet", "--pretrained", "none", "--max-steps", 150,
                               "--batch-size", 16, "--val-size", 4, "--augment", "none",
                               "--learning-rate", "0.05", "--log-dir", logs, *flags,
                               cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr[-2000:]
        evaluated = helpers.call("evaluate.py", "--data-dir", data, "--log-dir", logs,
                                 "--split", "train", "--errors", 0, cwd=tmp_path)
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        report = json.loads((logs / "eval" / "train-model.ckpt-150.json").read_text())
        recall[how] = report["per_class"][1]["recall"]
        run = json.loads((logs / "train" / "config.json").read_text())["runs"][-1]
        counts = image_folder.class_counts(str(data), "train", 4)
        assert run["class_weight_values"] == (
            None if how is None else [sum(counts) / (2 * c) for c in counts])
    assert recall[None] < 0.5 < recall["balanced"]
    bad = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir", data, "--arch",
                       "tinynet", "--pretrained", "none", "--class-weights", tmp_path / "no.json",
                       "--log-dir", tmp_path / "other", cwd=tmp_path)
    assert "no such file" in helpers.one_line_error(bad)
    zeros = tmp_path / "zeros.json"
    zeros.write_text(json.dumps({"common": 0, "rare": 0}))
    refused = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir", data,
                           "--arch", "tinynet", "--pretrained", "none", "--class-weights", zeros,
                           "--log-dir", tmp_path / "zero", cwd=tmp_path)
    line = helpers.one_line_error(refused)
    assert f"--class-weights {zeros}: every class with training images has the weight 0" in line
    assert not (tmp_path / "zero").exists()

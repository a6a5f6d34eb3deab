"""Dense application (evaluate.py and predict.py --dense): the fully connected layers as
convolutions with the same weights. At the trained size it is the ordinary forward pass; at a
larger one each position of the score map is the ordinary head on that window of pool5, and the
posterior is their mean; fc6 as a 7x7 convolution is fc6 on each 7x7 window."""

import json

import numpy as np
import pytest
import tensorflow as tf

import helpers
import model
import tools

tf1 = tf.compat.v1


def run(fetches, feeds=None):
    with tf1.Session() as session:
        session.run(tf1.global_variables_initializer())
        return session.run(fetches, feeds)


@pytest.mark.parametrize("arch, side, fc_size, batch_norm", [
    ("vgg11", 32, 0, False), ("vgg11", 64, 48, True), ("alexnet", 227, 32, False)])
def test_dense_at_the_trained_size_is_the_forward_pass(arch, side, fc_size, batch_norm):
    config = {"arch": arch, "image_size": side, "num_classes": 5, "fc_size": fc_size,
              "batch_norm": batch_norm}
    images = np.random.default_rng(1).normal(0, 60, (3, side, side, 3)).astype(np.float32)
    with tf.Graph().as_default():
        tf1.set_random_seed(2)
        plain = tf.nn.softmax(model.inference(config, tf.constant(images))[0])
        anysize = tf1.placeholder(tf.float32, [None, None, None, 3])
        dense = tf.exp(model.dense_logits(config, anysize, [side]))
        plain, dense = run([plain, dense], {anysize: images})
    assert np.abs(dense - plain).max() / np.abs(plain).max() < 1e-5
    assert plain.std(axis=0).max() > 1e-3  # (the images get different answers)


def test_fc6_as_a_convolution_is_fc6_on_each_window():
    features = np.random.default_rng(3).normal(size=(2, 9, 10, 8)).astype(np.float32)
    with tf.Graph().as_default():
        with tf1.variable_scope("", reuse=tf1.AUTO_REUSE):
            dense = tools.fc("fc6", tf.constant(features), 16, window=7)  # [2, 3, 4, 16]
            windows = [tools.fc("fc6", tf.constant(features[:, i:i + 7, j:j + 7]), 16)
                       for i in range(3) for j in range(4)]
        dense, windows = run([dense, windows])
    assert dense.shape == (2, 3, 4, 16)
    expected = np.stack(windows, axis=1).reshape(2, 3, 4, 16)
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-5)


def test_dense_at_a_larger_size_averages_the_head_over_pool5s_positions():
    config = {"arch": "vgg11", "image_size": 32, "num_classes": 4, "fc_size": 24,
              "batch_norm": False}
    images = np.random.default_rng(4).normal(0, 60, (2, 64, 96, 3)).astype(np.float32)
    with tf.Graph().as_default():
        tf1.set_random_seed(5)
        dense = tf.exp(model.dense_logits(config, tf.constant(images), [64]))
        # the ordinary network: convolutions to pool5 (2x3 here), its head on each position
        pool5, _ = model.nets.get("vgg11").make(tf.constant(images), None, until="pool5")
        with tf1.variable_scope("", reuse=True):
            heads = [tf.nn.softmax(tools.fc_head(pool5[:, i:i + 1, j:j + 1], {}, 4, 24, False,
                                                 1.0)[0]) for i in range(2) for j in range(3)]
        dense, heads, side = run([dense, heads, tf.shape(pool5)])
    assert list(side) == [2, 2, 3, 512]
    np.testing.assert_allclose(dense, np.mean(heads, axis=0), rtol=1e-5, atol=1e-7)
    assert np.abs(np.array(heads) - np.mean(heads, axis=0)).max() > 1e-4  # positions differ


@pytest.fixture(scope="module")
def square_run(tmp_path_factory):
    """(images, logs): a VGG11 run of 4 steps on square PNGs of three sizes."""
    root = tmp_path_factory.mktemp("dense")
    helpers.write_folder(root / "images", ["a", "b", "c"], per_class=10,
                         sizes=((8, 8), (32, 32), (45, 45)))
    result = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir",
                          root / "images", "--arch", "vgg11", "--pretrained", "none",
                          "--fc-size", "16", "--max-steps", 4, "--batch-size", 6,
                          "--val-size", 3, "--log-dir", root / "logs", cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "images", root / "logs"


def test_dense_evaluation_and_prediction_of_a_run(square_run, tmp_path):
    images, logs = square_run

    def evaluate(*flags):
        result = helpers.call("evaluate.py", "--data-dir", images, "--log-dir", logs, "--split",
                              "train", "--errors", 0, *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        return result

    evaluate()
    evaluate("--dense")  # at 32: square images, so what the ordinary pass sees
    plain = json.loads((logs / "eval" / "train-model.ckpt-4.json").read_text())
    dense = json.loads((logs / "eval" / "train-dense-model.ckpt-4.json").read_text())
    assert dense["evaluation"]["dense"] == [32]
    assert dense["images"] == plain["images"] > 20
    assert dense["accuracy"] == plain["accuracy"]
    assert dense["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    evaluated = plain["images_evaluated"]
    assert dense["images_evaluated"]["predictions"] == evaluated["predictions"]

    files = [str(images / f) for f in evaluated["files"]][:6]
    result = helpers.call("predict.py", "--json", "--log-dir", logs, "--dense", "--scales",
                          "32,48", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    multi = json.loads(result.stdout)
    assert sum(t["probability"] for t in multi[0]["top"]) == pytest.approx(1, abs=1e-5)
    one = json.loads(helpers.call("predict.py", "--json", "--log-dir", logs, "--dense",
                                  *files, cwd=tmp_path).stdout)
    assert [p["top"][0]["index"] for p in one] == evaluated["predictions"][:6]
    assert [p["top"] for p in one] != [p["top"] for p in multi]  # 48 adds other windows


def test_dense_flags_that_cannot_work_are_one_line(square_run, tmp_path):
    images, logs = square_run
    before = sorted(p.name for p in (logs / "eval").iterdir()) if (logs / "eval").exists() \
        else []
    for program, flags, words in (
            ("evaluate.py", ["--dense", "--scales", "16"], "scale 16 is too small"),
            ("evaluate.py", ["--scales", "40"], "--scales goes with --dense"),
            ("evaluate.py", ["--dense", "--resize", "crop"], "--resize does not go with it"),
            ("predict.py", ["--dense", "--scales", "24", images / "a"], "at least 32")):
        extra = ["--data-dir", images] if program == "evaluate.py" else []
        result = helpers.call(program, *flags, "--log-dir", logs, *extra, cwd=tmp_path)
        assert words in helpers.one_line_error(result, program)
    after = sorted(p.name for p in (logs / "eval").iterdir()) if (logs / "eval").exists() \
        else []
    assert after == before

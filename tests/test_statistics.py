"""--bn-refresh: at the last step each batch-norm layer's moving mean and variance become those
of training images read without augmentation (training/statistics.py), before the last
validation and checkpoint."""

import json

import numpy as np
import tensorflow as tf

import helpers
import model
import train_and_val
from training import statistics

tf1 = tf.compat.v1

CONFIG = {"arch": "tinynet", "batch_norm": True, "fc_size": 0, "num_classes": 10,
          "image_size": 16}


def pre_norm(images, weights, biases):
    """conv1's outputs before its batch norm, computed here from its variables' values."""
    return tf.nn.bias_add(tf.nn.conv2d(images, weights, strides=1, padding="SAME"),
                          biases).numpy()


def test_refresh_sets_the_pooled_statistics_of_its_batches():
    rng = np.random.default_rng(0)
    images = (rng.normal(0, 60, (32, 16, 16, 3)) + 20).astype(np.float32)
    with tf.Graph().as_default():
        data = tf1.data.make_one_shot_iterator(
            tf.data.Dataset.from_tensor_slices(images).batch(8).repeat()).get_next()
        model.inference(CONFIG, tf.zeros([1, 16, 16, 3]))  # the evaluation network first
        refresh = statistics.Refresh(CONFIG, data, batches=4)  # one pass, in order
        assert not tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)  # nothing else updates them
        names = ["conv1/weights", "conv1/biases", "conv1/batch_norm/moving_mean",
                 "conv1/batch_norm/moving_variance", "conv3/batch_norm/moving_mean"]
        variables = {v.op.name: v for v in tf1.global_variables()}
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            before = session.run(variables[names[4]])
            refresh.run(session)
            weights, biases, mean, variance, deeper = session.run(
                [variables[name] for name in names])
    outputs = pre_norm(images, weights, biases)
    np.testing.assert_allclose(mean, outputs.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-3)
    # the variance of all 32 images (the batches' own are each 2048 values: Bessel's n/(n-1))
    np.testing.assert_allclose(variance, outputs.var(axis=(0, 1, 2)), rtol=2e-3)
    assert np.all(before == 0) and np.abs(deeper).max() > 1e-3  # deeper layers refreshed too


def test_a_run_ends_with_the_statistics_of_its_training_images(workspace, tmp_path, capsys):
    root, _ = workspace
    args = helpers.tiny_args(root, tmp_path, "--batch-norm", "--max-steps", "6",
                             "--val-every", "6", "--augment", "crop,flip", "--bn-refresh", "100")
    assert train_and_val.main([str(a) for a in args]) == 0
    out = capsys.readouterr().out
    entry = json.loads((tmp_path / "logs" / "train" / "config.json").read_text())["runs"][-1]
    passes = -(-entry["train_images"] // entry["batch_size"])
    assert entry["bn_refresh"] == min(100, passes)  # at most one pass of the training split
    said = f"batch-norm statistics refreshed at step 6 from {entry['bn_refresh'] * 16}"
    assert said in out and out.index(said) < out.index("validation at step 6")
    reader = tf1.train.NewCheckpointReader(str(tmp_path / "logs" / "train" / "model.ckpt-6"))
    weights, biases = (reader.get_tensor(f"conv1/{n}") for n in ("weights", "biases"))
    images = np.concatenate([batch for batch, _ in model.split_dataset(
        CONFIG, "cifar10", str(root / "data"), "train", 64, entry["val_size"])])
    outputs = pre_norm(images, weights, biases)
    # every training image once or twice (a pass of whole shuffled batches): close, not equal
    scale = outputs.std(axis=(0, 1, 2))
    mean = reader.get_tensor("conv1/batch_norm/moving_mean")
    np.testing.assert_allclose(mean, outputs.mean(axis=(0, 1, 2)), atol=0.05 * scale.max())
    variance = reader.get_tensor("conv1/batch_norm/moving_variance")
    np.testing.assert_allclose(variance, outputs.var(axis=(0, 1, 2)), rtol=0.1)


def test_bn_refresh_0_keeps_the_moving_averages(workspace, tmp_path, capsys):
    root, _ = workspace
    args = helpers.tiny_args(root, tmp_path, "--batch-norm", "--max-steps", "3",
                             "--bn-refresh", "0")
    assert train_and_val.main([str(a) for a in args]) == 0
    assert "refreshed" not in capsys.readouterr().out
    entry = json.loads((tmp_path / "logs" / "train" / "config.json").read_text())["runs"][-1]
    assert entry["bn_refresh"] == 0
    # without batch norm there is nothing to refresh, whatever the flag says
    args = helpers.tiny_args(root, tmp_path / "plain", "--max-steps", "2", "--bn-refresh", "9")
    assert train_and_val.main([str(a) for a in args]) == 0
    entry = json.loads((tmp_path / "plain" / "logs" / "train" / "config.json").read_text())
    assert entry["runs"][-1]["bn_refresh"] == 0

"""AlexNet (alexnet.py): the public file's names and shapes, its parameter count, the map sizes
layer by layer, and its logits against a Keras model built here from keras.layers, through a
weights file in the public Python 2 layout."""

import os
import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf

import alexnet
import helpers
import nets
import py2_npy
import weights

tf1 = tf.compat.v1

EXPECTED_VARIABLES = [
    ("conv1/weights", [11, 11, 3, 96]), ("conv1/biases", [96]),
    ("conv2/weights", [5, 5, 48, 256]), ("conv2/biases", [256]),
    ("conv3/weights", [3, 3, 256, 384]), ("conv3/biases", [384]),
    ("conv4/weights", [3, 3, 192, 384]), ("conv4/biases", [384]),
    ("conv5/weights", [3, 3, 192, 256]), ("conv5/biases", [256]),
    ("fc6/weights", [9216, 4096]), ("fc6/biases", [4096]),
    ("fc7/weights", [4096, 4096]), ("fc7/biases", [4096]),
    ("fc8/weights", [4096, 1000]), ("fc8/biases", [1000])]

# [height, width, channels] of every end point at 227x227
EXPECTED_MAPS = {"conv1": [55, 55, 96], "lrn1": [55, 55, 96], "pool1": [27, 27, 96],
                 "conv2": [27, 27, 256], "lrn2": [27, 27, 256], "pool2": [13, 13, 256],
                 "conv3": [13, 13, 384], "conv4": [13, 13, 384], "conv5": [13, 13, 256],
                 "pool5": [6, 6, 256], "fc6": [4096], "fc7": [4096], "logits": [1000]}

# Not the graph's order, so that the loader has to go by name.
FILE_KEY_ORDER = ["fc6", "conv3", "fc8", "conv1", "conv5", "fc7", "conv2", "conv4"]


def build(side=227, num_classes=1000, **kwargs):
    images = tf1.placeholder(tf.float32, [None, side, side, 3])
    return (images, *alexnet.build(images, num_classes, **kwargs))


def test_variables_parameter_count_and_map_sizes_at_227():
    with tf.Graph().as_default():
        _, logits, end_points = build()
        variables = [(v.op.name, v.shape.as_list()) for v in tf1.global_variables()]
        trainable = sum(int(np.prod(v.shape)) for v in tf1.trainable_variables())
        maps = {name: t.shape.as_list()[1:] for name, t in end_points.items()}
    assert variables == EXPECTED_VARIABLES
    assert trainable == 60_965_224
    assert maps == EXPECTED_MAPS
    assert list(end_points)[:-1] == alexnet.end_point_names()
    assert logits.shape.as_list() == [None, 1000]


def test_image_size_rule_is_the_smallest_side_that_keeps_a_pool5_map():
    assert alexnet.image_size_error(227) is None
    assert alexnet.image_size_error(228) is None  # conv1 leaves the last row and column out
    assert "at least 67, got 66" in alexnet.image_size_error(66)
    with tf.Graph().as_default():
        _, _, end_points = build(side=67, num_classes=10)
        assert end_points["pool5"].shape.as_list() == [None, 1, 1, 256]
    with tf.Graph().as_default():
        _, _, end_points = build(side=224, num_classes=10)
        assert end_points["pool5"].shape.as_list() == [None, 5, 5, 256]
    with tf.Graph().as_default(), pytest.raises(ValueError, match="at least 67"):
        build(side=66)


def test_batch_norm_after_every_convolution_keeps_the_lrn_layers():
    with tf.Graph().as_default():
        _, _, end_points = build(num_classes=10, is_training=True, batch_norm=True)
        names = [v.op.name for v in tf1.global_variables()]
        for layer in ("conv1", "conv2", "conv3", "conv4", "conv5"):
            assert f"{layer}/batch_norm/moving_mean" in names
        assert not any(n.startswith("fc") and "batch_norm" in n for n in names)
        assert len(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)) == 10
        assert end_points["lrn1"].op.type == "LRN" and end_points["lrn2"].op.type == "LRN"


def test_trainable_fc8_is_the_head_alone():
    network = nets.get("alexnet")
    assert network.trainable_layers("fc8") == ["fc8"]
    assert network.trainable_layers("fc") == ["fc6", "fc7", "fc8"]
    assert network.trainable_layers("conv4") == ["conv4", "conv5", "fc6", "fc7", "fc8"]
    assert network.default_image_size == 227 and network.preprocess == "vgg"


# ----------------------------------------------------------------------------------------------
# Against Keras, through a weights file in the public layout
# ----------------------------------------------------------------------------------------------

def keras_alexnet():
    """AlexNet from keras.layers, named like the public file's keys."""
    lrn = dict(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)
    layers = keras.layers

    def conv(name, filters, kernel, strides=1, padding="same", groups=1):
        return layers.Conv2D(filters, kernel, strides=strides, padding=padding, groups=groups,
                             activation="relu", name=name)

    return keras.Sequential([
        keras.Input((227, 227, 3)),
        conv("conv1", 96, 11, strides=4, padding="valid"),
        layers.Lambda(lambda x: tf.nn.local_response_normalization(x, **lrn)),
        layers.MaxPooling2D(3, 2),
        conv("conv2", 256, 5, groups=2),
        layers.Lambda(lambda x: tf.nn.local_response_normalization(x, **lrn)),
        layers.MaxPooling2D(3, 2),
        conv("conv3", 384, 3),
        conv("conv4", 384, 3, groups=2),
        conv("conv5", 256, 3, groups=2),
        layers.MaxPooling2D(3, 2),
        layers.Flatten(),
        layers.Dense(4096, activation="relu", name="fc6"),
        layers.Dense(4096, activation="relu", name="fc7"),
        layers.Dense(1000, name="fc8"),
    ])


@pytest.fixture(scope="module")
def keras_case(tmp_path_factory):
    """(images, Keras's logits, the layers written, the Python 2 weights file): Keras's AlexNet
    with He-scaled random kernels and non-zero biases, so every weight matters."""
    rng = np.random.default_rng(11)
    model = keras_alexnet()
    layers = helpers.randomize_keras(model, rng)
    images = rng.uniform(-125, 150, (2, 227, 227, 3)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    path = str(tmp_path_factory.mktemp("alexnet") / "bvlc_alexnet.npy")
    py2_npy.write(path, layers, FILE_KEY_ORDER)
    del model
    return images, expected, layers, path


def loaded_session(path):
    graph = tf.Graph()
    with graph.as_default():
        images, logits, end_points = build()
        init = tf1.global_variables_initializer()
    sess = tf1.Session(graph=graph)
    sess.run(init)
    report = weights.load_pretrained(path, sess, skip=(), strict=True, verbose=False)
    return sess, report, images, logits, end_points


def test_python2_weights_file_loads_every_layer_with_the_values_written(keras_case):
    _, _, layers, path = keras_case
    assert list(layers) == list(alexnet.LAYERS)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x93NUMPY\x01\x00"
    assert list(weights.read_weights(path)) == FILE_KEY_ORDER
    sess, report, *_ = loaded_session(path)
    with sess:
        assert report == [(layer, "loaded", f"weights {tuple(layers[layer][0].shape)}")
                          for layer in alexnet.LAYERS]
        for layer, pair in weights.graph_layers(sess.graph).items():
            for variable, written in zip(pair, layers[layer]):
                np.testing.assert_array_equal(sess.run(variable), written)


def test_keras_weights_give_keras_logits(keras_case):
    images, expected, _, path = keras_case
    sess, _, inputs, logits, end_points = loaded_session(path)
    with sess:
        got, conv1, lrn1 = sess.run([logits, end_points["conv1"], end_points["lrn1"]],
                                    {inputs: images})
    # not degenerate: the logits spread over the classes and depend on the image
    assert expected.std(axis=1).min() > 1.0
    assert np.abs(expected[0] - expected[1]).mean() > 1.0
    # and the normalization does something at this scale, so a wrong one would show
    assert np.median(lrn1[conv1 > 1] / conv1[conv1 > 1]) < 0.9
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-4
    difference, expected_difference = got[0] - got[1], expected[0] - expected[1]
    assert (np.linalg.norm(difference - expected_difference)
            / np.linalg.norm(expected_difference)) < 1e-3


class _Payload:
    """Unpickles as ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_hostile_file_with_alexnets_keys_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    rng = np.random.default_rng(5)
    content = {layer: [rng.standard_normal((3, 3, 3, 4), np.float32),
                       rng.standard_normal(4, np.float32)] for layer in alexnet.LAYERS}
    content["fc8"][1] = _Payload(f"touch {marker}")
    array = np.empty((), dtype=object)
    array[()] = content
    path = tmp_path / "bvlc_alexnet.npy"
    path.write_bytes(py2_npy.npy_bytes(pickle.dumps(array, protocol=2)))
    with pytest.raises(weights.WeightsFileError, match="refused") as info:
        weights.read_weights(str(path))
    assert "system" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()
    np.load(path, allow_pickle=True, encoding="latin1")  # the payload is real: NumPy runs it
    assert marker.exists()

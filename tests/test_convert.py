"""convert_weights.py against an implementation nobody here wrote: Keras's VGG16, whole, and
VGG19's convolutions (--no-top) and VGG19 whole at 32x32; predict.py straight from the converted
file, against Keras's top 5 classes; explain.py's Grad-CAM from it, against one computed from
Keras's gradients.

Keras's models are built with random weights (biases too, so a bias that is not carried over
shows), converted (by the real command, or its layer mapping for VGG19 whole), loaded into
``vgg16.build`` (VGG16 at 224x224 with 1000 classes, VGG19 up to pool5 at 64x64, VGG19 whole at
32x32) and must give Keras's outputs on the same images.
"""

import json

import keras
import numpy as np
from PIL import Image
import tensorflow as tf

import explain
import helpers
import tools
import vgg16
import weights

tf1 = tf.compat.v1


def run_convert(*args):
    return helpers.call("convert_weights.py", *args)


def test_converted_keras_vgg16_gives_keras_logits_top5_and_grad_cam(tmp_path):
    rng = np.random.default_rng(3)
    model = keras.applications.VGG16(weights=None, classifier_activation=None)
    helpers.randomize_keras(model, rng)
    keras_file = str(tmp_path / "vgg16.weights.h5")
    model.save_weights(keras_file)
    out = str(tmp_path / "vgg16.npy")

    result = run_convert("--arch", "vgg16", "--keras-weights", keras_file, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"to {out}" in result.stdout

    images = rng.uniform(-125, 150, (2, 224, 224, 3)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    # predict.py straight from the weights file: Keras's top 5
    pixels = rng.integers(0, 256, (2, 224, 224, 3)).astype(np.uint8)
    keras_top = np.argsort(-model.predict(keras.applications.vgg16.preprocess_input(
        pixels.astype(np.float32)), verbose=0), axis=1)[:, :5]
    files = [tmp_path / f"{i}.png" for i in range(2)]
    for path, image in zip(files, pixels):
        Image.fromarray(image).save(path)
    predicted = helpers.call("predict.py", "--weights", out, "--arch", "vgg16", "--json",
                            *files)
    assert predicted.returncode == 0, predicted.stderr
    tops = [[t["index"] for t in p["top"]] for p in json.loads(predicted.stdout)]
    assert tops == keras_top.tolist()
    names = dict(weights.imagenet_classes())
    assert [t["class"] for t in json.loads(predicted.stdout)[0]["top"]] == [
        list(names.values())[i] for i in tops[0]]
    # explain.py from the same file: conv5_3 by default at 224x224, and the map Grad-CAM
    # makes of Keras's own gradients there (TensorFlow's eager GradientTape)
    cams = helpers.call("explain.py", "--weights", out, "--arch", "vgg16", *files,
                        "--out", tmp_path / "cams", "--save-maps")
    assert cams.returncode == 0, cams.stderr
    assert "(Grad-CAM at conv5_3)" in cams.stdout
    inputs = keras.applications.vgg16.preprocess_input(pixels.astype(np.float32))
    both = keras.Model(model.input, [model.get_layer("block5_conv3").output, model.output])
    with tf.GradientTape() as tape:
        maps, logits = both(inputs)
        score = tf.reduce_sum(tf.gather(logits, keras_top[:, 0], axis=1, batch_dims=1))
    weights_of_maps = tf.reduce_mean(tape.gradient(score, maps), axis=[1, 2], keepdims=True)
    keras_cams = tf.nn.relu(tf.reduce_sum(weights_of_maps * maps, axis=-1)).numpy()
    for i, keras_cam in enumerate(keras_cams):
        ours = np.load(tmp_path / "cams" / f"{i}.npy")
        assert ours.shape == (224, 224)
        expected_cam = explain.full_size(keras_cam / keras_cam.max(), 224, 224)
        assert np.abs(ours - expected_cam).max() < 2e-3
    del model
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        logits, _ = vgg16.build(inputs, 1000, "vgg16")
        with tf1.Session() as sess:  # (every variable is set from the file, none initialized)
            report = tools.load_pretrained(out, sess, skip=(), strict=True, verbose=False)
            got = sess.run(logits, {inputs: images})
    assert {status for _, status, _ in report} == {"loaded"}
    assert len(report) == len(vgg16.layer_names("vgg16"))
    # not degenerate: the logits spread over the classes and depend on the image
    assert expected.std(axis=1).min() > 1.0
    assert np.abs(expected[0] - expected[1]).mean() > 1.0
    relative_error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert relative_error < 1e-4
    # the image-dependent part alone matches too, so biases cannot hide a wrong fc6 order
    difference, expected_difference = got[0] - got[1], expected[0] - expected[1]
    assert (np.linalg.norm(difference - expected_difference)
            / np.linalg.norm(expected_difference)) < 1e-3


def test_converted_keras_vgg19_convolutions_give_keras_features(tmp_path):
    """--no-top: the 16 convolutions of VGG19 (four a block from the third on), without fc6-fc8;
    at 64x64 (any size will do without them) they give Keras's pool5."""
    rng = np.random.default_rng(4)
    model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(64, 64, 3))
    helpers.randomize_keras(model, rng)
    keras_file = str(tmp_path / "vgg19.weights.h5")
    model.save_weights(keras_file)
    out = str(tmp_path / "vgg19.npy")
    result = run_convert("--arch", "vgg19", "--no-top", "--keras-weights", keras_file,
                         "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Wrote 16 layers (conv1_1, conv1_2, conv2_1" in result.stdout

    images = rng.uniform(-125, 150, (2, 64, 64, 3)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 64, 64, 3])
        _, end_points = vgg16.build(inputs, 10, "vgg19", until="pool5")
        with tf1.Session() as sess:
            report = tools.load_pretrained(out, sess, skip=(), strict=True, verbose=False)
            got = sess.run(end_points["pool5"], {inputs: images})
    assert [layer for layer, status, _ in report if status == "loaded"] == \
        vgg16.conv_layer_names("vgg19")
    assert np.abs(expected[0] - expected[1]).mean() > 1e-3 * np.abs(expected).mean()
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-4


def test_vgg19s_fully_connected_layers_convert_to_fc6_fc7_fc8_and_give_keras_logits(tmp_path):
    """VGG19 whole, through the conversion's own layer mapping and the public layout (the
    command itself and fc6's order over a 7x7 pool5 are VGG16's test above): at 32x32, where
    Keras's fc1 reads a 1x1 pool5, so its 19 layers are a tenth of the 224x224 ones."""
    rng = np.random.default_rng(5)
    model = keras.applications.VGG19(weights=None, input_shape=(32, 32, 3),
                                     classifier_activation=None)
    helpers.randomize_keras(model, rng)
    layers = weights.keras_layers(model)
    assert list(layers) == vgg16.layer_names("vgg19")  # fc1, fc2, predictions: fc6, fc7, fc8
    out = str(tmp_path / "vgg19.npy")
    weights.write_weights(out, layers)
    images = rng.uniform(-125, 150, (2, 32, 32, 3)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, _ = vgg16.build(inputs, 1000, "vgg19", fc_size=4096)
        with tf1.Session() as sess:
            report = tools.load_pretrained(out, sess, skip=(), strict=True, verbose=False)
            got = sess.run(logits, {inputs: images})
    assert [layer for layer, status, _ in report if status == "loaded"] == \
        vgg16.layer_names("vgg19")
    assert expected.std(axis=1).min() > 1.0
    assert np.abs(expected[0] - expected[1]).mean() > 1.0
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-4


def test_existing_output_is_never_overwritten(tmp_path):
    out = tmp_path / "vgg16.npy"
    out.write_bytes(b"the user's file")
    result = run_convert("--arch", "vgg16", "--keras-weights", "unused.h5", "--out", str(out))
    assert result.returncode == 2
    assert "exists already" in result.stderr and "Traceback" not in result.stderr
    assert out.read_bytes() == b"the user's file"


def test_unreadable_keras_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    out = tmp_path / "out.npy"
    result = run_convert("--arch", "vgg19", "--keras-weights", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_the_imagenet_class_list_is_in_the_order_of_fc8():
    classes = weights.imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", "tench") and classes[-1] == ("n15075141", "toilet tissue")
    ids = [wordnet_id for wordnet_id, _ in classes]
    assert ids == sorted(set(ids))  # fc8's order is the WordNet ids sorted, each once

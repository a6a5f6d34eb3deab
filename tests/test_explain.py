"""explain.py: Grad-CAM finds the evidence. A network trained here on images whose class is only
where a bright square sits (four classes, four quadrants) gets heatmaps whose mass lies in the
square's quadrant; the maps have the image's size and values in [0, 1]; bad input is one line
and writes nothing. (explain.py on a VGG11-BN run: test_predict_export.py; from an ImageNet
weights file, against Keras's own gradients: test_convert.py.)"""

import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import explain
import flat_net
import helpers
from helpers import call
from helpers import one_line_error
import nets
import vgg16

tf1 = tf.compat.v1
SIDE, SQUARE = 32, 8


def write_quadrants(root, per_class, seed):
    """ROOT/q<k>/<n>.png: noise with a bright SQUARE x SQUARE square somewhere inside quadrant
    k (0: top left, 1: top right, 2: bottom left, 3: bottom right)."""
    rng = np.random.default_rng(seed)
    half = SIDE // 2
    for k in range(4):
        (root / f"q{k}").mkdir(parents=True)
        row, col = divmod(k, 2)
        for n in range(per_class):
            pixels = np.clip(rng.normal(70, 25, (SIDE, SIDE, 3)), 0, 255)
            r = row * half + rng.integers(0, half - SQUARE + 1)
            c = col * half + rng.integers(0, half - SQUARE + 1)
            pixels[r:r + SQUARE, c:c + SQUARE] = 240
            Image.fromarray(pixels.astype(np.uint8)).save(root / f"q{k}" / f"{n}.png")


@pytest.fixture(scope="module")
def quadrants(tmp_path_factory):
    """(test images folder, log dir): flatnet with batch norm trained on 200 quadrant images
    (without the mirroring of augmentation, which would move the square to another class)."""
    root = tmp_path_factory.mktemp("quadrants")
    write_quadrants(root / "train", 50, seed=0)
    write_quadrants(root / "test", 10, seed=1)
    nets.register(flat_net.NETWORK)
    try:
        result = call("train_and_val.py", "--dataset", "folder", "--data-dir", root / "train",
                      "--arch", "flatnet", "--batch-norm", "--max-steps", 150,
                      "--batch-size", 32, "--val-size", 0, "--learning-rate", 0.05,
                      "--warmup-steps", 5, "--no-augment", "--log-dir", root / "logs",
                      cwd=root)
        assert result.returncode == 0, result.stderr
        yield root / "test", root / "logs"
    finally:
        nets.unregister("flatnet")


def quadrant_share(heat, k):
    height, width = heat.shape
    row, col = divmod(k, 2)
    part = heat[row * height // 2:(row + 1) * height // 2, col * width // 2:(col + 1) * width // 2]
    return part.sum() / heat.sum()


def test_the_heat_lies_where_the_evidence_is(quadrants, tmp_path):
    images, logs = quadrants
    out = tmp_path / "cams"
    result = call("explain.py", images, "--log-dir", logs, "--out", out, "--save-maps")
    assert result.returncode == 0, result.stderr
    # flatnet's maps at 32x32: conv1 32x32, conv2 16x16, conv3 8x8; the rule picks conv2
    assert "(Grad-CAM at conv2)" in result.stdout
    right, classified = 0, 0
    for k in range(4):
        for n in range(10):
            heat = np.load(out / f"q{k}_{n}.npy")
            assert heat.dtype == np.float32 and heat.shape == (SIDE, SIDE)
            assert heat.min() >= 0 and heat.max() <= 1 and heat.max() > 0.9
            right += quadrant_share(heat, k) > 0.5
            assert (out / f"q{k}_{n}.png").stat().st_size > 0
    lines = [line for line in result.stdout.splitlines() if line.endswith(tuple("0123456789"))
             and ": q" in line]
    classified = sum(line.split(": ")[1].startswith(f"q{line.split(os.sep)[-2][1]} ")
                     for line in lines)
    print(f"classified right: {classified} of 40; heat in the right quadrant: {right} of 40")
    assert len(lines) == 40 and classified >= 38  # the network learned the task
    assert right >= 36  # measured: 40 of 40 (and 100 of 100 on 25 images a class)
    picture = Image.open(out / "q0_0.png")
    assert picture.size[0] >= 300 and picture.mode in ("RGB", "RGBA")


def test_another_class_and_layer_and_each_of_the_top_classes(quadrants, tmp_path):
    images, logs = quadrants
    image = images / "q3" / "0.png"
    wide = tmp_path / "wide.png"  # not the network's side: the map has the image's own size
    Image.open(image).resize((48, 24)).save(wide)
    result = call("explain.py", image, wide, "--log-dir", logs, "--out", tmp_path / "top",
                  "--top", 2, "--save-maps", "--layer", "conv3")
    assert result.returncode == 0, result.stderr
    assert "(Grad-CAM at conv3)" in result.stdout
    both = np.load(tmp_path / "top" / "wide.npy")
    assert both.shape == (2, 24, 48) and both.dtype == np.float32
    assert np.load(tmp_path / "top" / "0.npy").shape == (2, SIDE, SIDE)
    asked = call("explain.py", image, "--log-dir", logs, "--out", tmp_path / "q0",
                 "--class", "q0", "--save-maps")
    assert asked.returncode == 0, asked.stderr
    assert f"{image}: q0 " in asked.stdout  # the class asked for, not the top one (q3)
    assert np.load(tmp_path / "q0" / "0.npy").shape == (SIDE, SIDE)


def test_bad_input_is_one_line_and_writes_nothing(quadrants, tmp_path):
    images, logs = quadrants
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    for args, words in (
            ([images / "q0" / "0.png", "--class", "cat"], "--class cat: not a class"),
            ([tmp_path / "missing.png"], "missing.png: no such file"),
            ([images / "q0" / "0.png", bad], "bad.png"),
            ([images / "q0" / "0.png", "--layer", "logits"], "--layer logits: choose a "
                                                             "convolutional layer of flatnet"),
            ([images / "q0" / "0.png", "--layer", ""], "--layer '': choose a convolutional"),
            ([images / "q0" / "0.png", "--top", 5], "--top 5: "),
            ([images / "q0" / "0.png", "--log-dir", tmp_path / "nowhere"], "nowhere")):
        result = call("explain.py", *args, *(["--log-dir", logs] if "--log-dir" not in args
                                             else []), "--out", out)
        assert words in one_line_error(result, "explain.py"), result.stderr
        assert not out.exists()
    out.mkdir()
    (out / "0.png").write_bytes(b"mine")
    result = call("explain.py", images / "q0" / "0.png", "--log-dir", logs, "--out", out)
    assert "already holds" in one_line_error(result, "explain.py")
    assert (out / "0.png").read_bytes() == b"mine"


@pytest.mark.parametrize("arch, side, layer", [("vgg16", 224, "conv5_3"), ("vgg11", 32, "conv2_1"),
                                               ("vgg19", 64, "conv3_4"), ("alexnet", 227, "conv5")])
def test_the_default_layer_follows_the_image_size(arch, side, layer):
    network = nets.get(arch)
    with tf.Graph().as_default():
        _, end_points = network.make(tf1.placeholder(tf.float32, [1, side, side, 3]), 10)
        assert explain.default_layer(explain.map_sides(network, end_points)) == layer
    assert network.conv_layers[-1] == network.last_conv
    if arch.startswith("vgg"):
        assert list(network.conv_layers) == vgg16.conv_layer_names(arch)


def test_names_of_the_pictures_are_unique(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "y.jpg", "z/y.png"]
    helpers.write_png(files[0])
    assert explain.output_names([str(tmp_path)], files[:2]) == ["a_x", "b_x"]
    assert explain.output_names(files, files) == ["x", "x-2", "y", "y-2"]

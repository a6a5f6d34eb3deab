"""The network contract: a network that is not shaped like VGG (tests/tiny_net.py: three
convolutions with batch norm, a global average pool, one dense layer; no fc6, fc7, fc8 or pool5),
registered by the test with nothing but its module and its table entry, goes through every
program: training, evaluation, codes and a head on them, predict and export."""

import json

import numpy as np
import pytest
import tensorflow as tf

import helpers
from helpers import call
import input_data
import nets
import tiny_net
import weights

tf1 = tf.compat.v1
CLASSES = ["ant", "bee", "cow"]


@pytest.fixture(scope="module")
def tinynet(tmp_path_factory):
    """(images, log dir, weights file) of tinynet, registered, trained from scratch on PNGs."""
    nets.register(tiny_net.NETWORK)
    root = tmp_path_factory.mktemp("tinynet")
    helpers.write_folder(root / "images", CLASSES, per_class=20, sizes=((8, 8), (20, 13)))
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", root / "images",
                  "--arch", "tinynet", "--batch-norm", "--pretrained", "none",
                  "--max-steps", 40, "--batch-size", 8, "--val-size", 6,
                  "--learning-rate", 0.05, "--log-every", 10, "--val-every", 20,
                  "--log-dir", root / "logs", cwd=root)
    assert result.returncode == 0, result.stderr
    # a weights file in the public layout ({layer: [weights, biases]}) of its own initial values
    with tf.Graph().as_default():
        tiny_net.build(tf1.placeholder(tf.float32, [None, 16, 16, 3]), 3)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            layers = {layer: [session.run(v) for v in pair]
                      for layer, pair in weights.graph_layers().items()}
    path = root / "tinynet.npy"
    np.save(path, np.array(layers, dtype=object))
    return root / "images", root / "logs", path  # (registered for the session: conftest.py)


def test_it_trains_and_its_checkpoint_holds_exactly_its_layers(tinynet):
    images, logs, _ = tinynet
    config = json.loads((logs / "train" / "config.json").read_text())
    assert config["model"]["arch"] == "tinynet" and config["model"]["image_size"] == 16
    checkpoint = tf.train.latest_checkpoint(str(logs / "train"))
    names = {name for name, _ in tf.train.list_variables(checkpoint)
             if not name.startswith(("global_step", "Momentum")) and "/Momentum" not in name}
    expected = {f"{layer}/{leaf}" for layer in ("conv1", "conv2", "conv3", "logits")
                for leaf in ("weights", "biases")} | {
        f"{layer}/batch_norm/{leaf}" for layer in ("conv1", "conv2", "conv3")
        for leaf in ("gamma", "beta", "moving_mean", "moving_variance")}
    assert names == expected
    assert (logs / "best" / "best.json").exists()


def test_it_evaluates_predicts_and_exports(tinynet, tmp_path):
    images, logs, _ = tinynet
    evaluated = call("evaluate.py", "--data-dir", images, "--log-dir", logs, "--split", "train",
                     cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((logs / "eval" / "train-model.ckpt-40.json").read_text())
    files = [str(images / f) for f in report["images_evaluated"]["files"]]
    assert len(files) == input_data.SOURCES["folder"].num_examples(str(images), "train", 6)
    predicted = call("predict.py", "--json", "--log-dir", logs, "--top", 2, *files,
                     cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    top1 = [p["top"][0]["index"] for p in json.loads(predicted.stdout)]
    assert top1 == report["images_evaluated"]["predictions"]

    exported = call("export.py", "--log-dir", logs, "--out", tmp_path / "exported" / "tiny",
                    cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    serve = tf.saved_model.load(str(tmp_path / "exported" / "tiny" / "1")).signatures[
        "serving_default"]
    from PIL import Image
    classes = [int(serve(images=tf.constant(np.asarray(Image.open(f).convert("RGB"))[None]))[
        "classes"].numpy()[0]) for f in files[:10]]
    assert classes == top1[:10]


def test_its_codes_train_a_head_and_fc_means_its_dense_layer(tinynet, tmp_path):
    images, _, weights_file = tinynet
    out = tmp_path / "codes"
    made = call("extract_codes.py", "--arch", "tinynet", "--weights", weights_file,
                "--dataset", "folder", "--data-dir", images, "--val-size", 6, "--out", out,
                cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layer"] == "gap"  # its default code layer
    with np.load(out / "train.npz") as data:
        train = input_data.SOURCES["folder"].num_examples(str(images), "train", 6)
        assert data["codes"].shape == (train, 16)  # conv3's 16 channels, pooled
    head = call("train_and_val.py", "--codes", out, "--head", "linear", "--max-steps", 20,
                "--batch-size", 8, "--log-dir", tmp_path / "head", cwd=tmp_path)
    assert head.returncode == 0, head.stderr
    evaluated = call("evaluate.py", "--codes", out, "--log-dir", tmp_path / "head",
                     cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr

    frozen = call("train_and_val.py", "--dataset", "folder", "--data-dir", images,
                  "--arch", "tinynet", "--pretrained", weights_file, "--trainable", "fc",
                  "--max-steps", 3, "--batch-size", 8, "--val-size", 6,
                  "--log-dir", tmp_path / "frozen", cwd=tmp_path)
    assert frozen.returncode == 0, frozen.stderr
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "frozen" / "train"))
    loaded = np.load(weights_file, allow_pickle=True).item()  # (the test's own file)
    for layer in ("conv1", "conv2", "conv3"):  # fixed: as the file gave them
        np.testing.assert_array_equal(tf.train.load_variable(checkpoint, f"{layer}/weights"),
                                      loaded[layer][0])
    assert not np.array_equal(tf.train.load_variable(checkpoint, "logits/weights"),
                              loaded["logits"][0])

    wrong = call("extract_codes.py", "--arch", "tinynet", "--weights", weights_file,
                 "--layer", "fc6", "--dataset", "folder", "--data-dir", images,
                 "--out", tmp_path / "bad", cwd=tmp_path)
    line = helpers.one_line_error(wrong, "extract_codes.py")
    assert "--layer fc6: tinynet gives codes at gap" in line

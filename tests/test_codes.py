"""extract_codes.py: the codes are the layer's output on the same images, a second run with the
same manifest touches nothing, every change recomputes, and a killed extraction leaves no codes
that a later run would take as complete."""

import json
import os
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

import helpers
from helpers import call
from helpers import own_lines
from helpers import start
import py2_npy
import tools
import vgg16
import weights as weights_module

tf1 = tf.compat.v1


def extract(root, out, *flags):
    return call("extract_codes.py", "--arch", "vgg11", "--weights", root / "vgg11.npy",
               "--data-dir", root / "data", "--val-size", 100, "--out", out, *flags, cwd=root)


def test_codes_are_the_layer_output_and_are_reused_until_something_changes(workspace, tmp_path,
                                                                           monkeypatch):
    root, weights = workspace
    out = tmp_path / "codes"
    reads, read = [], weights_module.read_weights

    def counted(path):
        reads.append(path)
        return read(path)
    monkeypatch.setattr(weights_module, "read_weights", counted)
    first = extract(root, out, "--layer", "fc7")
    assert first.returncode == 0, first.stderr
    assert reads == [str(root / "vgg11.npy")]  # one network for the three splits: read once
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == {"train": 400, "val": 100, "test": 203}
    assert manifest["layer"] == "fc7" and manifest["network"] == "vgg11"
    test = np.load(out / "test.npz")
    assert test["codes"].shape == (203, 4096) and test["codes"].dtype == np.float32
    assert list(test["files"][:2]) == ["test_batch.bin:0", "test_batch.bin:1"]

    # the same images through a graph built here, decoded here with NumPy
    labels, bgr = helpers.numpy_test_images(root / "data")
    np.testing.assert_array_equal(test["labels"], labels)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        _, end_points = vgg16.build(images, 10, "vgg11")
        with tf1.Session() as session:
            tools.load_pretrained(str(root / "vgg11.npy"), session, skip=(), verbose=False)
            expected = session.run(end_points["fc7"], {images: bgr})
    error = np.linalg.norm(test["codes"] - expected) / np.linalg.norm(expected)
    assert error < 1e-5 and expected.std() > 0

    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = extract(root, out, "--layer", "fc7")
    assert again.returncode == 0 and "up to date" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    other_layer = extract(root, out, "--layer", "pool5")
    assert "Wrote" in other_layer.stdout
    assert np.load(out / "val.npz")["codes"].shape == (100, 512)
    batch = root / "data" / "cifar-10-batches-bin" / "data_batch_2.bin"
    os.utime(batch, ns=(time.time_ns(), time.time_ns()))  # the images changed
    changed = extract(root, out, "--layer", "pool5")
    assert "Wrote" in changed.stdout
    before = np.load(out / "val.npz")["codes"]
    poisoned = tmp_path / "other.npy"
    py2_npy.write(str(poisoned), {**weights, "conv1_1": (weights["conv1_1"][0] * 2,
                                                         weights["conv1_1"][1])})
    other_weights = call("extract_codes.py", "--arch", "vgg11", "--weights", poisoned,
                        "--data-dir", root / "data", "--val-size", 100, "--layer", "pool5",
                        "--out", out, cwd=root)
    assert "Wrote" in other_weights.stdout
    assert not np.allclose(np.load(out / "val.npz")["codes"], before)


def test_a_killed_extraction_is_done_again_and_layers_that_do_not_fit_are_named(workspace,
                                                                                tmp_path):
    root, _ = workspace
    out = tmp_path / "codes"
    process = start("extract_codes.py", "--arch", "vgg11", "--weights", root / "vgg11.npy",
                    "--data-dir", root / "data", "--val-size", 100, "--out", out, cwd=root)
    while "codes of" not in process.stdout.readline():  # killed after the first split
        assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not (out / "manifest.json").exists()
    redone = extract(root, out)
    assert redone.returncode == 0 and "Wrote" in redone.stdout
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    # at 64x64 the file's fc6 (512 inputs) does not fit
    wrong = extract(root, tmp_path / "wrong", "--image-size", 64, "--layer", "fc6")
    line = own_lines(wrong, "extract_codes.py")
    assert wrong.returncode == 2 and len(line) == 1 and "fc6 (shape mismatch)" in line[0]


@pytest.fixture(scope="module")
def fc6_codes(workspace, tmp_path_factory):
    """The workspace's fc6 codes, extracted once for the tests below."""
    root, _ = workspace
    out = tmp_path_factory.mktemp("fc6") / "codes"
    result = extract(root, out, "--layer", "fc6")
    assert result.returncode == 0, result.stderr
    return out


def test_a_head_on_codes_is_a_whole_network_that_predicts_alike_on_images_and_codes(
        workspace, fc6_codes, tmp_path):
    root, weights = workspace
    out, logs = fc6_codes, tmp_path / "logs"
    head = ["--codes", out, "--head", "mlp", "--head-size", 64, "--batch-size", 32,
            "--log-dir", logs, "--val-every", 6, "--log-every", 6, "--ema-decay", "0.5",
            "--learning-rate", "0.001"]
    trained = call("train_and_val.py", *head, "--max-steps", 6, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "Training a mlp head on vgg11's fc6 codes of 400 images" in trained.stdout
    assert "validation at step 6" in trained.stdout

    # the checkpoint holds the backbone as the weights file gave it and the head, nothing else
    resumed = call("train_and_val.py", *head, "--max-steps", 12, cwd=tmp_path)
    assert resumed.returncode == 0 and "Resuming" in resumed.stdout, resumed.stderr
    checkpoint = tf1.train.latest_checkpoint(str(logs / "train"))
    assert checkpoint.endswith("-12") and tf1.train.latest_checkpoint(str(logs / "best"))
    saved = dict(tf1.train.list_variables(checkpoint))
    layers = {name.split("/")[0] for name in saved if name.endswith("/weights")}
    assert layers == set(vgg16.conv_layer_names("vgg11")) | {"fc6", "head_hidden",
                                                             "head_logits"}
    for layer in ("conv1_1", "fc6"):
        np.testing.assert_array_equal(tf1.train.load_variable(checkpoint, f"{layer}/weights"),
                                      weights[layer][0])
    # the head standardizes the codes by the training codes' mean and spread
    train_codes = np.load(out / "train.npz")["codes"]
    np.testing.assert_allclose(tf1.train.load_variable(checkpoint, "head_input/mean"),
                               train_codes.mean(axis=0), rtol=1e-5, atol=1e-5)
    scale = tf1.train.load_variable(checkpoint, "head_input/scale")
    std = train_codes.std(axis=0)
    assert np.all(scale >= std * (1 - 1e-5)) and np.all(scale >= 0.1 * std.mean() * (1 - 1e-5))
    config = json.loads((logs / "train" / "config.json").read_text())
    assert config["model"]["codes_layer"] == "fc6" and config["model"]["head"] == "mlp"
    assert config["model"]["image_size"] == 32 and len(config["class_names"]) == 10

    # the same checkpoint on the test images and on their codes: the same prediction each
    reports = {}
    for how, flags in (("images", ["--data-dir", root / "data"]), ("codes", ["--codes", out])):
        result = call("evaluate.py", "--log-dir", logs, *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "evaluating the moving averages" in result.stdout
        name = "test-model.ckpt-12.json" if how == "images" else "test-codes-model.ckpt-12.json"
        reports[how] = json.loads((logs / "eval" / name).read_text())["images_evaluated"]
    assert reports["images"]["files"] == reports["codes"]["files"]
    assert len(reports["codes"]["files"]) == 203
    assert reports["images"]["predictions"] == reports["codes"]["predictions"]
    assert len(set(reports["codes"]["predictions"])) > 2  # (not one class for every image)


def test_codes_flags_that_contradict_the_manifest_are_refused(workspace, fc6_codes, tmp_path):
    root, weights = workspace
    out = fc6_codes
    other = tmp_path / "other.npy"
    py2_npy.write(str(other), {**weights, "fc8": (weights["fc8"][0] + 1, weights["fc8"][1])})
    cases = [["--codes", str(out), "--arch", "vgg16"],
             ["--codes", str(out), "--image-size", "64"],
             ["--codes", str(out), "--val-size", "50"],
             ["--codes", str(out), "--pretrained", str(other)],
             ["--codes", str(tmp_path)],
             ["--head", "linear"],
             ["--codes", str(out), "--trainable", "fc"]]
    lines = helpers.python_json(
        "import contextlib, io, json, train_and_val; out = []\n"
        f"for flags in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        f"            code = train_and_val.main(flags + ['--log-dir', {str(tmp_path / 'l')!r}])\n"
        "        except SystemExit as e:\n"
        "            code = e.code\n"
        "    out.append([code, err.getvalue().strip().splitlines()])\n"
        "print(json.dumps(out))")
    expected = ["--arch vgg16: the codes", "--image-size 64: the codes", "--val-size 50: the "
                "codes", "is not the weights file the codes", "no manifest.json there",
                "--head goes with --codes", "--trainable do not go with --codes"]
    assert len(lines) == len(expected)
    for (code, err), words in zip(lines, expected):
        assert code == 2 and len(err) == 1 and words in err[0], (words, err)
    assert not (tmp_path / "l").exists()  # nothing was written

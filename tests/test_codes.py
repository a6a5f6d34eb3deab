"""extract_codes.py: the codes are the layer's output on the same images, a second run with the
same manifest touches nothing, every change recomputes, and a killed extraction leaves no codes
that a later run would take as complete."""

import json
import os
import signal
import time

import numpy as np
import tensorflow as tf

import helpers
import py2_npy
import tools
import vgg16
from helpers import own_lines, run, start

tf1 = tf.compat.v1


def extract(root, out, *flags):
    return run("extract_codes.py", "--arch", "vgg11", "--weights", root / "vgg11.npy",
               "--data-dir", root / "data", "--val-size", 100, "--out", out, *flags, cwd=root)


def test_codes_are_the_layer_output_and_are_reused_until_something_changes(workspace, tmp_path):
    root, weights = workspace
    out = tmp_path / "codes"
    first = extract(root, out, "--layer", "fc7")
    assert first.returncode == 0, first.stderr
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
    other_weights = run("extract_codes.py", "--arch", "vgg11", "--weights", poisoned,
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

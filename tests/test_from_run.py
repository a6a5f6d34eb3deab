"""--pretrained from a run: the VGG paper's initialisation of a deeper VGG from a trained VGG11
(--init-layers paper: exactly its layers, batch-norm statistics too), every match with
--init-layers all, and a checkpoint that is not there is one line; and the other direction,
export.py --npy: a run's weights in the public layout."""

import re

import numpy as np
import pytest
import tensorflow as tf

import helpers
from helpers import call
from helpers import one_line_error
from helpers import tiny_args
import tools
from training import from_run
import vgg16
import weights

tf1 = tf.compat.v1
FLAGS = ["--batch-size", 16, "--val-size", 100, "--fc-size", 64, "--batch-norm",
         "--log-every", 1]


@pytest.fixture(scope="module")
def vgg11_run(workspace, tmp_path_factory):
    root, _ = workspace
    logs = tmp_path_factory.mktemp("vgg11") / "logs"
    result = call("train_and_val.py", *FLAGS, "--arch", "vgg11", "--pretrained", "none",
                  "--data-dir", root / "data", "--max-steps", 3, "--log-dir", logs, cwd=root)
    assert result.returncode == 0, result.stderr
    return root, logs


def start_from(root, logs, tmp_path, arch, *flags):
    result = call("train_and_val.py", *FLAGS, "--arch", arch, "--pretrained", logs,
                  "--data-dir", root / "data", "--max-steps", 1, "--log-dir", tmp_path / arch,
                  *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = {line.split()[0]: line.split(None, 1)[1] for line in
              result.stdout.split("Weights from ")[1].splitlines()[1:] if line.startswith("  ")}
    return result, report, str(tmp_path / arch / "train" / "model.ckpt-0")  # (before step 1)


def values(checkpoint, layer):
    return {name: tf1.train.load_variable(checkpoint, name)
            for name, _ in tf1.train.list_variables(checkpoint)
            if name.split("/")[0] == layer and from_run.copied(name)}


def test_the_papers_layers_of_a_vgg11_run_start_a_vgg16(vgg11_run, tmp_path):
    root, logs = vgg11_run
    result, report, start = start_from(root, logs, tmp_path, "vgg16", "--init-layers", "paper",
                                       "--skip", "")
    source = str(logs / "train" / "model.ckpt-3")
    assert f"Weights from {source}:" in result.stdout
    loaded = [layer for layer, status in report.items() if status.startswith("loaded")]
    assert loaded == list(from_run.PAPER_LAYERS)
    for layer in loaded:
        theirs, ours = values(source, layer), values(start, layer)
        # batch norm's scale, offset and moving statistics come too
        assert len(theirs) == (6 if layer.startswith("conv") else 2) and theirs.keys() == \
            ours.keys()
        for name, value in theirs.items():
            np.testing.assert_array_equal(ours[name], value, err_msg=name)
    for layer in ("conv1_2", "conv5_3"):
        assert report[layer] == "skipped: not in the paper's set (--init-layers paper)", layer
    assert not [n for n, _ in tf1.train.list_variables(start) if "lr_schedule" in n]


def test_every_layer_that_matches_starts_a_vgg13_and_the_rest_is_named(vgg11_run, tmp_path):
    root, logs = vgg11_run
    _, report, start = start_from(root, logs, tmp_path, "vgg13", "--fc-size", 32,
                                  "--ema-decay", 0.9)
    source = str(logs / "train" / "model.ckpt-3")
    for layer in ("conv1_1", "conv2_1", "conv3_1", "conv3_2", "conv4_1", "conv5_2"):
        assert report[layer] == "loaded: 6 variables", layer
    # the moving averages start from the loaded weights
    np.testing.assert_array_equal(
        tf1.train.load_variable(start, "conv4_1/weights/ExponentialMovingAverage"),
        tf1.train.load_variable(source, "conv4_1/weights"))
    assert report["conv1_2"] == "not in checkpoint: left at its initial value"
    assert report["fc6"].startswith("not loaded: fc6/weights [512, 64] vs graph [512, 32]")
    assert report["fc8"] == "skipped: asked"  # (the default --skip, as with a weights file)
    assert tf1.train.load_variable(start, "global_step") == 0


def test_batch_norm_in_the_checkpoint_and_not_in_the_graph_is_not_loaded(vgg11_run, tmp_path):
    root, logs = vgg11_run
    result = call("train_and_val.py", "--batch-size", 16, "--val-size", 100, "--fc-size", 64,
                  "--arch", "vgg11", "--pretrained", logs, "--data-dir", root / "data",
                  "--max-steps", 1, "--log-dir", tmp_path / "plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("  conv1_1 "))
    assert "not loaded: the checkpoint also has conv1_1/batch_norm/beta" in line, line
    assert re.search(r"^  fc6 +loaded: 2 variables$", result.stdout, re.M)


def test_a_run_or_checkpoint_that_is_not_there_is_one_line(workspace, tmp_path):
    root, _ = workspace
    (tmp_path / "empty").mkdir()
    for missing in (tmp_path / "empty", tmp_path / "logs" / "train" / "model.ckpt-9.index"):
        line = one_line_error(call("train_and_val.py", *FLAGS, "--arch", "vgg11",
                                   "--pretrained", missing, "--data-dir", root / "data",
                                   "--log-dir", tmp_path / "new", cwd=tmp_path))
        assert line.startswith(f"train_and_val.py: --pretrained {missing}: "), line
        assert "--checkpoint" not in line, line
    line = one_line_error(call("train_and_val.py", "--arch", "alexnet", "--init-layers", "paper",
                               "--data-dir", root / "data", "--log-dir", tmp_path / "new",
                               cwd=tmp_path))
    assert "--init-layers paper: the VGG paper's layers" in line and "not of alexnet" in line


def test_a_run_whose_newest_checkpoint_is_damaged_names_one_to_pass_to_pretrained(workspace,
                                                                                 tmp_path):
    root, _ = workspace
    train = helpers.tiny_run(root, tmp_path, "--max-steps", 4, "--save-every", 2) / "train"
    data = next(train.glob("model.ckpt-4.data-*"))
    data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
    flags = tiny_args(root, tmp_path, "--max-steps", 1, "--log-dir", tmp_path / "next")
    line = one_line_error(call("train_and_val.py", *flags, "--pretrained", tmp_path / "logs",
                               cwd=tmp_path))
    assert f"{train / 'model.ckpt-4'} is damaged" in line and "--checkpoint" not in line, line
    assert f"use --pretrained {train / 'model.ckpt-2'}, the newest good one" in line, line
    assert not [p for p in (tmp_path / "next").rglob("*") if p.is_file() and
                p.name != "run.lock"]  # (no checkpoint, no config.json)
    started = call("train_and_val.py", *flags, "--pretrained", train / "model.ckpt-2",
                   cwd=tmp_path)  # what the line says to do
    assert started.returncode == 0 and f"Weights from {train / 'model.ckpt-2'}" in \
        started.stdout, started.stderr


def test_export_npy_writes_the_public_layout_that_gives_the_runs_logits(vgg11_run, tmp_path):
    root, logs = vgg11_run
    out = tmp_path / "vgg11.npy"
    result = call("export.py", "--log-dir", logs, "--npy", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(batch norm folded in)" in result.stdout
    layers = weights.read_weights(str(out))  # the project's own safe reader
    assert sorted(layers) == sorted(vgg16.layer_names("vgg11"))
    source = str(logs / "train" / "model.ckpt-3")
    for name in ("weights", "biases"):  # fc layers have no batch norm: exactly the checkpoint's
        np.testing.assert_array_equal(layers["fc6"][("weights", "biases").index(name)],
                                      tf1.train.load_variable(source, f"fc6/{name}"))
    x = np.random.default_rng(0).uniform(-100, 100, (4, 32, 32, 3)).astype(np.float32)

    def logits(batch_norm, load):
        with tf.Graph().as_default():
            images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
            out, _ = vgg16.build(images, 10, "vgg11", batch_norm=batch_norm, fc_size=64)
            with tf1.Session() as session:
                load(session)
                return session.run(out, {images: x})
    expected = logits(True, lambda s: tf1.train.Saver(tf1.global_variables()).restore(s, source))
    got = logits(False, lambda s: tools.load_pretrained(str(out), s, skip=(), strict=True,
                                                        verbose=False))
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-5
    written = out.read_bytes()
    again = call("export.py", "--log-dir", logs, "--npy", out, cwd=tmp_path)
    assert one_line_error(again, "export.py").endswith("exists already; give another path "
                                                       "(nothing is overwritten)")
    assert out.read_bytes() == written

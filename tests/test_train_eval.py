"""train_and_val.py and evaluate.py end to end, as a user runs them, on a small learnable data set.

VGG11 on 500 training records (100 held out for validation) and 203 test records, starting from a
weights file in the public layout, so the runs take seconds on a CPU.
"""

import io
import json
import re
import shutil
import signal
import time

import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
import tensorflow as tf

from common import devices
import helpers
from helpers import COMMON
from helpers import call
from helpers import own_lines
from helpers import start
from helpers import tiny_args
from helpers import train_args
import py2_npy
import vgg16

tf1 = tf.compat.v1
@pytest.fixture(scope="module")
def trained(workspace):
    root, _ = workspace
    result = call("train_and_val.py", *COMMON, "--pretrained", "vgg11.npy", "--max-steps", 40,
                 "--val-every", 20, "--save-every", 20, "--summary-every", 20,
                 "--histograms", "--log-dir", "logs", cwd=root)
    assert result.returncode == 0, result.stderr
    return root, result.stdout


def progress(stdout, field):
    return [float(m) for m in re.findall(rf"^step \d+/\d+ .*\b{field} ([\d.]+)", stdout, re.M)]


def validations(stdout):
    return [(int(s), float(a)) for s, a in
            re.findall(r"^validation at step (\d+): loss [\d.]+, accuracy ([\d.]+)", stdout,
                       re.M)]


def scalars(folder, tag):
    accumulator = event_accumulator.EventAccumulator(str(folder))
    accumulator.Reload()
    assert tag in accumulator.Tags()["scalars"], accumulator.Tags()
    return {e.step: e.value for e in accumulator.Scalars(tag)}


def test_training_lowers_the_loss_and_validates_well_above_chance(trained):
    _, stdout = trained
    assert "Pretrained weights from vgg11.npy:" in stdout
    assert re.search(r"^\s+fc8\s+skipped: asked$", stdout, re.M)
    losses = progress(stdout, "loss")
    assert len(losses) == 4
    assert losses[-1] < 0.5 * losses[0]
    assert [step for step, _ in validations(stdout)] == [20, 40]
    assert validations(stdout)[-1][1] > 0.6  # chance is 0.1
    assert re.search(r"\b\d+ images/s\b", stdout) and re.search(r"\d+:\d\d:\d\d left", stdout)


def test_tensorboard_finds_train_and_val_curves_that_differ(trained):
    root, _ = trained
    for tag in ("loss", "accuracy"):
        train = scalars(root / "logs" / "train", tag)
        val = scalars(root / "logs" / "val", tag)
        assert sorted(val) == [20, 40]
        assert len(train) >= 2
        # each against the training value last written before it (an accuracy may reach 1.0
        # on both sides once the small data set is learned: then at least the other differs)
        differ = [value != train[max(s for s in train if s <= step)]
                  for step, value in val.items()]
        assert all(differ) if tag == "loss" else any(differ), (tag, val, train)
    assert set(scalars(root / "logs" / "train", "learning_rate"))
    assert set(scalars(root / "logs" / "train", "images_per_sec"))
    accumulator = event_accumulator.EventAccumulator(str(root / "logs" / "train"))
    accumulator.Reload()
    assert accumulator.Tags()["images"]


def images_of(folder):
    """{tag: [(step, PIL image)]} of the image summaries in ``folder``."""
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.IMAGES: 0,
                                    event_accumulator.HISTOGRAMS: 0})
    accumulator.Reload()
    return accumulator, {tag: [(e.step, Image.open(io.BytesIO(e.encoded_image_string)))
                               for e in accumulator.Images(tag)]
                         for tag in accumulator.Tags()["images"]}


def test_tensorboard_shows_filters_histograms_activations_and_hparams(trained, workspace):
    root, _ = trained
    train, train_images = images_of(root / "logs" / "train")
    # conv1_1's 64 filters, 3x3 drawn at 30x30, in an 8x8 grid with 1-pixel gaps
    [(step, grid), *_] = train_images["filters/conv1_1/image"]
    assert grid.size == (8 * 31 - 1, 8 * 31 - 1) and step == 1  # (the first: at step 1)
    pixels = np.asarray(grid.convert("RGB"), np.float32)[:30, :30]  # the first filter
    kernel = workspace[1]["conv1_1"][0][:, :, :, 0]  # (not trained away from in 40 steps)
    assert np.corrcoef(pixels[::10, ::10].ravel(), kernel.ravel())[0, 1] > 0.9
    layers = [layer for layer in vgg16.layer_names("vgg11") if layer not in ("fc6", "fc7")]
    for kind in ("weights", "gradients"):
        assert {f"{kind}/{layer}" for layer in layers} <= set(train.Tags()["histograms"])
    weights_hist = train.Histograms("weights/conv2_1")
    assert [e.step for e in weights_hist][:2] == [1, 21]  # every --summary-every 20 steps
    # a sample of at most 2 ** 16 of its 3 * 3 * 64 * 128 = 73,728 weights: every second one
    assert weights_hist[0].histogram_value.num == 73728 // 2
    assert train.Histograms("gradients/fc8")[0].histogram_value.num == 512 * 10
    # three validation images, the first 16 maps of each, at the first, middle and last of
    # VGG11's 8 convolutions, conv1_1 (32x32), conv4_1 (4x4) and conv5_2 (2x2), each drawn at
    # least 32 pixels on a side, with 1-pixel gaps
    _, val_images = images_of(root / "logs" / "val")
    assert set(val_images) == {"activations/conv1_1", "activations/conv4_1",
                               "activations/conv5_2"}
    for tag, shown in val_images.items():
        assert [step for step, _ in shown] == [20, 40]
        assert {image.size for _, image in shown} == {(16 * 33 - 1, 3 * 33 - 1)}
        assert np.asarray(shown[-1][1]).std() > 10  # maps, not a blank
    # the recipe, for the HParams tab: the flags of the run
    hparams = event_accumulator.EventAccumulator(str(root / "logs"))
    hparams.Reload()
    [start] = hparams.Tensors("_hparams_/session_start_info")
    data = plugin_data_pb2.HParamsPluginData.FromString(
        hparams.summary_metadata["_hparams_/session_start_info"].plugin_data.content)
    assert data.session_start_info.hparams["arch"].string_value == "vgg11"
    assert data.session_start_info.hparams["batch_size"].number_value == 16
    assert data.session_start_info.hparams["batch_norm"].bool_value is False
    assert start.step == 0


def test_best_checkpoint_is_kept_apart(trained):
    root, stdout = trained
    best = read_json(root / "logs" / "best" / "best.json")
    best_step, best_accuracy = max(validations(stdout), key=lambda v: v[1])
    assert best["step"] == best_step
    assert abs(best["val_accuracy"] - best_accuracy) < 1e-4
    assert tf1.train.latest_checkpoint(str(root / "logs" / "best")).endswith(f"-{best_step}")
    assert tf1.train.latest_checkpoint(str(root / "logs" / "train")).endswith("-40")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def own_test_predictions(root, checkpoint):
    """Predictions of the checkpoint on test_batch.bin, decoded and preprocessed here with
    NumPy rather than by input_data."""
    labels, bgr = helpers.numpy_test_images(root / "data")
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, _ = vgg16.build(images, 10, "vgg11", fc_size=0)  # as helpers.COMMON trains
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, checkpoint)
            predictions = session.run(tf.argmax(logits, -1), {images: bgr})
    return labels, predictions


def test_evaluate_counts_every_test_image_and_matches_the_checkpoint(trained):
    root, _ = trained
    checkpoint = str(root / "logs" / "train" / "model.ckpt-40")
    result = call("evaluate.py", "--log-dir", "logs", "--checkpoint", checkpoint,
                 "--batch-size", 50, cwd=root)
    assert result.returncode == 0, result.stderr
    assert "evaluated 203 test images" in result.stdout  # 203 = 4 * 50 + 3
    report = read_json(root / "logs" / "eval" / "test-model.ckpt-40.json")
    labels, predictions = own_test_predictions(root, checkpoint)
    assert report["images"] == 203
    assert report["accuracy"] == pytest.approx(np.mean(labels == predictions), abs=1e-9)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 203 and np.trace(matrix) == (labels == predictions).sum()
    assert (root / "logs" / "eval" / "test-model.ckpt-40.png").stat().st_size > 10_000
    assert scalars(root / "logs" / "eval", "test/accuracy") == {
        40: pytest.approx(report["accuracy"])}
    for name in ("airplane", "truck"):
        assert re.search(rf"^\s+{name}\s+[\d.]+$", result.stdout, re.M)


def test_evaluate_best_and_errors(trained):
    root, _ = trained
    result = call("evaluate.py", "--best", "--split", "val", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "evaluated 100 val images" in result.stdout
    result = call("evaluate.py", "--log-dir", "nowhere", cwd=root)
    assert result.returncode == 2 and "no checkpoint in nowhere" in result.stderr
    assert "Traceback" not in result.stderr and len(own_lines(result, "evaluate.py")) == 1


def test_resume_continues_the_step_without_reloading_weights(trained, tmp_path):
    root, _ = trained
    shutil.copytree(root / "logs", tmp_path / "logs")
    result = call("train_and_val.py", *train_args(root, tmp_path, "--max-steps", 45,
                                                 "--val-every", 30), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "model.ckpt-40 (step 40)" in result.stdout
    assert "Pretrained weights from" not in result.stdout
    assert progress(result.stdout, "loss") and re.search(r"^step 45/45 ", result.stdout, re.M)
    assert tf1.train.latest_checkpoint(str(tmp_path / "logs" / "train")).endswith("-45")
    runs = read_json(tmp_path / "logs" / "train" / "config.json")["runs"]
    assert [r["start_step"] for r in runs] == [0, 40]

    other = call("train_and_val.py", *train_args(root, tmp_path, "--arch", "vgg13"),
                cwd=tmp_path)
    assert other.returncode == 2
    assert "another model" in other.stderr and "vgg11" in other.stderr
    assert "Traceback" not in other.stderr and len(own_lines(other, "train_and_val.py")) == 1
    other = call("train_and_val.py", *train_args(root, tmp_path, "--val-size", 50),
                cwd=tmp_path)
    assert other.returncode == 2 and "trained with --val-size 100" in other.stderr


def test_freezing_keeps_the_conv_weights_pretrained(workspace, tmp_path):
    root, weights = workspace
    # the workspace's convolutions with an fc6 and fc7 of 64 (loaded, then trained; fc8 starts
    # afresh), and moving averages of the weights, which start from the loaded weights
    rng = np.random.default_rng(1)
    weights = {layer: weights[layer] for layer in vgg16.conv_layer_names("vgg11")}
    for layer, rows in (("fc6", 512), ("fc7", 64)):
        weights[layer] = [rng.normal(0, np.sqrt(2 / rows), (rows, 64)).astype(np.float32),
                          rng.normal(0, 0.01, 64).astype(np.float32)]
    py2_npy.write(str(tmp_path / "fc64.npy"), weights)
    result = call("train_and_val.py", *train_args(root, tmp_path, "--trainable", "fc",
                                                 "--pretrained", tmp_path / "fc64.npy",
                                                 "--fc-size", 64, "--max-steps", 8,
                                                 "--val-every", 100, "--ema-decay", "0.9"),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checkpoint = tf1.train.latest_checkpoint(str(tmp_path / "logs" / "train"))
    assert checkpoint.endswith("-8")
    saved = dict(tf1.train.list_variables(checkpoint))
    for layer in vgg16.conv_layer_names("vgg11"):
        np.testing.assert_array_equal(tf1.train.load_variable(checkpoint, f"{layer}/weights"),
                                      weights[layer][0])
        # only what trains is averaged; evaluation restores the rest from itself (below)
        assert f"{layer}/weights/ExponentialMovingAverage" not in saved
    # the loaded fc7 trains and is averaged, and so is fc8, started afresh
    assert re.search(r"^ +fc6 +loaded.*\n +fc7 +loaded", result.stdout, re.M), result.stdout
    first = tf1.train.load_variable(str(tmp_path / "logs" / "train" / "model.ckpt-0"),
                                    "fc8/weights")
    for layer, begin in (("fc7", weights["fc7"][0]), ("fc8", first)):
        trained = tf1.train.load_variable(checkpoint, f"{layer}/weights")
        assert not np.array_equal(trained, begin), layer
        average = tf1.train.load_variable(checkpoint,
                                          f"{layer}/weights/ExponentialMovingAverage")
        assert not np.array_equal(average, trained), layer
        assert not np.array_equal(average, begin), layer
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", tmp_path / "logs",
                    "--tta", "flip", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluating the moving averages" in evaluated.stdout
    assert "evaluated 203 test images" in evaluated.stdout


def wait_for_checkpoint(folder, process, beyond=-1, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        checkpoint = tf1.train.latest_checkpoint(str(folder))
        if checkpoint and int(checkpoint.rsplit("-", 1)[1]) > beyond:
            return int(checkpoint.rsplit("-", 1)[1])
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def test_sigint_saves_and_the_next_run_resumes_there(workspace, tmp_path):
    """(That a SIGKILL at any moment loses no complete checkpoint is in test_behaviour_kills.py.)"""
    root, _ = workspace
    def args(max_steps):
        return tiny_args(root, tmp_path, "--max-steps", max_steps, "--val-every", 100000,
                         "--save-every", 5)
    train_dir = tmp_path / "logs" / "train"

    process = start("train_and_val.py", *args(100000), cwd=tmp_path)
    first = wait_for_checkpoint(train_dir, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    interrupted = int(tf1.train.latest_checkpoint(str(train_dir)).rsplit("-", 1)[1])
    assert interrupted >= first
    assert "Stopped by SIGINT" in stdout and "Traceback" not in stderr
    assert f"saved {train_dir / f'model.ckpt-{interrupted}'}" in stdout

    result = call("train_and_val.py", *args(interrupted + 3), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resumed = re.search(r"model\.ckpt-(\d+) \(step (\d+)\)", result.stdout)
    assert resumed and int(resumed.group(2)) == interrupted
    assert tf1.train.latest_checkpoint(str(train_dir)).endswith(f"-{interrupted + 3}")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(workspace, tmp_path):
    root, _ = workspace
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--learning-rate", 1e12,
                                                "--warmup-steps", 0, "--max-steps", 50),
                 cwd=tmp_path)
    assert result.returncode == 1
    assert "NaN" in result.stderr and "Traceback" not in result.stderr
    # only the checkpoint of the starting point, written before the first step, is there
    last_good = tf1.train.latest_checkpoint(str(tmp_path / "logs" / "train"))
    assert last_good.endswith("model.ckpt-0") and last_good in result.stderr


@pytest.mark.parametrize("flags,message", [
    (["--image-size", "40"], "--image-size must be a multiple of 32"),
    (["--trainable", "conv9_9"], "--trainable"),
    (["--pretrained", "missing.npy"], "--pretrained missing.npy: no such file"),
    (["--data-dir", "empty"], "empty"),
])
def test_bad_input_is_one_clear_line(workspace, tmp_path, flags, message):
    root, _ = workspace
    # a batches folder with one empty file: it is checked, not downloaded into
    (tmp_path / "empty" / "cifar-10-batches-bin").mkdir(parents=True)
    (tmp_path / "empty" / "cifar-10-batches-bin" / "data_batch_1.bin").touch()
    args = ["--data-dir", root / "data", "--log-dir", tmp_path / "logs", "--val-size", 100,
            *flags]
    result = call("train_and_val.py", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(own_lines(result, "train_and_val.py")) == 1


def test_precision_the_machine_cannot_run_is_a_clear_error(workspace, tmp_path):
    root, _ = workspace
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU, so fp16 is allowed")
    result = call("train_and_val.py", *train_args(root, tmp_path, "--precision", "fp16"),
                 cwd=tmp_path)
    assert result.returncode == 2
    assert "--precision fp16 needs a GPU" in result.stderr
    assert len(own_lines(result, "train_and_val.py")) == 1
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.index"))


@pytest.mark.skipif(not devices.cpu_has_bf16(), reason="the CPU has no bfloat16 instructions")
def test_bf16_training_still_lowers_the_loss(workspace, tmp_path):
    root, _ = workspace
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--precision", "bf16",
                                                "--max-steps", 20, "--val-every", 20),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    losses = progress(result.stdout, "loss")
    assert losses[-1] < 0.5 * losses[0]
    assert validations(result.stdout)[-1][1] > 0.3


def test_fc_size_default_follows_the_image_size_and_a_resumed_run(tmp_path):
    """Without --fc-size: 0 (fc8 on pool5) at 32x32, 4096 where pretrained fc6 loads (224x224,
    --fold-fc6), and a resumed run's own; given, it is kept. One process parses every case."""
    logs = tmp_path / "logs"
    (logs / "train").mkdir(parents=True)
    (logs / "train" / "config.json").write_text(json.dumps({
        "model": {"arch": "vgg11", "batch_norm": False, "image_size": 32, "num_classes": 10,
                  "fc_size": 256}, "runs": [{"val_size": 100}]}))
    cases = [(["--log-dir", tmp_path / "new"], False, 0),
             (["--log-dir", tmp_path / "new", "--image-size", "224"], False, 4096),
             (["--log-dir", tmp_path / "new", "--fold-fc6"], False, 4096),
             (["--log-dir", tmp_path / "new", "--fc-size", "512"], False, 512),
             (["--log-dir", logs], True, 256),  # a checkpoint to resume: its own size
             (["--log-dir", logs], False, 0)]  # a config.json but no checkpoint: the default
    sizes = helpers.python_json(
        "import json, train_and_val; from training import config, runs; out = []\n"
        f"for flags, resuming in {[([str(f) for f in c[0]], c[1]) for c in cases]!r}:\n"
        "    args = train_and_val.parse_args(['--arch', 'vgg11'] + flags)\n"
        "    out.append(config.resolve_fc_size(args, runs.RunDir(args.log_dir), resuming))\n"
        "print(json.dumps(out))")
    assert sizes == [c[2] for c in cases]


def test_a_folder_of_images_trains_and_evaluates_with_its_class_names(tmp_path):
    helpers.write_folder(tmp_path / "images", ["cat", "dog", "emu"])
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", tmp_path / "images",
                 "--arch", "tinynet", "--pretrained", "none", "--batch-norm", "--max-steps", 4,
                 "--batch-size", 8, "--val-size", 4, "--log-dir", tmp_path / "logs",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = read_json(tmp_path / "logs" / "train" / "config.json")
    assert config["class_names"] == ["cat", "dog", "emu"]
    assert config["model"]["num_classes"] == 3 and config["model"]["fc_size"] == 0
    evaluated = call("evaluate.py", "--data-dir", tmp_path / "images", "--log-dir",
                    tmp_path / "logs", "--split", "val", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluated 4 val images" in evaluated.stdout
    assert re.search(r"^\s+emu\s+[\d.]+$", evaluated.stdout, re.M)
    report = read_json(tmp_path / "logs" / "eval" / "val-model.ckpt-4.json")
    assert report["class_names"] == ["cat", "dog", "emu"]

    helpers.write_folder(tmp_path / "other", ["cat", "emu"])
    other = call("evaluate.py", "--data-dir", tmp_path / "other", "--log-dir", tmp_path / "logs",
                cwd=tmp_path)
    line = own_lines(other, "evaluate.py")
    assert other.returncode == 2 and len(line) == 1 and "trained on cat, dog, emu" in line[0]

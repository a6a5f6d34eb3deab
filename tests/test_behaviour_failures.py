"""Fewer ways to fail: what a sweep of bad inputs found, each as a user meets it. Every case is
one line naming the file or flag, exit code 2, no traceback, and nothing the user had changed."""

import json
import shutil

import pytest
import tensorflow as tf

import helpers
from helpers import call
from helpers import one_line_error
from helpers import tiny_args
from helpers import train_args


@pytest.fixture(scope="module")
def trained_run(workspace, tmp_path_factory):
    """A short tinynet run on the workspace's data: (workspace root, its log dir)."""
    root, _ = workspace
    return root, helpers.tiny_run(root, tmp_path_factory.mktemp("failures"), "--max-steps", 4)


@pytest.fixture
def copied_run(trained_run, tmp_path):
    root, logs = trained_run
    shutil.copytree(logs, tmp_path / "logs")
    return root, tmp_path / "logs"


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "run.lock"}


def edit_config(logs, **model):
    path = logs / "train" / "config.json"
    config = json.loads(path.read_text())
    config["model"].update(model)
    path.write_text(json.dumps(config))


# (what the model's entry says, the programs that read it, words of the line)
DAMAGED_MODELS = [({"arch": "vgg99"}, "arch is 'vgg99', where it must be one of the networks"),
                  ({"arch": ["vgg11"]}, "arch is ['vgg11'], where it must be one of the"),
                  ({"image_size": "32"}, "image_size is '32', where it must be a whole number"),
                  ({"num_classes": "10"}, "num_classes is '10', where it must be a whole"),
                  ({"batch_norm": "no"}, "batch_norm is 'no', where it must be true or false")]


@pytest.mark.parametrize("model,words", DAMAGED_MODELS)
def test_a_damaged_config_json_is_one_line_in_every_program(copied_run, tmp_path, model, words):
    root, logs = copied_run
    edit_config(logs, **model)
    before = files(logs)
    for program, flags in (("evaluate.py", ["--data-dir", root / "data"]),
                           ("predict.py", [helpers.write_png(tmp_path / "a.png")]),
                           ("export.py", ["--out", tmp_path / "exported"]),
                           ("train_and_val.py", tiny_args(root, tmp_path, "--max-steps", 6,
                                                          "--log-dir", logs))):
        line = one_line_error(call(program, "--log-dir", logs, *flags, cwd=tmp_path), program)
        assert words in line and "config.json" in line, (program, line)
    assert files(logs) == before
    assert not (tmp_path / "exported").exists()


def test_a_damaged_best_json_is_one_line_before_anything_is_written(copied_run, tmp_path):
    root, logs = copied_run
    best = logs / "best" / "best.json"
    best.write_text(json.dumps({**json.loads(best.read_text()), "val_accuracy": "0.9"}))
    before = files(logs)
    line = one_line_error(call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 8,
                                                              "--log-dir", logs),
                               cwd=tmp_path))
    assert "best.json: val_accuracy is '0.9'" in line
    assert files(logs) == before


def test_resuming_on_another_dataset_is_refused(copied_run, tmp_path):
    root, logs = copied_run
    helpers.write_folder(tmp_path / "images", [str(c) for c in range(10)], per_class=4)
    before = files(logs)
    line = one_line_error(call("train_and_val.py", *tiny_args(
        root, tmp_path, "--max-steps", 8, "--log-dir", logs, "--dataset", "folder",
        "--data-dir", tmp_path / "images", "--val-size", 4), cwd=tmp_path))
    assert "was trained on --dataset cifar10" in line and "--dataset folder" in line
    assert files(logs) == before


# ----------------------------------------------------------------------------------------------
# Image folders and CIFAR-10 files
# ----------------------------------------------------------------------------------------------

def bmp16(path, pixels):
    """A 16-bit BMP (5-5-5 RGB, uncompressed) of uint8 RGB ``pixels``: Pillow reads it,
    tf.io.decode_image does not."""
    import struct

    import numpy as np

    height, width, _ = pixels.shape
    row = (width * 2 + 3) // 4 * 4
    data = bytearray()
    for y in range(height - 1, -1, -1):  # bottom-up
        p = pixels[y].astype(np.uint16) >> 3
        values = (p[:, 0] << 10) | (p[:, 1] << 5) | p[:, 2]
        data += values.astype("<u2").tobytes().ljust(row, b"\0")
    header = struct.pack("<2sIHHI", b"BM", 54 + len(data), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 0, len(data), 2835, 2835, 0, 0)
    path.write_bytes(header + info + bytes(data))
    return path


def test_a_16_bit_bmp_is_decoded_by_pillow_in_training_and_predict(tmp_path):
    import numpy as np
    from PIL import Image

    helpers.write_folder(tmp_path / "images", ["a", "b"], per_class=6)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    bmp = bmp16(tmp_path / "images" / "a" / "x.bmp", pixels)
    assert Image.open(bmp).mode == "RGB"
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", tmp_path / "images",
                  "--arch", "tinynet", "--pretrained", "none", "--max-steps", 2,
                  "--batch-size", 4, "--val-size", 2, "--log-dir", tmp_path / "logs",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = call("predict.py", "--json", "--log-dir", tmp_path / "logs", bmp, cwd=tmp_path)
    assert predicted.returncode == 0 and "Traceback" not in predicted.stderr, predicted.stderr
    assert json.loads(predicted.stdout)[0]["file"] == str(bmp)


def test_a_named_pipe_among_the_images_is_named_and_nothing_hangs(tmp_path):
    import os
    import stat
    import threading

    helpers.write_folder(tmp_path / "images", ["a", "b"], per_class=6)
    os.mkfifo(tmp_path / "images" / "a" / "x.png")
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(call(
        "input_data.py", "--show", "--dataset", "folder", "--data-dir", tmp_path / "images",
        "--out", tmp_path / "grid.png", cwd=tmp_path)), daemon=True)
    worker.start()
    worker.join(60)
    if not outcome:  # open the pipe's other end, so the check that hangs can end
        os.close(os.open(tmp_path / "images" / "a" / "x.png", os.O_WRONLY | os.O_NONBLOCK))
    assert outcome, "the check of the images hung on a named pipe"
    line = one_line_error(outcome[0], "input_data.py")
    assert "x.png (not a regular file)" in line
    assert stat.S_ISFIFO(os.stat(tmp_path / "images" / "a" / "x.png").st_mode)  # left alone


@pytest.mark.parametrize("val", ["empty", "dangling"])
def test_an_empty_or_unmounted_val_folder_is_named_before_anything_is_written(tmp_path, val):
    import os

    helpers.write_folder(tmp_path / "images" / "train", ["a", "b"], per_class=4)
    where = tmp_path / "images" / "val"
    if val == "empty":
        where.mkdir()
    else:  # a link to a disk that is not mounted
        os.symlink(tmp_path / "unmounted" / "val", where)
    line = one_line_error(call("train_and_val.py", "--dataset", "folder", "--data-dir",
                               tmp_path / "images", "--arch", "tinynet", "--pretrained", "none",
                               "--max-steps", 2, "--batch-size", 4, "--log-dir",
                               tmp_path / "logs", cwd=tmp_path))
    words = (f"{where}, the val split of {tmp_path / 'images'}, holds no images" if
             val == "empty" else f"{where} is a link to {tmp_path / 'unmounted' / 'val'}, which"
             " is not there")
    assert words in line, line
    assert not (tmp_path / "logs").exists()


def test_cifar_meta_that_is_not_text_and_a_grid_over_a_data_file_are_one_line(tmp_path):
    folder = helpers.write_dataset(str(tmp_path / "data"), per_file=20, test_count=20)
    (tmp_path / "data" / "cifar-10-batches-bin" / "batches.meta.txt").write_bytes(
        b"\xff\xfe\x00\x81 not text")
    line = one_line_error(call("input_data.py", "--show", "--data-dir", tmp_path / "data",
                               "--val-size", 10, "--out", tmp_path / "grid.png", cwd=tmp_path),
                          "input_data.py")
    assert "batches.meta.txt is not text" in line
    (tmp_path / "data" / "cifar-10-batches-bin" / "batches.meta.txt").unlink()
    data_file = tmp_path / "data" / "cifar-10-batches-bin" / "data_batch_1.bin"
    before = data_file.read_bytes()
    for out, words in ((data_file, "the grid is a picture"),
                       (f"{folder}/grid.png", "is inside --data-dir")):
        line = one_line_error(call("input_data.py", "--show", "--data-dir", tmp_path / "data",
                                   "--val-size", 10, "--out", out, cwd=tmp_path),
                              "input_data.py")
        assert words in line
    assert data_file.read_bytes() == before
    # beside the data's folders, in any format matplotlib writes, a grid is fine
    shown = call("input_data.py", "--show", "--data-dir", tmp_path / "data", "--val-size", 10,
                 "--out", tmp_path / "data" / "grid.tif", cwd=tmp_path)
    assert shown.returncode == 0 and (tmp_path / "data" / "grid.tif").stat().st_size, shown.stderr


def test_an_empty_out_is_named(copied_run, tmp_path):
    _, logs = copied_run
    line = one_line_error(call("export.py", "--log-dir", logs, "--out", "", cwd=tmp_path),
                          "export.py")
    assert "argument --out: must name a file or folder" in line


def test_a_second_export_to_the_same_out_meanwhile_takes_the_next_version(copied_run, tmp_path,
                                                                         monkeypatch):
    from inference import tflite

    _, logs = copied_run
    out, real = tmp_path / "exported", tflite.write

    def write(folder, *args, **kwargs):  # another export.py finishes version 1 meanwhile
        real(folder, *args, **kwargs)
        (out / "1").mkdir()
        (out / "1" / "model.tflite").write_bytes(b"the other export's")

    monkeypatch.setattr(tflite, "write", write)
    result = call("export.py", "--log-dir", logs, "--format", "tflite", "--out", out,
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"to {out / '2' / 'model.tflite'}" in result.stdout
    assert (out / "1" / "model.tflite").read_bytes() == b"the other export's"
    assert sorted(p.name for p in out.iterdir()) == ["1", "2"]


def test_a_huge_batch_size_reads_everything_as_one_batch_and_nothing_hangs(copied_run,
                                                                          tmp_path):
    import threading

    root, logs = copied_run
    picture = helpers.write_png(tmp_path / "a.png", (16, 16))
    huge = 10 ** 12  # (tf.data would first reserve room for that many images)
    outcome = {}
    runs = {"evaluate.py": ["--data-dir", root / "data"], "predict.py": [picture],
            "explain.py": [picture, "--out", tmp_path / "cams"]}

    def run_all():
        for program, flags in runs.items():
            outcome[program] = call(program, "--log-dir", logs, "--batch-size", huge, *flags,
                                    cwd=tmp_path)

    worker = threading.Thread(target=run_all, daemon=True)
    worker.start()
    worker.join(240)
    assert sorted(outcome) == sorted(runs), f"hung in {next(p for p in runs if p not in outcome)}"
    for program, result in outcome.items():
        assert result.returncode == 0 and "Traceback" not in result.stderr, (program,
                                                                             result.stderr)
    assert "evaluated 203 test images" in outcome["evaluate.py"].stdout  # (all of them)
    assert (tmp_path / "cams" / "a.png").exists()


# ----------------------------------------------------------------------------------------------
# Evaluation reports
# ----------------------------------------------------------------------------------------------

def test_a_different_evaluation_never_writes_over_a_report(copied_run, tmp_path):
    root, logs = copied_run
    first = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = logs / "eval" / "test-model.ckpt-4.json"
    original = report.read_bytes()
    no_ema = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, "--no-ema",
                  cwd=tmp_path)
    assert no_ema.returncode == 0 and (logs / "eval" / "test-no-ema-model.ckpt-4.json").exists()
    shutil.copytree(root / "data", tmp_path / "other")
    other = call("evaluate.py", "--data-dir", tmp_path / "other", "--log-dir", logs,
                 cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert report.read_bytes() == original
    second = json.loads((logs / "eval" / "test-model.ckpt-4-2.json").read_text())
    assert second["evaluation"]["data"] == str(tmp_path / "other")
    again = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, cwd=tmp_path)
    assert again.returncode == 0 and "test-model.ckpt-4.json" in again.stdout  # the same one
    assert not (logs / "eval" / "test-model.ckpt-4-3.json").exists()


# ----------------------------------------------------------------------------------------------
# Codes
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def extracted(workspace, tmp_path_factory):
    root, _ = workspace
    where = tmp_path_factory.mktemp("codes")
    made = call("extract_codes.py", "--arch", "vgg11", "--weights", root / "vgg11.npy",
                "--layer", "pool5", "--data-dir", root / "data", "--val-size", 100,
                "--out", where / "codes", cwd=where)
    assert made.returncode == 0, made.stderr
    return root, where / "codes"


@pytest.fixture
def good_codes(extracted, tmp_path):
    """VGG11's pool5 codes of the workspace, a copy of their own for each test."""
    root, codes = extracted
    shutil.copytree(codes, tmp_path / "codes")
    return root, tmp_path / "codes"


def extract(root, out, tmp_path, *flags):
    return call("extract_codes.py", "--arch", "vgg11", "--weights", root / "vgg11.npy",
                "--data-dir", root / "data", "--val-size", 100, "--out", out, *flags,
                cwd=tmp_path)


def test_a_failed_extraction_leaves_the_good_codes_as_they_were(good_codes, tmp_path):
    root, out = good_codes
    before = files(out)
    # at 64x64 the file's fc6 (512 inputs) does not fit
    failed = extract(root, out, tmp_path, "--layer", "fc6", "--image-size", 64)
    assert "does not give fc6" in one_line_error(failed, "extract_codes.py")
    assert files(out) == before


def test_damaged_codes_are_made_again_and_named_in_training(good_codes, tmp_path):
    root, out = good_codes
    train = out / "train.npz"
    whole = train.read_bytes()
    train.write_bytes(whole[:len(whole) // 2])
    head = ["--codes", out, "--max-steps", 2, "--batch-size", 16, "--log-dir", tmp_path / "h"]
    line = one_line_error(call("train_and_val.py", *head, cwd=tmp_path))
    assert "train.npz: not codes extract_codes.py wrote, or damaged" in line
    again = extract(root, out, tmp_path, "--layer", "pool5")
    assert again.returncode == 0 and "up to date" not in again.stdout
    assert train.read_bytes() != whole[:len(whole) // 2]

    manifest = json.loads((out / "manifest.json").read_text())
    for edit, words in (({"layer": "conv9"}, "layer 'conv9' is not a code layer of vgg11"),
                        ({"class_names": ["a", "b"]}, "labels from 0 to 9, where the manifest "
                                                      "has 2 classes")):
        (out / "manifest.json").write_text(json.dumps({**manifest, **edit}))
        line = one_line_error(call("train_and_val.py", *head, cwd=tmp_path))
        assert words in line, line
    assert not (tmp_path / "h" / "train").exists() or not list(
        (tmp_path / "h" / "train").glob("model.ckpt-*"))


# ----------------------------------------------------------------------------------------------
# Numbers the machine cannot run; the disk; the cluster's addresses
# ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")),
                    reason="on a GPU TensorFlow says what does not fit in its memory itself")
@pytest.mark.parametrize("flags,words", [
    (["--batch-size", 10 ** 8], "--batch-size 100000000 needs at least"),
    (["--fc-size", 10 ** 6], "no batch size would: the variables alone take")])
def test_what_does_not_fit_in_memory_is_one_line_before_anything_is_saved(workspace, tmp_path,
                                                                           flags, words):
    root, _ = workspace
    line = one_line_error(call("train_and_val.py", *train_args(root, tmp_path, "--max-steps", 2,
                                                               "--pretrained", "none", *flags),
                               cwd=tmp_path))
    assert words in line and "GiB free" in line
    assert not list((tmp_path / "logs").rglob("model.ckpt-*"))


def test_a_full_disk_in_tensorflow_names_the_cause_and_the_file():
    from contextlib import redirect_stderr
    import io

    import tensorflow as tf

    from common import cli

    def full(args):
        raise tf.errors.ResourceExhaustedError(None, None, (
            "Graph execution error:\n\nDetected at node 'save/SaveV2' defined at ...\n"
            "logs/train/model.ckpt-5_temp/part-00000-of-00001.data-00000-of-00001.tempstate1; "
            "No space left on device\n\t [[{{node save/SaveV2}}]]"))

    err = io.StringIO()
    with redirect_stderr(err):
        code = cli.run_main("train_and_val.py", full, None)
    assert code == 2
    line, = err.getvalue().splitlines()
    assert "model.ckpt-5_temp" in line and "No space left on device" in line


@pytest.mark.parametrize("environ,flags,words", [
    ({}, ["--job-name", "ps", "--task-index", "0", "--ps-hosts", "127.0.0.1:70000",
          "--worker-hosts", "127.0.0.1:2"], "'127.0.0.1:70000' has no port from 1 to 65535"),
    ({}, ["--job-name", "ps", "--task-index", "0", "--ps-hosts", "localhost",
          "--worker-hosts", "127.0.0.1:2"], "'localhost' is not host:port"),
    ({}, ["--job-name", "ps", "--task-index", "0", "--ps-hosts", "127.0.0.1:\u00b2",
          "--worker-hosts", "127.0.0.1:2"], "has no port from 1 to 65535"),
    ({"TF_CONFIG": json.dumps({"cluster": {"ps": "127.0.0.1:1", "worker": ["127.0.0.1:2"]},
                               "task": {"type": "ps", "index": 0}})}, [],
     "TF_CONFIG: the cluster's 'ps' hosts: '127.0.0.1:1' is not a list"),
    ({"TF_CONFIG": json.dumps({"cluster": {"ps": ["127.0.0.1"], "worker": ["127.0.0.1:2"]},
                               "task": {"type": "ps", "index": 0}})}, [],
     "'127.0.0.1' is not host:port")])
def test_cluster_addresses_that_cannot_work_are_one_line(workspace, tmp_path, monkeypatch,
                                                         environ, flags, words):
    root, _ = workspace
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    line = one_line_error(call("train_and_val.py", *train_args(root, tmp_path), *flags,
                               cwd=tmp_path))
    assert words in line


def test_a_port_in_use_is_one_line(workspace, tmp_path):
    import socket

    root, _ = workspace
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(call("train_and_val.py", *train_args(root, tmp_path),
                                   "--job-name", "ps", "--task-index", 0, "--ps-hosts",
                                   f"127.0.0.1:{port}", "--worker-hosts", "127.0.0.1:1",
                                   cwd=tmp_path))
    assert f"ps0 cannot serve at 127.0.0.1:{port}" in line and "in use" in line

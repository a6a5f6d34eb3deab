"""Never lose a run: copied and moved log dirs, a lost checkpoint index, two runs on one log dir,
poisoned weights and flags, damaged checkpoints, config.json lost or mangled, leftovers of an
interrupted save, errors of the machine. Each case as a user meets it. (Killed runs:
test_behaviour_kills.py.)"""

import errno
import hashlib
import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

from common import cli
from common import json_files
from helpers import call
from helpers import one_line_error
from helpers import python_json
from helpers import resumed_step
from helpers import start_afresh
from helpers import steps
from helpers import tiny_args
from helpers import train_args
import py2_npy
from training import runs

tf1 = tf.compat.v1


def files(folder):
    """{relative path: SHA-256} of every file under ``folder``."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def short_run(workspace, tmp_path_factory):
    """A finished tinynet run of 6 steps, a checkpoint every 2, under an absolute --log-dir."""
    root, _ = workspace
    where = tmp_path_factory.mktemp("short")
    result = call("train_and_val.py", *tiny_args(root, where, "--max-steps", 6, "--save-every",
                                                 2, "--val-every", 3), cwd=where)
    assert result.returncode == 0, result.stderr
    return root, where / "logs"


def test_a_copy_of_a_log_dir_trains_on_its_own_and_leaves_the_original_alone(short_run,
                                                                              tmp_path):
    root, original = short_run
    index = (original / "train" / "checkpoint").read_text()
    assert str(original) not in index  # paths relative to the folder
    before = files(original)
    copy = tmp_path / "logs"
    shutil.copytree(original, copy)
    # what an earlier version wrote: the copy's index naming the original's files
    for folder in ("train", "best"):
        state = tf1.train.get_checkpoint_state(str(original / folder))
        tf1.train.update_checkpoint_state(
            str(copy / folder), str(original / folder / os.path.basename(
                state.model_checkpoint_path)),
            [str(original / folder / os.path.basename(p))
             for p in state.all_model_checkpoint_paths])
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 12,
                                                 "--save-every", 1, "--val-every", 6),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert resumed_step(result.stdout) == 6
    assert files(original) == before  # nothing of the original deleted or changed
    assert steps(copy / "train")[-1] == 12 and len(steps(copy / "train")) == 5  # rotated
    assert str(original) not in (copy / "train" / "checkpoint").read_text()

    moved = tmp_path / "moved"
    shutil.move(str(copy), str(moved))
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 13,
                                                 "--log-dir", moved), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert resumed_step(result.stdout) == 12
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", moved,
                    cwd=tmp_path)
    assert evaluated.returncode == 0 and "(step 13)" in evaluated.stdout


def test_a_lost_checkpoint_index_resumes_from_the_newest_checkpoint(short_run, tmp_path):
    root, original = short_run
    logs = tmp_path / "logs"
    shutil.copytree(original, logs)
    os.remove(logs / "train" / "checkpoint")
    before = files(logs / "train")
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 8),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "had no checkpoint index" in result.stdout
    assert resumed_step(result.stdout) == 6
    after = files(logs / "train")
    for name, digest in before.items():  # the old checkpoints hold what they held
        if name.startswith("model.ckpt-") and not name.endswith(".meta"):
            assert after[name] == digest, name


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pretrained_weights_stop_before_anything_is_written(workspace, tmp_path,
                                                                       bad):
    root, weights = workspace
    poisoned = dict(weights)
    poisoned["conv2_1"] = (weights["conv2_1"][0].copy(), weights["conv2_1"][1])
    poisoned["conv2_1"][0][0, 0, 0, 0] = bad
    path = tmp_path / "poisoned.npy"
    py2_npy.write(str(path), poisoned)
    result = call("train_and_val.py", *train_args(root, tmp_path, "--pretrained", path,
                                                 "--max-steps", 5), cwd=tmp_path)
    line = one_line_error(result)
    assert str(path) in line and "conv2_1" in line and "NaN or infinite" in line
    assert not list((tmp_path / "logs").rglob("*.index"))
    assert not list((tmp_path / "logs").rglob("config.json"))


BAD_FLAGS = [
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--learning-rate", "inf"], "--learning-rate"),
    (["--momentum", "nan"], "--momentum"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--epochs", "nan"], "--epochs"),
    (["--epochs", "inf"], "--epochs"),
    (["--clip-norm", "-1"], "--clip-norm"),
    (["--skip", "fc9"], "--skip: fc9 not a layer of vgg11"),
    (["--label-smoothing", "1"], "--label-smoothing"),
    (["--ema-decay", "1.5"], "--ema-decay"),
    (["--warmup-fraction", "-0.1"], "--warmup-fraction"),
    (["--fc-size", "-1"], "--fc-size"),
]


def test_flags_that_must_be_finite_or_real_are_refused_by_the_parser():
    # one process parses every case (a program start costs seconds; parsing does not)
    outcomes = python_json(
        "import contextlib, io, json, train_and_val; out = []\n"
        f"for flags in {[flags for flags, _ in BAD_FLAGS]!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try: train_and_val.parse_args(['--arch', 'vgg11'] + flags); out.append(None)\n"
        "        except SystemExit as e: out.append([e.code, err.getvalue()])\n"
        "print(json.dumps(out))")
    assert len(outcomes) == len(BAD_FLAGS)
    for (flags, message), outcome in zip(BAD_FLAGS, outcomes):
        assert outcome is not None, flags
        code, stderr = outcome
        assert code == 2 and len(stderr.strip().splitlines()) == 1, (flags, stderr)
        assert message in stderr and "Traceback" not in stderr, (flags, stderr)


def truncate_data(prefix):
    data = next(p for p in os.listdir(os.path.dirname(prefix))
                if p.startswith(os.path.basename(prefix) + ".data-"))
    path = os.path.join(os.path.dirname(prefix), data)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(short_run, tmp_path):
    root, original = short_run
    logs = tmp_path / "logs"
    shutil.copytree(original, logs)
    truncate_data(str(logs / "train" / "model.ckpt-6"))
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, cwd=tmp_path)
    line = one_line_error(evaluated, "evaluate.py")
    assert f"{logs / 'train' / 'model.ckpt-6'} is damaged" in line
    assert f"--checkpoint {logs / 'train' / 'model.ckpt-4'}" in line

    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 8),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "model.ckpt-6 is damaged" in result.stdout
    assert resumed_step(result.stdout) == 4


def test_a_lost_config_json_is_rebuilt_with_its_model(short_run, tmp_path):
    root, original = short_run
    logs = tmp_path / "logs"
    shutil.copytree(original, logs)
    os.remove(logs / "train" / "config.json")
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 7),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads((logs / "train" / "config.json").read_text())
    assert config["model"] == json.loads((original / "train" / "config.json").read_text())[
        "model"]
    assert config["model"] == {"arch": "tinynet", "batch_norm": False, "image_size": 16,
                               "num_classes": 10, "fc_size": 0, "codes_layer": None,
                               "head": None, "head_size": 0}
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr


@pytest.mark.parametrize("content", ['{"model": {"arch": "x"}, "runs": [{"val_size": 100}]}',
                                     "{not json"])
def test_a_mangled_config_json_is_one_line(short_run, tmp_path, content):
    root, original = short_run
    logs = tmp_path / "logs"
    shutil.copytree(original, logs)
    (logs / "train" / "config.json").write_text(content)
    line = one_line_error(call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 7),
                              cwd=tmp_path))
    assert "config.json" in line
    line = one_line_error(call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs,
                              cwd=tmp_path), "evaluate.py")
    assert "config.json" in line


def test_leftovers_of_an_interrupted_save_are_removed_on_the_next_start(short_run, tmp_path):
    root, original = short_run
    logs = tmp_path / "logs"
    shutil.copytree(original, logs)
    leftovers = [logs / "train" / "model.ckpt-7_temp", logs / "best" / "model.ckpt-7_temp"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"x" * 99)
    stray = logs / "train" / "model.ckpt-7.index.tempstate5678"
    stray.write_bytes(b"half")
    result = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 7),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in leftovers + [stray])
    assert f"removed {stray}" in result.stdout


def test_a_checkpoint_folder_or_file_names_its_checkpoint(short_run):
    _, logs = short_run
    train = logs / "train"
    for given, expected in [(train, "model.ckpt-6"), (train / "model.ckpt-4.index",
                                                      "model.ckpt-4"),
                            (train / "model.ckpt-4.data-00000-of-00001", "model.ckpt-4"),
                            (train / "model.ckpt-4", "model.ckpt-4")]:
        assert runs.find_checkpoint(str(logs), str(given)) == str(train / expected)
    with pytest.raises(cli.UsageError, match="no such checkpoint"):
        runs.find_checkpoint(str(logs), str(train / "model.ckpt-5"))
    evaluated = call("evaluate.py", "--data-dir", short_run[0] / "data", "--log-dir", logs,
                    "--checkpoint", train / "model.ckpt-4.index", cwd=logs.parent)
    assert evaluated.returncode == 0 and "(step 4)" in evaluated.stdout, evaluated.stderr


def test_watch_on_a_log_dir_that_does_not_exist(tmp_path, workspace):
    root, _ = workspace
    result = call("evaluate.py", "--watch", "--data-dir", root / "data", "--log-dir",
                  tmp_path / "typo", cwd=tmp_path)
    assert "does not exist" in one_line_error(result, "evaluate.py")


def test_an_unwritable_log_dir_and_a_full_disk_are_one_line(workspace, tmp_path, monkeypatch):
    """A write fails the way a missing permission or a full disk makes it fail."""
    root, _ = workspace
    flags = tiny_args(root, tmp_path, "--max-steps", 3)
    real = os.makedirs

    def denied_makedirs(path, *args, **kwargs):
        if "logs" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "makedirs", denied_makedirs)
        line = one_line_error(call("train_and_val.py", *flags))
    assert "Permission denied" in line and "logs" in line

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    with monkeypatch.context() as patch:
        patch.setattr(json_files, "write_json", full_disk)
        line = one_line_error(call("train_and_val.py", *flags))
    assert "No space left on device" in line and "config.json" in line


def stderr_of(process):
    """Where the process's file descriptor 2 points now: its pipe, or the file that holds
    TensorFlow's start-up lines meanwhile (None once it has ended)."""
    try:
        return os.readlink(f"/proc/{process.pid}/fd/2")
    except FileNotFoundError:
        return None


def wait_until(condition, process, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.005)


def test_ctrl_c_while_starting_is_one_line(workspace, tmp_path):
    """Ctrl-C while TensorFlow loads (the start-up lines are held: quiet_interrupt's handler is
    in place) and once it has loaded (run_main has let them go: the graph is being built); each
    moment is waited for by where the program's stderr points, not by a guess of the time."""
    root, _ = workspace
    for stage in ("loading", "building"):
        process = start_afresh("train_and_val.py",
                               *train_args(root, tmp_path, "--max-steps", 3), cwd=tmp_path)
        pipe = stderr_of(process)  # (Popen returns after the exec: fd 2 is the pipe)
        wait_until(lambda: stderr_of(process) not in (pipe, None), process)
        if stage == "building":
            wait_until(lambda: stderr_of(process) == pipe, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, (stage, stderr[-2000:])
        assert "Traceback" not in stderr

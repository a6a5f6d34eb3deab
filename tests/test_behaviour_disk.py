"""A disk that fills while a program writes: training (TensorBoard's event files filling in a
fresh run and in one resumed on the full disk), codes, a TensorFlow Lite export and Grad-CAM
pictures. Each is one line naming the file or folder, exit code 2, no traceback; what was
complete stays (checkpoints, earlier versions), nothing half-written is left, and the same
command once there is room again does what it was asked. The disk fills the way a real one
does: a write that fails with ENOSPC (a summary writer's thread raising, a file's write naming
no file)."""

import errno
import types

import matplotlib.figure
import numpy as np
import pytest
from tensorflow.python.summary.writer import event_file_writer

import helpers
from helpers import call
from helpers import one_line_error
from helpers import resumed_step
from helpers import steps
from helpers import tiny_args
from training import runs

FULL = "No space left on device"


def full_disk():
    return OSError(errno.ENOSPC, FULL)  # (what a write to a full disk raises: no file named)


def fill_event_files(patch, full):
    """TensorFlow's summary writers write their event files on a disk that is full once
    ``full()`` is true: each flush then fails in the writer's thread as a real one does."""
    real = event_file_writer._pywrap_events_writer

    class Writer:
        def __init__(self, prefix):
            self._real = real.EventsWriter(prefix)

        def __getattr__(self, name):
            return getattr(self._real, name)

        def Flush(self):  # noqa: N802 (TensorFlow's name)
            if full():
                name = self._real.FileName()
                raise RuntimeError(f"{name}; {FULL}\n\tFailed to flush 3 events to {name}")
            return self._real.Flush()

    patch.setattr(event_file_writer, "_pywrap_events_writer",
                  types.SimpleNamespace(EventsWriter=Writer))


def clean(result, program):
    line = one_line_error(result, program)
    assert "Exception in thread" not in result.stderr and "ERROR:" not in result.stderr
    return line


def test_event_files_filling_the_disk_are_one_line_and_the_run_resumes(workspace, tmp_path,
                                                                      monkeypatch):
    root, _ = workspace
    train = tmp_path / "logs" / "train"
    flags = tiny_args(root, tmp_path, "--max-steps", 8, "--save-every", 2, "--summary-every", 1,
                      "--log-every", 1)
    with monkeypatch.context() as patch:  # the disk fills once the checkpoint of step 2 is in
        fill_event_files(patch, lambda: (train / "model.ckpt-2.index").exists())
        line = clean(call("train_and_val.py", *flags, cwd=tmp_path), "train_and_val.py")
        assert "events.out.tfevents" in line and FULL in line, line
        kept = steps(train)
        assert 2 in kept and all(not runs.damage(str(train / f"model.ckpt-{s}")) for s in kept)
        # resumed while the disk is still full
        again = clean(call("train_and_val.py", *flags, cwd=tmp_path), "train_and_val.py")
        assert FULL in again and (".tfevents" in again), again
    assert steps(train) == kept
    assert not [p for p in train.iterdir() if runs.LEFTOVER.match(p.name)]
    room = call("train_and_val.py", *flags, cwd=tmp_path)  # room again
    assert room.returncode == 0, room.stderr[-2000:]
    assert resumed_step(room.stdout) == max(kept) and 8 in steps(train)


@pytest.fixture(scope="module")
def trained(workspace, tmp_path_factory):
    """(workspace root, a short tinynet run's log dir, its weights as a .npy)."""
    root, _ = workspace
    where = tmp_path_factory.mktemp("disk")
    logs = helpers.tiny_run(root, where, "--max-steps", 2)
    npy = call("export.py", "--log-dir", logs, "--npy", where / "tinynet.npy", cwd=where)
    assert npy.returncode == 0, npy.stderr
    return root, logs, where / "tinynet.npy"


def test_codes_on_a_full_disk_name_the_file_and_leave_nothing(trained, tmp_path, monkeypatch):
    root, _, npy = trained
    helpers.write_dataset(str(tmp_path / "data"), per_file=8, test_count=8)
    real = np.savez

    def savez(f, **arrays):  # half of the file, then the disk is full
        real(f, **arrays)
        f.truncate(f.tell() // 2)
        raise full_disk()

    out = tmp_path / "codes"
    flags = ["--arch", "tinynet", "--weights", npy, "--layer", "gap", "--data-dir",
             tmp_path / "data", "--val-size", 8, "--out", out]
    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", savez)
        line = clean(call("extract_codes.py", *flags, cwd=tmp_path), "extract_codes.py")
    assert f"cannot use {out / 'train.npz'}: {FULL}" in line, line
    assert list(out.iterdir()) == []
    made = call("extract_codes.py", *flags, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.npz", "train.npz",
                                                      "val.npz"]


def test_a_tflite_export_on_a_full_disk_names_the_version_and_leaves_nothing(trained, tmp_path,
                                                                             monkeypatch):
    from inference import tflite

    _, logs, _ = trained
    out = tmp_path / "exported"
    real = tflite.write

    def write(folder, *args, **kwargs):  # the files written, the last one cut short
        real(folder, *args, **kwargs)
        raise full_disk()

    with monkeypatch.context() as patch:
        patch.setattr(tflite, "write", write)
        line = clean(call("export.py", "--log-dir", logs, "--format", "tflite", "--out", out,
                          cwd=tmp_path), "export.py")
    assert f"cannot use {out / '1'}: {FULL}" in line, line
    assert not out.exists()  # no version, no temporary folder (the folder was its own)
    again = call("export.py", "--log-dir", logs, "--format", "tflite", "--out", out,
                 cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["1"]


def test_grad_cam_on_a_full_disk_leaves_no_picture_and_runs_again(trained, tmp_path,
                                                                   monkeypatch):
    _, logs, _ = trained
    images = tmp_path / "images"
    images.mkdir()
    for n in range(3):
        helpers.write_png(images / f"{n}.png", (16, 16), seed=n)
    out = tmp_path / "cams"
    real, written = matplotlib.figure.Figure.savefig, []

    def savefig(self, target, **kwargs):  # the second picture fills the disk half-way
        written.append(target)
        real(self, target, **kwargs)
        if len(written) == 2:
            if isinstance(target, str):
                with open(target, "r+b") as f:
                    f.truncate(100)
            else:
                target.truncate(100)
            raise full_disk()

    flags = [images, "--log-dir", logs, "--save-maps", "--out", out]
    with monkeypatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", savefig)
        line = clean(call("explain.py", *flags, cwd=tmp_path), "explain.py")
    assert f"cannot use {out / '1.png'}: {FULL}" in line, line
    assert not out.exists()  # (the folder was this run's own)
    again = call("explain.py", *flags, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.{ext}" for n in range(3)
                                                      for ext in ("npy", "png")]

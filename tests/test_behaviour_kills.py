"""Killed runs: a second run on a log dir in use is refused and a killed one does not block the
next; six SIGKILLs at random moments never lose a complete checkpoint."""

import random
import time

import tensorflow as tf

from helpers import call
from helpers import one_line_error
from helpers import resumed_step
from helpers import start
from helpers import steps
from helpers import tiny_args


def test_two_runs_on_one_log_dir_and_a_killed_run_does_not_block(workspace, tmp_path):
    root, _ = workspace
    flags = tiny_args(root, tmp_path, "--max-steps", 100000, "--save-every", 5,
                      "--val-every", 100000)
    first = start("train_and_val.py", *flags, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "logs" / "train").exists() or not steps(tmp_path / "logs" /
                                                                       "train"):
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        second = call("train_and_val.py", *flags, cwd=tmp_path)  # (the lock of another process)
        line = one_line_error(second)
        assert "is in use by pid" in line and str(first.pid) in line
    finally:
        first.kill()
        first.communicate()
    third = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps", 12), cwd=tmp_path)
    assert third.returncode == 0, third.stderr


def newest_readable(folder):
    """The newest checkpoint step in FOLDER whose every tensor reads back, or None: a kill
    while TensorFlow writes a .index (in place) leaves one that does not, which a resumed run
    rightly passes over."""
    for step in reversed(steps(folder)):
        try:
            reader = tf.compat.v1.train.NewCheckpointReader(str(folder / f"model.ckpt-{step}"))
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
            return step
        except (tf.errors.OpError, ValueError, IndexError):
            pass
    return None


def leftovers(folder):
    """What an interrupted save leaves under FOLDER (not what is inside such a folder)."""
    return [p for p in folder.rglob("*") if ("_temp" in p.name or ".tempstate" in p.name)
            and not p.parent.name.endswith("_temp")]


def test_repeated_sigkill_never_loses_a_step(workspace, tmp_path):
    root, _ = workspace
    rng = random.Random(7)
    flags = tiny_args(root, tmp_path, "--max-steps", 100000, "--save-every", 1,
                      "--val-every", 100000, "--log-every", 1)
    train_dir = tmp_path / "logs" / "train"
    newest = None
    for kill in range(6):
        left = leftovers(tmp_path)  # what the last kill left, listed while nothing runs
        process = start("train_and_val.py", *flags, cwd=tmp_path)
        started = time.time()
        # wait for the start-up (the tidy-up comes before the "Training" line) and the first
        # step (a checkpoint is saved before it), then kill at a random moment
        seen = []
        while not seen or not seen[-1].startswith("step "):
            seen.append(process.stdout.readline())
            assert seen[-1] or process.poll() is None, process.communicate()
            assert time.time() - started < 180
            if seen[-1].startswith("Training ") and newest is not None:
                # by its own notes (the save it makes next may have a _temp folder by now)
                notes = "".join(seen)
                assert all(f"removed {p}, left by an interrupted save" in notes
                           for p in left), (kill, left, seen)
        time.sleep(rng.uniform(0.0, 0.5))  # (a step and its checkpoint take about 0.05 s)
        process.kill()
        process.communicate()
        resumed = resumed_step("".join(seen))
        if newest is not None:
            assert resumed is not None and resumed >= newest, (kill, seen)
        complete = steps(train_dir)
        newest = newest_readable(train_dir)
        assert newest is None or complete[-1] - newest <= 1, complete  # (a save in progress)
    final = call("train_and_val.py", *tiny_args(root, tmp_path, "--max-steps",
                                                (newest or 0) + 2, "--val-every", 100000),
                 cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert newest is not None and resumed_step(final.stdout) >= newest
    assert not [p for p in tmp_path.rglob("*") if "_temp" in p.name or ".tempstate" in p.name]
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", tmp_path / "logs",
                     cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr

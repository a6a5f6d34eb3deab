"""The learning-rate schedules: step divides by 10 at the epochs asked; plateau decays exactly
after the validations that did not improve for the patience, at most as often as asked, stops
the run after the last, and a resumed run goes on with the same rate and counts."""

import argparse

import numpy as np
import pytest
import tensorflow as tf

from helpers import call
from helpers import one_line_error
from helpers import steps
from helpers import tiny_args
from helpers import train_args
from training import schedules

tf1 = tf.compat.v1


def test_plateau_decays_after_the_patience_at_most_as_often_as_asked_then_stops():
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.69, 0.7, 0.71, 0.71, 0.7, 0.6, 0.6]
    state, events = (1.0, -1.0, 0, 0), []
    for accuracy in accuracies:
        state, event = schedules.plateau_step(state, accuracy, patience=2, factor=0.1, decays=2)
        events.append((event, round(state[0], 6)))
    assert events == [("improved", 1.0), ("improved", 1.0), ("waiting", 1.0), ("decayed", 0.1),
                      ("improved", 0.1), ("waiting", 0.1), ("decayed", 0.01),
                      ("waiting", 0.01), ("improved", 0.01), ("waiting", 0.01),
                      ("stop", 0.01), ("stop", 0.01), ("stop", 0.01)]
    assert state[1:] == (0.71, 4, 2)  # the best, validations without it, the decays made


def test_a_stop_at_the_last_step_is_not_called_early():
    with tf.Graph().as_default():
        plateau = schedules.Plateau(1, 0.1, 0, max_steps=10)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            assert plateau.after_validation(session, 5, 0.5) == (None, False)
            early, stop = plateau.after_validation(session, 6, 0.4)
            assert stop and early.startswith("stopped early at step 6: ")
            session.run(tf1.global_variables_initializer())
            plateau.after_validation(session, 5, 0.5)
            last, stop = plateau.after_validation(session, 10, 0.4)
            assert stop and last.startswith("reached --max-steps, where it would have stopped "
                                            "early at step 10: ")


def rates(schedule, steps, **flags):
    args = argparse.Namespace(**{"learning_rate": 0.1, "lr_schedule": schedule,
                                 "warmup_steps": 0, "lr_steps": None, **flags})
    with tf.Graph().as_default():
        step = tf1.placeholder(tf.int64, [])
        plateau = schedules.Plateau(2, 0.1, 3) if schedule == "plateau" else None
        rate = schedules.learning_rate(args, step, 100, 10.0, plateau)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            if plateau:
                session.run(tf1.assign(plateau.factor, 0.01))
            return [session.run(rate, {step: s}) for s in steps]


def test_step_divides_by_ten_at_each_epoch_asked_and_plateau_multiplies_by_its_factor():
    got = rates("step", [0, 9, 10, 19, 25, 40], lr_steps=(1.0, 2.5))
    np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    np.testing.assert_allclose(rates("plateau", [0, 50]), [0.001, 0.001], rtol=1e-6)


@pytest.mark.parametrize("flags,words", [
    (["--lr-steps", "10,20"], "--lr-steps goes with --lr-schedule step"),
    (["--lr-schedule", "step"], "--lr-schedule step needs --lr-steps"),
    (["--lr-schedule", "step", "--lr-steps", "20,10"], "positive and increasing"),
    (["--lr-schedule", "step", "--lr-steps", "x"], "--lr-steps 'x'"),
    (["--lr-schedule", "plateau", "--plateau-factor", "1"], "--plateau-factor must be above 0"),
    (["--lr-schedule", "plateau", "--val-size", "0"], "needs a validation split"),
    (["--lr-schedule", "plateau", "--async"], "does not go with --async"),
    (["--plateau-patience", "3", "--plateau-decays", "1"],
     "--plateau-patience, --plateau-decays go with --lr-schedule plateau"),
])
def test_schedule_flags_that_cannot_work_are_one_line(workspace, tmp_path, flags, words):
    root, _ = workspace
    line = one_line_error(call("train_and_val.py", *train_args(root, tmp_path, *flags),
                               cwd=tmp_path))
    assert words in line
    assert not (tmp_path / "logs").exists()


def plateau_run(root, tmp_path, max_steps):
    # a rate too small to change a weight: validation accuracy never improves after the first
    return call("train_and_val.py", *tiny_args(
        root, tmp_path, "--pretrained", "none", "--learning-rate", 1e-12, "--lr-schedule",
        "plateau", "--plateau-patience", 2, "--plateau-decays", 2, "--val-every", 1,
        "--val-size", 20, "--save-every", 1, "--max-steps", max_steps), cwd=tmp_path)


def state(checkpoint):
    return [tf1.train.load_variable(checkpoint, f"lr_schedule/{name}").item()
            for name in schedules.Plateau.NAMES]


def test_plateau_stops_early_and_a_resumed_run_goes_on_with_the_same_rate_and_counts(
        workspace, tmp_path):
    root, _ = workspace
    (tmp_path / "whole").mkdir()
    whole = plateau_run(root, tmp_path / "whole", 50)
    assert whole.returncode == 0, whole.stderr
    lines = [line for line in whole.stdout.splitlines()
             if line.startswith(("learning rate", "stopped"))]
    assert [line.split(" at step ")[1].split()[0] for line in lines] == ["3", "5", "7:"]
    assert "(decay 2 of 2)" in lines[1] and "after the last of 2 decays" in lines[2]
    assert "Done: " in whole.stdout and whole.stdout.rstrip().endswith("model.ckpt-7")
    assert state(str(tmp_path / "whole" / "logs" / "train" / "model.ckpt-7"))[2:] == [2, 2]
    again = plateau_run(root, tmp_path / "whole", 50)  # the same command: nothing to do
    assert again.returncode == 0 and "stopped early: validation accuracy had not improved on" \
        in again.stdout and "nothing to do" in again.stdout, again.stdout + again.stderr
    assert steps(tmp_path / "whole" / "logs" / "train")[-1] == 7

    # stopped between the two decays, then resumed: the same decays at the same steps
    first = plateau_run(root, tmp_path, 4)
    assert first.returncode == 0, first.stderr
    factor, best, waited, made = state(str(tmp_path / "logs" / "train" / "model.ckpt-4"))
    assert (waited, made) == (1, 1) and factor == pytest.approx(0.1)
    resumed = plateau_run(root, tmp_path, 50)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stdout
    again = [line for line in resumed.stdout.splitlines()
             if line.startswith(("learning rate", "stopped"))]
    assert again == lines[1:]

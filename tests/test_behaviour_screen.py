"""The first screen is ours: a short run prints its own lines only (TensorFlow's start-up lines
and deprecation warnings held back, a real error still shown, --verbose shows everything); on a
terminal a live bar shows the training steps, in a log file plain lines do."""

import contextlib
import fcntl
import importlib
import os
import pty
import re
import struct
import subprocess
import termios
import threading

from common import cli
from helpers import call
from helpers import command
from helpers import tiny_args
from helpers import train_args

# the run's environment as a user's: no TF_CPP_MIN_LOG_LEVEL of the tests'
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
USER_ENV["CUDA_VISIBLE_DEVICES"] = ""


def short_run(root, tmp_path, *flags, args=train_args):
    return args(root, tmp_path, "--pretrained", "none", "--max-steps", 6, "--log-every", 3,
                "--val-every", 6, *flags)


def test_a_short_run_prints_its_own_lines_only(workspace, tmp_path):
    root, _ = workspace
    result = subprocess.run(command("train_and_val.py", *short_run(root, tmp_path)),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=USER_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no start-up lines, no CUDA error, no deprecation warning
    lines = result.stdout.splitlines()
    assert len(lines) == 5, lines
    assert lines[0].startswith("Training vgg11 on 400 images (train) from step 0 to 6")
    assert [line.split()[1] for line in lines[1:3]] == ["3/6", "6/6"]
    assert lines[3].startswith("validation at step 6") and lines[4].startswith("Done: ")

    # --verbose: TensorFlow's start-up lines too (a run that stops at its first check will do)
    loud = subprocess.run(command("train_and_val.py", "--data-dir", tmp_path / "missing",
                                  "--log-dir", tmp_path / "loud", "--verbose"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=USER_ENV)
    assert loud.returncode == 2, loud.stderr
    assert "WARNING: All log messages before absl::InitializeLog() is called" in loud.stderr
    assert "missing" in loud.stderr.splitlines()[-1]


def test_held_start_up_lines_are_dropped_but_a_real_error_is_shown(capfd, monkeypatch):
    monkeypatch.setattr(cli.sys, "argv", ["train_and_val.py"])
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "")  # (put back after the test)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    cli.hold_startup_lines()
    try:
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written "
                    b"to STDERR\n")
        os.write(2, b"I0000 00:00:1796190814.075698    6376 port.cc:153] oneDNN custom operations "
                    b"are on.\n")
        os.write(2, b"E0000 00:00:1796190814.194652    6376 cuda_executor.cc:1228] failed call to "
                    b"cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"F0000 00:00:1796190814.2 6376 op_kernel.cc:99] Check failed: a real error\n")
    finally:
        cli.release_startup_lines()
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert err.splitlines() == ["F0000 00:00:1796190814.2 6376 op_kernel.cc:99] Check failed: "
                                "a real error", "after"]
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"  # what TensorFlow logs later: fatal only


def on_a_terminal(program, *args, cwd):
    """Run a program in this process with its stdout on a pseudo-terminal 150 columns wide (a
    new one has 0, and tqdm draws to the width); its exit code and what the terminal got."""
    module = importlib.import_module(os.path.splitext(program)[0])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 150, 0, 0))
    received = []

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal was closed
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with open(slave, "w", buffering=1, closefd=False) as terminal, \
                contextlib.redirect_stdout(terminal):
            code = module.main([str(a) for a in args])
    finally:
        os.chdir(here)
        os.close(slave)
    reader.join(timeout=60)
    os.close(master)
    return code, b"".join(received).decode(errors="replace")


def test_a_live_bar_on_a_terminal_and_plain_lines_in_a_log_file(workspace, tmp_path):
    root, _ = workspace
    # (VGG11: tinynet's steps come faster than the bar redraws)
    code, shown = on_a_terminal("train_and_val.py", *short_run(root, tmp_path), cwd=tmp_path)
    assert code == 0, shown
    updates = [part for part in shown.replace("\r\n", "\n").split("\r") if "training:" in part]
    assert len(updates) >= 6, shown  # redrawn step after step
    assert "6/6" in updates[-1] and "images/s" in updates[-1] and "loss" in updates[-1]
    assert re.search(r"\[\d+:\d\d<\d+:\d\d", updates[-2])  # time taken < time left
    assert "validation at step 6: loss" in shown and "Done: " in shown

    logged = call("train_and_val.py", *short_run(root, tmp_path / "again", args=tiny_args),
                  cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr
    assert "\r" not in logged.stdout and "training:" not in logged.stdout
    assert len([line for line in logged.stdout.splitlines() if line.startswith("step ")]) == 2

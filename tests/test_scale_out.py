"""Towers on several (here: logical CPU) devices, and a cluster of TensorFlow's distributed
runtime on 127.0.0.1: it trains to --max-steps, every task exits by itself, the chief's
checkpoint evaluates, a killed worker, parameter server and chief each rejoin, a parameter server
that stays away ends every worker. (That two towers make the update of one is in test_model.py.)"""

import json
import signal
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

import helpers
from helpers import TINY
from helpers import call
from helpers import resumed_step
from helpers import run
from helpers import start
from training import distributed

tf1 = tf.compat.v1
SMALL = ["--arch", "vgg11", "--pretrained", "none", "--fc-size", "0", "--val-size", "100",
         "--log-every", "5"]


def losses(stdout):
    return [float(line.split("loss ")[1].split()[0]) for line in stdout.splitlines()
            if line.startswith("step ")]


def test_two_towers_with_batch_norm_train(workspace, tmp_path):
    root, _ = workspace
    result = call("train_and_val.py", *TINY, "--data-dir", root / "data", "--batch-norm",
                  "--learning-rate", 0.2, "--num-gpus", 2, "--tower-device", "cpu",
                  "--batch-size", 32, "--max-steps", 30, "--val-every", 30, "--log-dir",
                  tmp_path / "logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = losses(result.stdout)
    assert len(seen) == 3 and seen[-1] < 0.5 * seen[0], seen
    checkpoint = tf1.train.latest_checkpoint(str(tmp_path / "logs" / "train"))
    assert checkpoint.endswith("-30")
    # one set of variables (no per-tower copies), one set of batch-norm statistics
    names = [name for name, _ in tf1.train.list_variables(checkpoint)]
    assert not [n for n in names if "tower_" in n]
    assert "conv1/batch_norm/moving_mean" in names


def test_flags_that_cannot_work_are_one_line(workspace, tmp_path):
    root, _ = workspace
    cases = [(["--num-gpus", "2"], "TensorFlow sees no GPUs"),
             (["--num-gpus", "2", "--tower-device", "cpu", "--batch-size", "33"],
              "does not split into --num-gpus 2"),
             (["--job-name", "worker", "--task-index", "0"],
              "--ps-hosts, --worker-hosts missing"),
             (["--job-name", "worker", "--task-index", "2", "--ps-hosts", "127.0.0.1:1",
               "--worker-hosts", "127.0.0.1:2,127.0.0.1:3"], "task 2 of job worker")]
    lines = helpers.python_json(
        "import contextlib, io, json, train_and_val; out = []\n"
        f"for flags, _ in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        f"            code = train_and_val.main(flags + ['--data-dir', {str(root / 'data')!r},"
        f" '--log-dir', {str(tmp_path / 'logs')!r}])\n"
        "        except SystemExit as e:\n"
        "            code = e.code\n"
        "    out.append([code, err.getvalue().strip().splitlines()])\n"
        "print(json.dumps(out))")
    assert len(lines) == len(cases)
    for (code, err), (flags, words) in zip(lines, cases):
        assert code == 2 and len(err) == 1 and words in err[0], (flags, err)
    assert not (tmp_path / "logs").exists()


class Flags:
    job_name = task_index = ps_hosts = worker_hosts = None


def test_the_cluster_comes_from_flags_or_tf_config():
    flags = Flags()
    assert distributed.from_flags(flags, environ={}) is None
    flags.job_name, flags.task_index = "ps", 0
    flags.ps_hosts, flags.worker_hosts = "a:1", "b:2,c:3"
    cluster = distributed.from_flags(flags, environ={"TF_CONFIG": "ignored: flags win"})
    assert cluster == distributed.Cluster(["a:1"], ["b:2", "c:3"], "ps", 0)
    assert not cluster.is_chief
    config = {"cluster": {"chief": ["b:2"], "worker": ["c:3", "d:4"], "ps": ["a:1"]},
              "task": {"type": "worker", "index": 1}}
    cluster = distributed.from_flags(Flags(), environ={"TF_CONFIG": json.dumps(config)})
    assert cluster == distributed.Cluster(["a:1"], ["b:2", "c:3", "d:4"], "worker", 2)
    config["task"] = {"type": "chief", "index": 0}
    assert distributed.from_flags(Flags(), {"TF_CONFIG": json.dumps(config)}).is_chief
    for bad in ("{not json", json.dumps({"cluster": {"worker": ["b:2"]},
                                         "task": {"type": "worker", "index": 0}})):
        with pytest.raises(distributed.UsageError, match="TF_CONFIG"):
            distributed.from_flags(Flags(), environ={"TF_CONFIG": bad})


def test_cluster_py_trains_towers_with_moving_averages_and_every_task_ends_by_itself(
        workspace, tmp_path):
    root, loaded = workspace
    logs = tmp_path / "logs"
    result = run("cluster.py", "--ps", 1, "--workers", 2, "--", *SMALL, "--data-dir",
                 root / "data", "--batch-size", 16, "--max-steps", 4, "--val-every", 4,
                 "--num-gpus", 2, "--tower-device", "cpu", "--ema-decay", 0.9,
                 "--pretrained", root / "vgg11.npy", "--log-dir", logs, cwd=tmp_path,
                 timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "[ps0] ps 0: every worker is done; exiting" in out
    assert "[worker1] worker1: done at step" in out
    assert "[worker0] Done:" in out and "[cluster] every task finished" in out
    assert not [line for line in out.splitlines() if line.startswith("[worker1] validation")]
    assert "[worker0] validation at step 4" in out
    config = json.loads((logs / "train" / "config.json").read_text())
    assert len(config["runs"]) == 1  # the chief alone wrote it
    checkpoint = tf1.train.latest_checkpoint(str(logs / "train"))
    assert checkpoint.endswith("-4")
    names = dict(tf1.train.list_variables(checkpoint))
    assert not [n for n in names if "tower_" in n]  # one set of variables, on the ps
    # the averages moved once a global step: neither the start nor the weights themselves
    average = tf1.train.load_variable(checkpoint, "conv1_1/weights/ExponentialMovingAverage")
    assert not np.array_equal(average, tf1.train.load_variable(checkpoint, "conv1_1/weights"))
    assert not np.array_equal(average, loaded["conv1_1"][0])
    evaluated = call("evaluate.py", "--data-dir", root / "data", "--log-dir", logs, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluating the moving averages" in evaluated.stdout
    assert "evaluated 203 test images" in evaluated.stdout


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for(predicate, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("timed out")


def step_of(folder):
    checkpoint = tf1.train.latest_checkpoint(str(folder))
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else -1


def job_training(root, logs, *flags, network=SMALL):
    """The training flags of the local jobs: a small VGG11 (or ``network``'s flags) on the
    workspace's data."""
    return [*network, "--data-dir", root / "data", "--batch-size", 16, "--save-every", 2,
            "--log-dir", logs, *flags]


def local_job(tmp_path, training):
    """A job of 1 parameter server and 2 workers on free ports of 127.0.0.1: ``(port of the
    parameter server, start(job, index) forking that task with ``training``'s flags)``."""
    ps, *workers = free_ports(3)
    cluster = ["--ps-hosts", f"127.0.0.1:{ps}", "--worker-hosts",
               ",".join(f"127.0.0.1:{port}" for port in workers)]

    def task(job, index):
        return start("train_and_val.py", "--job-name", job, "--task-index", index, *cluster,
                     *training, cwd=tmp_path)
    return ps, task


def start_all(task):
    return {"ps": task("ps", 0), "chief": task("worker", 0), "worker": task("worker", 1)}


def kill_left(tasks):
    for process in tasks.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_killed_worker_parameter_server_and_chief_rejoin_and_the_job_finishes(workspace,
                                                                               tmp_path):
    root, _ = workspace
    logs = tmp_path / "logs"
    # (tinynet at 96x96: quick to start, its steps slow enough that the job still runs at each
    # kill)
    _, task = local_job(tmp_path, job_training(root, logs, "--max-steps", 24, "--val-every", 100,
                                               "--image-size", 96, network=TINY))
    tasks = start_all(task)
    try:
        wait_for(lambda: step_of(logs / "train") >= 4, tasks["chief"])
        tasks["worker"].send_signal(signal.SIGKILL)
        tasks["worker"].communicate()
        tasks["worker"] = task("worker", 1)  # rejoins the running job
        wait_for(lambda: step_of(logs / "train") >= 6, tasks["chief"])
        tasks["ps"].kill()
        tasks["ps"].communicate()
        tasks["ps"] = task("ps", 0)  # its values are gone: the chief restores the checkpoint
        wait_for(lambda: step_of(logs / "train") >= 10, tasks["chief"])
        tasks["chief"].send_signal(signal.SIGKILL)
        tasks["chief"].communicate()
        killed_at = step_of(logs / "train")
        tasks["chief"] = task("worker", 0)
        out, err = tasks["chief"].communicate(timeout=180)
        assert tasks["chief"].returncode == 0, err[-3000:]
        # (a save the killed chief had started is finished by the parameter server, which
        # writes the files: the newest checkpoint may then be the next one, --save-every 2 on)
        resumed = resumed_step(out)
        assert resumed in (killed_at, killed_at + 2), (killed_at, out)
        assert f"Resuming from {logs / 'train' / f'model.ckpt-{resumed}'}" in out
        first = [line for line in out.splitlines() if line.startswith("step ")][0]
        assert int(first.split()[1].split("/")[0]) > resumed  # no step done again
        for name in ("worker", "ps"):
            out, err = tasks[name].communicate(timeout=60)
            assert tasks[name].returncode == 0, (name, err[-3000:])
        assert "every worker is done" in out
        assert step_of(logs / "train") == 24
    finally:
        kill_left(tasks)


def test_a_killed_parameter_server_ends_every_worker_in_one_line(workspace, tmp_path):
    root, _ = workspace
    logs = tmp_path / "logs"
    ps, task = local_job(tmp_path, job_training(root, logs, "--max-steps", 1000, "--val-every",
                                                1000, "--ps-wait", 3, network=TINY))
    tasks = start_all(task)
    try:
        wait_for(lambda: step_of(logs / "train") >= 2, tasks["chief"])
        tasks["ps"].kill()
        tasks["ps"].communicate()
        started = time.time()
        for name in ("chief", "worker"):
            _, err = tasks[name].communicate(timeout=120)  # (never a hang)
            assert tasks[name].returncode == 1, (name, err[-3000:])
            assert f"parameter server ps0 at 127.0.0.1:{ps} has not answered for 3 s" in err
            assert "Traceback" not in err
        assert time.time() - started < 60
    finally:
        kill_left(tasks)
    assert step_of(logs / "train") >= 2  # the checkpoints are there to resume from

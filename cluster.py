"""Start a training job of TensorFlow's distributed runtime on this machine: parameter servers and
workers, each a train_and_val.py process, on free ports of 127.0.0.1.

    python cluster.py --ps 1 --workers 2 -- --arch vgg11 --max-steps 200 --log-dir logs/cluster

Everything after ``--`` goes to every task (training flags; the cluster flags are added). Each
task's output is printed with its name in front (``[worker0] ...``). The job ends when the
workers have finished and the parameter servers have exited by themselves; if a task fails, or
on Ctrl-C, every task still running is stopped (SIGTERM, which makes the chief save a
checkpoint, then SIGKILL after --grace seconds). Exit code: 0, or the first failure's.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from common import cli

ROOT = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, training = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ps", type=cli.at_least(1), default=1, help="parameter servers")
    p.add_argument("--workers", type=cli.at_least(1), default=2, help="workers (0 is the chief)")
    p.add_argument("--host", default="127.0.0.1", help="address every task listens on")
    p.add_argument("--grace", type=cli.finite_float, default=30.0,
                   help="seconds a stopped task has to exit before it is killed")
    args = p.parse_args(ours)
    clash = [f for f in training if f.split("=")[0] in (
        "--job-name", "--task-index", "--ps-hosts", "--worker-hosts")]
    if clash:
        p.error(f"{', '.join(clash)}: cluster.py sets the cluster flags itself")
    return cli.freeze(args, training=training)  # (training: the flags every task gets)


def free_ports(host, count):
    """``count`` ports nobody listens on now (bound once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def commands(cfg):
    """``[(task name, command)]``: the parameter servers first, then the workers."""
    ports = free_ports(cfg.host, cfg.ps + cfg.workers)
    ps = ",".join(f"{cfg.host}:{p}" for p in ports[:cfg.ps])
    workers = ",".join(f"{cfg.host}:{p}" for p in ports[cfg.ps:])
    tasks = [("ps", i) for i in range(cfg.ps)] + [("worker", i) for i in range(cfg.workers)]
    return [(f"{job}{i}", [sys.executable, "-u", os.path.join(ROOT, "train_and_val.py"),
                           "--job-name", job, "--task-index", str(i), "--ps-hosts", ps,
                           "--worker-hosts", workers, *cfg.training]) for job, i in tasks]


def relay(name, stream):
    for line in iter(stream.readline, ""):
        print(f"[{name}] {line}", end="", flush=True)


def stop(processes, grace):
    """SIGTERM to every task still running, SIGKILL to those still there after ``grace``."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for process in processes.values():
        try:
            process.wait(max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(cfg):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}  # the flags say it all
    processes, relays = {}, []
    try:
        for name, command in commands(cfg):
            processes[name] = subprocess.Popen(command, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True, env=env)
            relays.append(threading.Thread(target=relay, args=(name, processes[name].stdout),
                                           daemon=True))
            relays[-1].start()
        print(f"[cluster] started {', '.join(processes)}", flush=True)
        while True:
            codes = {name: p.poll() for name, p in processes.items()}
            failed = [(name, code) for name, code in codes.items() if code not in (None, 0)]
            if failed:
                name, code = failed[0]
                print(f"[cluster] {name} exited with code {code}; stopping the others",
                      flush=True)
                stop(processes, cfg.grace)
                return code if code > 0 else 128 - code
            if all(code == 0 for code in codes.values()):
                print("[cluster] every task finished", flush=True)
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("[cluster] Ctrl-C: stopping every task", flush=True)
        stop(processes, cfg.grace)
        return 130
    finally:
        for thread in relays:
            thread.join(timeout=2)


def main(argv=None):
    return cli.run_main("cluster.py", run, parse_args(argv), tensorflow=False)


if __name__ == "__main__":
    sys.exit(main())

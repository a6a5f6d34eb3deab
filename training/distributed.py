"""Several machines with TensorFlow's distributed runtime: which cluster a task belongs to (from
the Distributed TensorFlow flags or the TF_CONFIG environment variable), the parameter servers'
life, and the signals between tasks.

    cluster = distributed.from_flags(flags)      # None: one process, no cluster
    if cluster.job == "ps":
        return distributed.serve(cluster)        # until every worker says it is done
    server = distributed.start_server(cluster)
    protocol = distributed.Protocol(cluster, async_updates=False)
    with tf1.device(cluster.device_setter()):
        optimizer = protocol.wrap(optimizer)     # synchronous replicas
        ... the training step ...
        protocol.build(optimizer)                # the ops tasks signal each other with
    protocol.before_session(server.target, config)   # the watch on the parameter servers
    ... MonitoredTrainingSession(hooks=protocol.hooks() + ...) ...   # the chief
    ... worker_session(master, scaffold, protocol.hooks() + ..., config, 1) ...   # a worker
    protocol.after_training(server.target, config)   # tokens, and "done" to the ps

Worker 0 is the chief. A parameter server has nothing to save, so it ends when every worker has
put a token in its done queue (one queue per parameter server, shared by name).
"""

import json
import os
import socket
import sys
import threading
import time
import typing

import tensorflow as tf

from common.cli import UsageError

tf1 = tf.compat.v1
FLAGS = ("--job-name", "--task-index", "--ps-hosts", "--worker-hosts")


class Cluster(typing.NamedTuple):
    ps: list  # host:port of each parameter server
    workers: list  # host:port of each worker; worker 0 is the chief
    job: str  # this task's job: "ps" or "worker"
    index: int  # this task's index in its job

    @property
    def spec(self):
        return tf1.train.ClusterSpec({"ps": self.ps, "worker": self.workers})

    @property
    def is_chief(self):
        return self.job == "worker" and self.index == 0

    @property
    def name(self):
        return f"{self.job}{self.index}"

    def device_setter(self):
        """Variables on the parameter servers (round robin), every other op on this worker."""
        return tf1.train.replica_device_setter(
            worker_device=f"/job:worker/task:{self.index}", cluster=self.spec)

    def session_config(self, config):
        """``config`` limited to the parameter servers and this task: a worker does not wait
        for the other workers, and keeps running when one of them goes."""
        config.device_filters[:] = ["/job:ps", f"/job:{self.job}/task:{self.index}"]
        return config


def _bad_host(host):
    """Why ``host`` is not host:port (an IPv6 host in brackets) with a port TCP has (1 to
    65535), or None."""
    name, _, port = host.rpartition(":") if isinstance(host, str) else ("", "", "")
    if not name or (":" in name and not (name.startswith("[") and name.endswith("]"))):
        return f"{host!r} is not host:port"
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        return f"{host!r} has no port from 1 to 65535"
    return None


def _hosts(flag, value):
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    bad = [why for why in map(_bad_host, hosts) if why]
    if not hosts or bad:
        raise UsageError(f"{flag} {value!r}: {bad[0] + '; ' if bad else ''}give "
                         "host:port[,host:port...]")
    return hosts


def _host_list(spec, job):
    """TF_CONFIG's list of hosts for ``job``: a list of host:port strings, or UsageError."""
    hosts = spec.get(job, [])
    bad = [why for why in map(_bad_host, hosts) if why] if isinstance(hosts, list) else [
        f"{hosts!r} is not a list"]
    if bad:
        raise UsageError(f"TF_CONFIG: the cluster's {job!r} hosts: {bad[0]}; give a list of "
                         f'"host:port" strings, e.g. "{job}": ["10.0.0.1:2222"]')
    return list(hosts)


def _check(cluster, where):
    if cluster.job not in ("ps", "worker"):
        raise UsageError(f"{where}: the job is 'ps' or 'worker', not {cluster.job!r}")
    if not cluster.ps:
        raise UsageError(f"{where}: the cluster needs at least one parameter server")
    tasks = cluster.ps if cluster.job == "ps" else cluster.workers
    if not 0 <= cluster.index < len(tasks):
        raise UsageError(f"{where}: task {cluster.index} of job {cluster.job}, which has "
                         f"{len(tasks)} task{'s' if len(tasks) != 1 else ''} (0 to "
                         f"{len(tasks) - 1})")
    return cluster


def from_flags(flags, environ=None):
    """The cluster of this task from --job-name, --task-index, --ps-hosts and --worker-hosts;
    when none of them is given, from TF_CONFIG (``{"cluster": {"ps": [...], "worker": [...],
    "chief": [...]}, "task": {"type": ..., "index": ...}}``, a "chief" being worker 0); None
    when neither says anything (one process). UsageError naming the flag or TF_CONFIG."""
    environ = os.environ if environ is None else environ
    given = {"--job-name": flags.job_name, "--task-index": flags.task_index,
             "--ps-hosts": flags.ps_hosts, "--worker-hosts": flags.worker_hosts}
    if any(v is not None for v in given.values()):
        missing = [flag for flag, value in given.items() if value is None]
        if missing:
            raise UsageError(f"{', '.join(missing)} missing: a cluster task needs all of "
                             f"{', '.join(FLAGS)}")
        return _check(Cluster(_hosts("--ps-hosts", flags.ps_hosts),
                              _hosts("--worker-hosts", flags.worker_hosts), flags.job_name,
                              flags.task_index), f"--job-name {flags.job_name} --task-index "
                                                f"{flags.task_index}")
    text = environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        spec, task = config["cluster"], config["task"]
        chief = _host_list(spec, "chief")
        workers = chief + _host_list(spec, "worker")
        job, index = task["type"], int(task["index"])
        if job == "chief":
            job = "worker"
        elif job == "worker":
            index += len(chief)
        return _check(Cluster(_host_list(spec, "ps"), workers, job, index), "TF_CONFIG")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"TF_CONFIG is not a cluster description ({type(e).__name__}: {e}); "
                         'give {"cluster": {"ps": [...], "worker": [...]}, "task": {"type": '
                         '"worker", "index": 0}}') from None


def start_server(cluster, config=None):
    """This task's ``tf.compat.v1.train.Server``; UsageError when its port cannot be had."""
    try:
        return tf1.train.Server(cluster.spec, job_name=cluster.job, task_index=cluster.index,
                                config=config)
    except tf.errors.OpError as e:  # (UnknownError: Could not start gRPC server)
        address = (cluster.ps if cluster.job == "ps" else cluster.workers)[cluster.index]
        why = e.message.strip().splitlines()[0]
        raise UsageError(f"{cluster.name} cannot serve at {address} ({why}): the port is in "
                         "use or not this machine's; stop what holds it, or give this task "
                         "another port") from None


LINGER_SECONDS = 1.0  # a parameter server's wait after the last worker is done
RECOVERY_WAIT_SECONDS = 1.0  # a worker's wait between checks that the chief has the model


def done_queues(cluster):
    """One queue on each parameter server, shared by name: each worker puts a token in every
    one of them when it is done."""
    queues = []
    for i in range(len(cluster.ps)):
        with tf1.device(f"/job:ps/task:{i}"):
            queues.append(tf1.FIFOQueue(len(cluster.workers), tf.int32,
                                        shared_name=f"done_queue_{i}", name=f"done_queue_{i}"))
    return queues


def serve(cluster, config):
    """A parameter server: serve the variables until every worker is done, then return 0."""
    server = start_server(cluster, cluster.session_config(config))
    with tf.Graph().as_default():
        take = done_queues(cluster)[cluster.index].dequeue()
        print(f"ps {cluster.index}: serving at {cluster.ps[cluster.index]}; waiting for "
              f"{len(cluster.workers)} workers to finish", flush=True)
        with tf1.Session(server.target, config=cluster.session_config(config)) as session:
            for done in range(1, len(cluster.workers) + 1):
                worker = session.run(take)
                print(f"ps {cluster.index}: worker {worker} is done ({done} of "
                      f"{len(cluster.workers)})", flush=True)
    # The last worker closes its session on this server just after its token: gone at once,
    # the server would leave that worker retrying on a closed socket for half a minute.
    time.sleep(LINGER_SECONDS)
    print(f"ps {cluster.index}: every worker is done; exiting", flush=True)
    return 0


class WorkerSessionCreator(tf1.train.SessionCreator):
    """A worker's sessions, as MonitoredTrainingSession makes them for a worker, but checking
    every RECOVERY_WAIT_SECONDS (not 30) whether the chief has the model ready: a worker whose
    session broke (the chief or a parameter server started again) goes on once the chief has
    restored, instead of at TensorFlow's next check."""

    def __init__(self, scaffold, master, config, max_wait_secs=7200):
        self.scaffold, self.master, self.config = scaffold, master, config
        self.max_wait_secs, self.manager = max_wait_secs, None

    def create_session(self):
        self.scaffold.finalize()
        if self.manager is None:
            scaffold = self.scaffold
            self.manager = tf1.train.SessionManager(
                local_init_op=scaffold.local_init_op,
                local_init_feed_dict=scaffold.local_init_feed_dict, ready_op=scaffold.ready_op,
                ready_for_local_init_op=scaffold.ready_for_local_init_op,
                graph=tf1.get_default_graph(), recovery_wait_secs=RECOVERY_WAIT_SECONDS)
        return self.manager.wait_for_session(self.master, config=self.config,
                                             max_wait_secs=self.max_wait_secs)


def worker_session(master, scaffold, hooks, config, stop_grace_period_secs):
    """The MonitoredSession MonitoredTrainingSession makes for a worker (not the chief), with
    ``WorkerSessionCreator``."""
    return tf1.train.MonitoredSession(
        session_creator=WorkerSessionCreator(scaffold, master, config), hooks=hooks,
        stop_grace_period_secs=stop_grace_period_secs)


def _quiet_cancelled(hook_args):
    """The chief's token thread is cancelled when its session closes: not an error."""
    if not issubclass(hook_args.exc_type, tf.errors.CancelledError):
        sys.__excepthook__(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback)


class PsWatch:
    """A thread that ends the worker with one line when a parameter server cannot be reached
    for ``seconds`` (TensorFlow would wait for it forever): one started again within that time
    is rejoined, the chief restoring its last checkpoint, as MonitoredTrainingSession does on a
    lost session."""

    def __init__(self, cluster, seconds, every=1.0):
        self.cluster, self.seconds, self.every = cluster, seconds, every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="ps-watch")
        self.thread.start()

    def stop(self):
        self.stopped.set()

    def _reachable(self, host):
        name, _, port = host.rpartition(":")
        try:
            with socket.create_connection((name.strip("[]"), int(port)), timeout=2):
                return True
        except OSError:
            return False

    def _watch(self):
        since = {}
        while not self.stopped.wait(self.every):
            for i, host in enumerate(self.cluster.ps):
                if self._reachable(host):
                    since.pop(host, None)
                    continue
                since.setdefault(host, time.time())
                if time.time() - since[host] >= self.seconds and not self.stopped.is_set():
                    print(f"{self.cluster.name}: parameter server ps{i} at {host} has not "
                          f"answered for {self.seconds} s; start it again and then this "
                          "task (the chief resumes from its last checkpoint), or raise "
                          "--ps-wait", file=sys.stderr, flush=True)
                    os._exit(1)  # (the session would wait for it forever; the lock goes too)


class Protocol:
    """What a worker's training adds for the cluster: synchronous replicas (unless
    ``async_updates``), the done signal to the parameter servers, the wait for the chief, and
    the tokens that let a worker waiting for its last step through."""

    def __init__(self, cluster, async_updates, ps_wait=120):
        self.cluster, self.async_updates, self.ps_wait = cluster, async_updates, ps_wait
        self.watch = None
        self.done = self.sync_hook = self.release = None

    def images_per_step(self, batch_size):
        """A step is one batch from every worker when updates are synchronous."""
        return batch_size * (1 if self.async_updates else len(self.cluster.workers))

    def wrap(self, optimizer, ema=None, variables=None):
        """The optimizer a worker applies its gradients with: with synchronous updates, one
        that aggregates the workers' gradients into one update a global step, after which the
        chief updates the moving averages ``ema`` of ``variables``, if any."""
        if self.async_updates:
            return optimizer
        return tf1.train.SyncReplicasOptimizer(
            optimizer, replicas_to_aggregate=len(self.cluster.workers),
            total_num_replicas=len(self.cluster.workers), variable_averages=ema,
            variables_to_average=variables if ema else None)

    def build(self, optimizer):
        """The ops, in the graph under construction, after the training step."""
        cluster = self.cluster
        self.done = [queue.enqueue(cluster.index) for queue in done_queues(cluster)]
        if isinstance(optimizer, tf1.train.SyncReplicasOptimizer):
            # When the chief stops, its hook closes the token queue: a worker waiting for a
            # token then ends too. A worker that stops first leaves tokens for the others, so
            # that one waiting for its last step gets it and sees the end.
            self.sync_hook = optimizer.make_session_run_hook(cluster.is_chief)
            self.release = optimizer.get_init_tokens_op(len(cluster.workers))

    def stop_watching(self):
        if self.watch is not None:
            self.watch.stop()
            self.watch = None

    def hooks(self):
        return [self.sync_hook] if self.sync_hook else []

    def before_session(self, target, config):
        """Before the session: the watch on the parameter servers, and the thread exception
        hook that keeps a cancelled token thread quiet (cli.run_main puts it back when the
        program returns). (``target`` and ``config``: the session's, unused here now that a
        worker's session itself waits for the chief.)"""
        threading.excepthook = _quiet_cancelled
        self.watch = PsWatch(self.cluster, self.ps_wait)

    def after_training(self, target, config):
        with tf1.Session(target, config=config) as session:
            if self.release is not None:
                try:
                    session.run(self.release)
                except tf.errors.OpError:
                    pass  # the chief has closed the token queue: nobody waits for one
            session.run(self.done)

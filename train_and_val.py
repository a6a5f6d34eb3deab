"""Fine-tune VGG on CIFAR-10 from the ImageNet weights, validating on held-out training images.

    python train_and_val.py                      # VGG16 from pretrained/vgg16.npy, 30 epochs
    python train_and_val.py --pretrained none --batch-norm --learning-rate 0.05   # from scratch
    python train_and_val.py --codes codes/flowers --head linear   # a head on cached codes
    tensorboard --logdir logs                    # loss and accuracy, train and val on one chart

Everything goes under --log-dir (default logs/): checkpoints, config.json and the training
summaries in train/, validation summaries in val/, the best checkpoint by validation accuracy in
best/. Run the same command again to resume from the latest checkpoint; Ctrl-C saves one first.
The test set is never touched here: evaluate.py measures it.
"""

import contextlib
import sys
import time

from common import cli
from common import json_files

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("train_and_val.py")

# (the heavy imports come after that)
import tensorflow as tf  # noqa: E402

from common import devices  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402
import tools  # noqa: E402
from training import config as configuration  # noqa: E402
from training import distributed  # noqa: E402
from training import from_run  # noqa: E402
from training import hooks  # noqa: E402
from training import runs  # noqa: E402
from training import schedules  # noqa: E402
from training import statistics  # noqa: E402
from training import summaries  # noqa: E402
import weights  # noqa: E402

tf1 = tf.compat.v1


def parse_args(argv=None):
    """The command line, checked and completed from itself (``training.config.check_flags``):
    a frozen object, which ``train`` resolves into the run's ``RunConfig``."""
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "dataset", "data-dir", "skip-bad-images", "crop-roi", "log-dir",
                  dataset=None, data_dir=None,
                  choices={"dataset": tuple(input_data.SOURCES)})
    p.add_argument("--pretrained", default="auto",
                   help="weights .npy to start from, or a run's log dir or checkpoint (every "
                        "layer that matches by name and shape); 'auto' = pretrained/ARCH.npy, "
                        "made by convert_weights.py when missing; 'none' trains from scratch")
    p.add_argument("--init-layers", choices=("all", "paper"), default="all",
                   help="which layers --pretrained may give: all that match, or the VGG "
                        "paper's set (conv1_1, conv2_1, conv3_1, conv3_2, fc6-fc8)")
    p.add_argument("--fold-fc6", action="store_true",
                   help="at inputs whose pool5 is 1x1 (32x32), load the pretrained fc6 summed over "
                        "its 7x7 positions instead of leaving fc6 at its initial value")
    p.add_argument("--skip", help="comma-separated layers not to load from --pretrained ('' for "
                                  "none; default: the network's last layer, fc8)")
    cli.add_flags(p, "arch", "batch-norm", "fc-size", "image-size", "resize", "scale-jitter",
                  "batch-size", "learning-rate",
                  "lr-schedule", "lr-steps", "plateau-patience", "plateau-factor",
                  "plateau-decays", "warmup-steps", "warmup-fraction", "momentum", "nesterov",
                  "weight-decay", "label-smoothing", "class-weights", "ema-decay", "clip-norm",
                  "dropout-keep-prob", fc_size=None, arch=None, learning_rate=None,
                  choices={"arch": nets.NAMES})
    p.add_argument("--bn-refresh", type=cli.at_least(0), metavar="BATCHES",
                   help="at the last step, set each batch-norm layer's moving mean and variance "
                        "to those of this many batches of training images read without "
                        "augmentation (at most one pass), before the last validation and "
                        "checkpoint; 0 keeps the moving averages (default: the data set's own, "
                        "docs/recipes.md)")
    cli.add_flags(p, "augment", "no-augment")
    p.add_argument("--epochs", type=cli.finite_float, default=30,
                   help="length of the run in passes over the training split")
    p.add_argument("--max-steps", type=cli.at_least(1),
                   help="length of the run in steps (overrides --epochs)")
    cli.add_flags(p, "val-size")
    for flag, default, what in (("val-every", 1000, "validate every N steps (and at the end)"),
                                ("save-every", 1000, "checkpoint every N steps"),
                                ("summary-every", 100, "write training summaries every N steps "
                                 "(scalars, the first convolution's filters, --histograms)"),
                                ("log-every", 100, "print progress every N steps")):
        p.add_argument(f"--{flag}", type=cli.at_least(1), default=default, help=what)
    p.add_argument("--seed", type=int, default=0,
                   help="seed for initialization, shuffling and augmentation")
    p.add_argument("--histograms", action="store_true",
                   help="also write a histogram of each layer's weights and of their gradients "
                        "every --summary-every steps (weights/LAYER, gradients/LAYER)")
    cli.add_flags(p, "precision", "xla", "verbose")
    p.add_argument("--trainable", default="all",
                   help="which layers train: 'all', 'fc' (fc6-fc8: the network as a fixed "
                        "feature extractor), or a layer name such as conv5_1 (it and all after)")
    p.add_argument("--codes", metavar="CODES_DIR",
                   help="train a head on the codes extract_codes.py wrote there instead of the "
                        "network on images (network, layer, image size, data set and validation "
                        "split come from its manifest)")
    p.add_argument("--head", choices=tuple(model.HEADS),
                   help="with --codes: 'linear' (softmax regression on the codes, the default) "
                        "or 'mlp' (one hidden layer of --head-size ReLUs, with dropout)")
    p.add_argument("--head-size", type=cli.at_least(1), default=1024,
                   help="hidden units of --head mlp")
    towers = p.add_argument_group("several GPUs (one tower of the network per device)")
    towers.add_argument("--num-gpus", type=cli.at_least(1), default=1,
                        help="split each batch (--batch-size stays the whole batch) over this "
                             "many towers sharing the variables; gradients averaged, one update")
    towers.add_argument("--tower-device", choices=("gpu", "cpu"), default="gpu",
                        help="'cpu' runs the --num-gpus towers on as many logical CPU devices "
                             "(to try towers on a machine without GPUs; tests do)")
    towers.add_argument("--variables-on", choices=("cpu", "tower0"), default="cpu",
                        help="where the shared variables live with several towers: the CPU, or "
                             "the first tower's device")
    cluster = p.add_argument_group(
        "several machines (the distributed runtime; or the TF_CONFIG environment variable)")
    cluster.add_argument("--job-name", choices=("ps", "worker"),
                         help="this task's job: a parameter server or a worker (worker 0 is "
                              "the chief)")
    cluster.add_argument("--task-index", type=cli.at_least(0), help="this task's index in its "
                                                                    "job")
    cluster.add_argument("--ps-hosts", help="host:port,... of the parameter servers")
    cluster.add_argument("--worker-hosts", help="host:port,... of the workers")
    cluster.add_argument("--async", dest="async_updates", action="store_true",
                         help="apply each worker's gradients as they come (default: "
                              "synchronous, one update from every worker's gradients)")
    cluster.add_argument("--ps-wait", type=cli.at_least(1), default=120,
                         help="seconds a worker waits for a parameter server it cannot reach "
                              "(killed, say) to be started again before it ends (default 120)")
    return configuration.check_flags(p, p.parse_args(argv))


def tower_devices(cfg, cluster=None):
    """``(devices of the towers, device of the variables)``, or ``(None, None)`` for one. In
    a cluster the variables stay on the parameter servers (device None)."""
    if cfg.num_gpus == 1:
        return None, None
    places = devices.towers(cfg.num_gpus, cfg.tower_device)
    if cluster:
        return places, None
    return places, "/cpu:0" if cfg.variables_on == "cpu" else places[0]


def session_config(cfg, cluster=None):
    config = devices.session_config(cfg.precision, cfg.xla, cpus=cfg.num_gpus if (
        cfg.num_gpus > 1 and cfg.tower_device == "cpu") else None)
    return cluster.session_config(config) if cluster else config


def train_step(cfg, config, images, labels, trainable, global_step, max_steps, protocol,
               codes=False, ema=None, steps_per_epoch=1.0, plateau=None):
    """``(train_op, figures of the whole batch, trained variables, optimizer)``: one tower, or
    --num-gpus towers with their gradients averaged; in a cluster, synchronous replicas unless
    --async (``protocol``), which then also update ``ema`` once a global step."""
    rate = schedules.learning_rate(cfg, global_step, max_steps, steps_per_epoch, plateau)
    optimizer = tools.make_optimizer(rate, cfg.momentum, cfg.precision, cfg.nesterov)
    tower_args = dict(is_training=True, weight_decay=cfg.weight_decay,
                      trainable_layers=trainable, dropout_keep_prob=cfg.dropout_keep_prob,
                      label_smoothing=cfg.label_smoothing, codes=codes,
                      class_weights=cfg.class_weight_values)
    places, variable_device = tower_devices(cfg, protocol and protocol.cluster)
    if places:
        made = model.towers(config, images, labels, places, variable_device, **tower_args)
        grads_and_vars = tools.check_and_clip(
            model.average_gradients(model.tower_gradients(optimizer, made, places,
                                                          variable_device)),
            cfg.clip_norm, cfg.precision)
        # batch-norm moving averages from the first tower's batch: they move once a step
        update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS, "tower_0")
    else:
        made = [model.tower(config, images, labels, **tower_args)]
        grads_and_vars = tools.compute_gradients(optimizer, made[0].total_loss,
                                                 made[0].var_list, cfg.clip_norm,
                                                 cfg.precision)
        update_ops = None
    if protocol:  # (the gradients are the plain optimizer's; the cluster's applies them)
        optimizer = protocol.wrap(optimizer, ema, made[0].var_list)
    train_op = tools.apply_gradients(optimizer, grads_and_vars, global_step, update_ops)
    figures = {name: tf.add_n([getattr(t, name) for t in made]) / float(len(made))
               for name in ("total_loss", "cross_entropy", "accuracy")}
    figures["learning_rate"] = rate
    figures["end_points"], figures["grads_and_vars"] = made[0].end_points, grads_and_vars
    return train_op, figures, made[0].var_list, optimizer


def build_graph(cfg, data, max_steps, steps_per_epoch, cluster=None, protocol=None):
    """The training step on ``data`` (a ``training.inputs`` input), its summaries, the validation
    tower when there is a val split, and in a cluster the protocol's ops."""
    global_step = tf1.train.get_or_create_global_step()
    tf1.set_random_seed(cfg.seed)
    config = model.model_config(cfg)
    # in a cluster, each worker shuffles its own share of the training data its own way
    shard = (len(cluster.workers), cluster.index) if cluster else None
    seed = cfg.seed + (cluster.index if cluster else 0)
    images, labels = data.train_batches(cfg, config, shard, seed)
    # synchronous replicas update the moving averages once a global step, on the chief
    synchronous = protocol is not None and not protocol.async_updates
    ema = tf1.train.ExponentialMovingAverage(cfg.ema_decay, num_updates=global_step) \
        if cfg.ema_decay and synchronous else None
    plateau = schedules.Plateau(cfg.plateau_patience, cfg.plateau_factor, cfg.plateau_decays,
                                max_steps) if cfg.lr_schedule == "plateau" else None
    train_op, figures, var_list, optimizer = train_step(
        cfg, config, images, labels, data.trainable_layers(cfg), global_step, max_steps,
        protocol, codes=data.codes, ema=ema, steps_per_epoch=steps_per_epoch, plateau=plateau)
    total_loss, rate = figures["total_loss"], figures["learning_rate"]
    ema_sync = None
    if ema:
        ema_sync = tf.group([ema.average(v).assign(v) for v in var_list])
    elif cfg.ema_decay:
        ema, train_op, ema_sync = model.moving_average(cfg.ema_decay, global_step, train_op,
                                                       var_list)
    tf1.summary.scalar("loss", figures["cross_entropy"])
    tf1.summary.scalar("total_loss", total_loss)
    tf1.summary.scalar("accuracy", figures["accuracy"])
    tf1.summary.scalar("learning_rate", rate)
    data.summarize(images, nets.get(cfg.arch).preprocess)
    network = nets.get(cfg.arch)
    if not data.codes:  # the first convolution's filters; every layer's weights and gradients
        summaries.filters(network)
    if cfg.histograms:
        summaries.histograms(figures["grads_and_vars"])

    graph = {"train_op": train_op, "loss": total_loss, "global_step": global_step,
             "progress": [figures["cross_entropy"], figures["accuracy"], rate, global_step],
             "ema_sync": ema_sync, "images": images, "var_list": var_list,
             "end_points": figures["end_points"], "plateau": plateau}
    if cfg.val_size != 0:
        val_images, val_labels, graph["val_iterator"] = data.val_batches(cfg, config)
        # validation reads the moving averages when there are some, as evaluate.py does
        with model.averaged_weights(ema) if ema else contextlib.nullcontext():
            graph["val_tower"] = model.tower(config, val_images, val_labels, codes=data.codes)
        graph["val_activations"] = {} if data.codes else {  # (shown at each validation)
            layer: graph["val_tower"].end_points[layer]
            for layer in summaries.activation_layers(network)}
    graph["refresh"] = None
    if cfg.bn_refresh:  # (on the network validation reads: the averages with --ema-decay)
        with model.averaged_weights(ema) if ema else contextlib.nullcontext():
            refresh_images, _ = data.train_batches(cfg, config, None, seed, augment=False)
            graph["refresh"] = statistics.Refresh(config, refresh_images, cfg.bn_refresh)
    if protocol:
        protocol.build(optimizer)
    return graph


def start_or_resume(cfg, run):
    """``(checkpoint or None, start step, (weights file, its layers) or None)`` once the graph
    is built: resume from the latest checkpoint (after checking it is of this model), else warm
    start from weights read and checked now, before anything is written."""
    checkpoint = run.latest_checkpoint()
    if checkpoint:
        runs.check_resume(run, model.model_config(cfg), cfg.val_size, checkpoint,
                          tf1.global_variables(), cfg.ema_decay, cfg.dataset)
        start_step = tf1.train.load_variable(checkpoint, "global_step")
        print(f"Resuming from {checkpoint} (step {start_step}); pretrained weights not loaded.")
        return checkpoint, start_step, None
    path = from_run.pretrained_file(cfg.pretrained, nets.get(cfg.arch), cfg.image_size,
                                    cfg.fold_fc6, cfg.skip)
    if not path:
        return None, 0, None
    if from_run.is_run(path):
        return None, 0, (from_run.find(path), None)
    layers = weights.check_finite(weights.read_weights(path), path, cfg.skip)
    if cfg.fc_size and "fc6" not in layers and "fc6" not in cfg.skip and (
            cfg.fold_fc6 or cfg.image_size == nets.get(cfg.arch).imagenet_image_size):
        raise cli.UsageError(f"{path} has no fc6 to load (it holds the convolutions only); "
                             "write one with fc6-fc8 (python convert_weights.py --out ANOTHER."
                             "npy) and pass it with --pretrained")
    return None, 0, (path, layers)


def record_run(cfg, run, checkpoint, pretrained, start_step, max_steps, train_split,
               train_images, class_names, codes_made=None):
    """Add this run's configuration to config.json; the model is this run's until a
    checkpoint of it exists."""
    config = run.config() or {"runs": []}
    if not checkpoint or "model" not in config:
        # A checkpoint that lost its config.json fits the graph of these flags (check_resume
        # compared their shapes), so they describe its model.
        config["model"] = model.model_config(cfg)
    config["class_names"] = class_names
    if codes_made:  # what evaluate.py --codes checks codes against
        config["codes"] = codes_made
    config["runs"].append(configuration.run_entry(
        cfg, pretrained_file=pretrained, start_step=int(start_step), max_steps=max_steps,
        train_split=train_split, train_images=train_images,
        started=time.strftime("%Y-%m-%d %H:%M:%S")))
    json_files.write_json(run.config_file, config)


def make_hooks(cfg, run, graph, scaffold, steps_per_epoch, max_steps, chief=True,
               protocol=None):
    """Stop at the last step, refuse NaN, save, report progress, validate, stop on signals. The
    checkpoint hook comes after the NaN guard, so a step that made the loss NaN is never saved
    (MonitoredTrainingSession would put its own before every hook passed in). Only the chief
    (the one process, or worker 0 of a cluster) saves, validates and writes summaries."""
    validation = None
    if cfg.val_size != 0 and chief:
        validation = hooks.ValidationHook(cfg.val_every, graph["val_iterator"],
                                          graph["val_tower"], run, graph["global_step"],
                                          graph["val_activations"], graph["plateau"])
    progress = hooks.ProgressHook(cfg.log_every, graph["progress"], cfg.batch_size,
                                  steps_per_epoch, max_steps, run.train if chief else None,
                                  validation)
    refresh = [hooks.RefreshHook(graph["refresh"], graph["global_step"], max_steps,
                                 cfg.batch_size)] if graph["refresh"] and chief else []
    saver = [tf1.train.CheckpointSaverHook(run.train, save_steps=cfg.save_every,
                                           scaffold=scaffold)] if chief else []
    sync = protocol.hooks() if protocol else []
    # (validation before the saver: a checkpoint of a validation's step holds what it changed
    # in the learning-rate schedule; the refreshed statistics before both)
    return sync + [tf1.train.StopAtStepHook(last_step=max_steps),
                   tf1.train.NanTensorHook(graph["loss"]), progress] + refresh + (
        [validation] if validation else []) + saver + [hooks.StopOnSignalHook()]


def hook(session_hooks, kind):
    return next(h for h in session_hooks if isinstance(h, kind))


def diverged(cfg, run, progress, start_step):
    """The message for a run stopped by a NaN loss or non-finite gradients."""
    step = (progress.last_step or start_step) + 1
    last = run.latest_checkpoint()
    cause = (f"at step {step}, the first of this run: with weights checked to be finite, the "
             f"learning rate ({cfg.learning_rate:g} at its peak) is too high for them"
             if step == start_step + 1 else
             f"at step {step} with learning rate {progress.last_rate:.3g}")
    return (f"train_and_val.py: training diverged (NaN loss or gradients) {cause}; stopped "
            f"without saving. The last good checkpoint is {last or 'none (no checkpoint yet)'}; "
            "resume with a lower --learning-rate" + ("" if cfg.clip_norm else
                                                     " or with --clip-norm 5") + ".")


def run_steps(cfg, run, graph, scaffold, session_hooks, start_step, cluster=None,
              server=None, protocol=None):
    """The training loop. Returns the exit code: 0 done, 1 diverged, 128 + signal. In a
    cluster, a worker that is not the chief writes nothing, and every worker tells the
    parameter servers when it is done (``protocol``)."""
    master = server.target if server else ""
    config = session_config(cfg, cluster)
    try:
        if protocol:
            protocol.before_session(master, config)
        return _train_session(cfg, run, graph, scaffold, session_hooks, start_step, cluster,
                              master, config, protocol)
    finally:  # (the live bar ends before any line that says what happened)
        hook(session_hooks, hooks.ProgressHook).close()
        if protocol:
            protocol.stop_watching()


def _train_session(cfg, run, graph, scaffold, session_hooks, start_step, cluster, master,
                   config, protocol):
    chief = cluster is None or cluster.is_chief
    grace = 1 if cluster else 120  # (in a cluster the token thread may wait for gradients)
    try:
        with tf1.train.MonitoredTrainingSession(
                master=master, is_chief=True, checkpoint_dir=run.train, scaffold=scaffold,
                hooks=session_hooks, save_checkpoint_steps=None, save_checkpoint_secs=None,
                save_summaries_steps=cfg.summary_every, log_step_count_steps=0,
                config=config, stop_grace_period_secs=grace) if chief else \
                distributed.worker_session(master, scaffold, session_hooks, config,
                                           grace) as session:
            while not session.should_stop():
                session.run(graph["train_op"])
    except (tf1.train.NanLossDuringTrainingError, tf.errors.InvalidArgumentError) as e:
        if isinstance(e, tf.errors.InvalidArgumentError) and tools.NAN_GRADIENTS not in str(e):
            raise
        hook(session_hooks, hooks.ProgressHook).close()
        print(diverged(cfg, run, hook(session_hooks, hooks.ProgressHook), start_step),
              file=sys.stderr)
        return 1
    if protocol:
        protocol.after_training(master, config)
        if not chief:
            last_step = hook(session_hooks, hooks.ProgressHook).last_step
            print(f"{cluster.name}: done at step {last_step}")
            return 0
    last = run.latest_checkpoint()
    stop_on_signal = hook(session_hooks, hooks.StopOnSignalHook)
    if stop_on_signal.received:
        print(f"Stopped by {stop_on_signal.received}; saved {last}. Run the same command to "
              "resume.")
        return stop_on_signal.exit_code
    print(f"Done: {last}")
    return 0


def train(flags):
    """The run of the checked ``flags`` (``parse_args``); the exit code."""
    run = runs.RunDir(flags.log_dir)
    cluster = distributed.from_flags(flags)
    session_config(flags)  # fails now on a precision the machine cannot run
    tower_devices(flags)  # or on more GPUs than it has
    if cluster and cluster.job == "ps":
        return distributed.serve(cluster, session_config(flags))
    chief = cluster is None or cluster.is_chief
    protocol = distributed.Protocol(cluster, flags.async_updates, flags.ps_wait) \
        if cluster else None

    ############################################################################
    # Resolve the configuration, once: the data (images or codes), the network #
    ############################################################################
    cfg, data = configuration.resolve(flags, run, chief, cluster is not None)
    images_per_step = protocol.images_per_step(cfg.batch_size) if protocol else \
        cfg.batch_size
    steps_per_epoch = data.train_images / images_per_step
    max_steps = cfg.max_steps or max(1, round(cfg.epochs * steps_per_epoch))

    with contextlib.ExitStack() as held:
        if chief:
            run.make()
            held.enter_context(run.lock())  # one run per log dir, until train() returns
            run.tidy()  # leftovers of an interrupted save, the checkpoint index
            runs.read_best(run.best_file)  # a damaged best.json: said now, before any write

        ####################################################
        # Configure the optimization, in the cluster's way #
        ####################################################
        server = distributed.start_server(cluster, session_config(cfg, cluster)) \
            if cluster else None
        with tf1.device(cluster.device_setter()) if cluster else contextlib.nullcontext():
            graph = build_graph(cfg, data, max_steps, steps_per_epoch, cluster, protocol)
        devices.check_fits(graph["var_list"], graph["images"], graph["end_points"],
                           cfg.batch_size, f"{cfg.arch} at {cfg.image_size}x"
                           f"{cfg.image_size} with --batch-size {cfg.batch_size}")

        ###########################################
        # Start: resume, or warm start from weights #
        ###########################################
        checkpoint, start_step, pretrained = start_or_resume(cfg, run) if chief else (
            None, 0, None)
        stopped = schedules.stopped_early(cfg, checkpoint)
        if (stopped or start_step >= max_steps) and not cluster:
            print(stopped or f"{checkpoint} is at step {start_step}, already at --max-steps "
                  f"{max_steps}: nothing to do (raise --max-steps or --epochs to train further).")
            return 0
        if chief:
            record_run(cfg, run, checkpoint, pretrained and pretrained[0], start_step,
                       max_steps, data.train_split, data.train_images, data.class_names,
                       codes_made=data.record())
            summaries.write_hparams(run.root, summaries.hparams_of(cfg))

        def warm_start(scaffold, session):
            data.warm_start(session)
            if pretrained and pretrained[1] is None:  # a checkpoint of a run
                from_run.load(pretrained[0], session, nets.get(cfg.arch).layers,
                              from_run.skips(cfg))
                if graph["ema_sync"] is not None:  # the averages start from the loaded weights
                    session.run(graph["ema_sync"])
            elif pretrained:
                weights.load_pretrained(pretrained[0], session, skip=from_run.skips(cfg),
                                        layers=pretrained[1],
                                        fold=("fc6",) if cfg.fold_fc6 else ())
                pretrained[1].clear()  # (the file's arrays are in the graph now)
                if graph["ema_sync"] is not None:  # the averages start from the loaded weights
                    session.run(graph["ema_sync"])

        ###############
        # Train       #
        ###############
        # Checkpoints are listed by paths relative to their folder, so a log dir can be copied
        # or moved and resumed, and the rotation of old checkpoints never reaches outside it.
        scaffold = tf1.train.Scaffold(init_fn=warm_start, saver=tf1.train.Saver(
            sharded=True, max_to_keep=5, save_relative_paths=True, allow_empty=True))
        session_hooks = make_hooks(cfg, run, graph, scaffold, steps_per_epoch, max_steps,
                                   chief, protocol)
        where = f"; logs in {cfg.log_dir}" if chief else " (the chief saves and logs)"
        who = f"{cluster.name} of {len(cluster.workers)} workers: " if cluster else ""
        print(f"{who}Training {data.describe(cfg)} from step {start_step} to {max_steps}"
              f"{where}", flush=True)
        return run_steps(cfg, run, graph, scaffold, session_hooks, start_step, cluster,
                         server, protocol)


def main(argv=None):
    return cli.run_main("train_and_val.py", train, parse_args(argv),
                        interrupted="interrupted before training started; nothing was saved")


if __name__ == "__main__":
    sys.exit(main())

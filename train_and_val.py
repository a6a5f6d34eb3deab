"""Fine-tune VGG on CIFAR-10 from the ImageNet weights, validating on held-out training images.

    python train_and_val.py                      # VGG16 from pretrained/vgg16.npy, 30 epochs
    python train_and_val.py --pretrained none --batch-norm --learning-rate 0.05   # from scratch
    tensorboard --logdir logs                    # loss and accuracy, train and val on one chart

Everything goes under --log-dir (default logs/): checkpoints, config.json and the training
summaries in train/, validation summaries in val/, the best checkpoint by validation accuracy in
best/. Run the same command again to resume from the latest checkpoint; Ctrl-C saves one first.
The test set is never touched here: evaluate.py measures it.
"""

import json
import math
import os
import signal
import sys
import time

import tensorflow as tf

import convert_weights
import input_data
import tools
import vgg16

tf1 = tf.compat.v1

# Configuration that fixes the shapes of the variables; a checkpoint only resumes under the same.
MODEL_KEYS = ("arch", "batch_norm", "image_size", "num_classes")
CONFIG_FILE = "config.json"
BEST_FILE = "best.json"


def parse_args(argv=None):
    p = tools.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data",
                   help="folder holding (or to download) cifar-10-batches-bin/")
    p.add_argument("--log-dir", default="logs",
                   help="checkpoints and TensorBoard summaries go under it")
    p.add_argument("--pretrained", default="auto",
                   help="weights .npy to start from; 'auto' = pretrained/ARCH.npy, made by "
                        "convert_weights.py when missing; 'none' trains from scratch")
    p.add_argument("--skip", default="fc8",
                   help="comma-separated layers not to load from --pretrained ('' for none)")
    p.add_argument("--arch", choices=vgg16.ARCHS, default="vgg16", help="network depth")
    p.add_argument("--batch-norm", action="store_true",
                   help="batch normalization after every convolution")
    p.add_argument("--image-size", type=int, default=32,
                   help="side the images are resized to (a multiple of 32; 224 lets the "
                        "pretrained fc6 fit)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--learning-rate", type=float, default=0.01, help="peak learning rate")
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine: decay to 0 at the last step; constant: no decay")
    p.add_argument("--warmup-steps", type=int, default=500,
                   help="steps of linear learning-rate warm-up")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="L2 penalty on the trained conv and fc weights")
    p.add_argument("--clip-norm", type=float, default=5.0,
                   help="cap on the global gradient norm (0: no cap); keeps the first steps "
                        "on 0..255 inputs from diverging")
    p.add_argument("--dropout-keep-prob", type=float, default=0.5,
                   help="keep probability of the dropout after fc6 and fc7")
    p.add_argument("--no-augment", action="store_true",
                   help="turn off random crops and flips of the training images")
    p.add_argument("--epochs", type=float, default=30,
                   help="length of the run in passes over the training split")
    p.add_argument("--max-steps", type=int,
                   help="length of the run in steps (overrides --epochs)")
    p.add_argument("--val-size", type=int, default=5000,
                   help="training images held out for validation (0: train on all 50,000, "
                        "no validation)")
    p.add_argument("--val-every", type=int, default=1000,
                   help="validate every N steps (and at the end)")
    p.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps")
    p.add_argument("--summary-every", type=int, default=100,
                   help="write training summaries every N steps")
    p.add_argument("--log-every", type=int, default=100, help="print progress every N steps")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for initialization, shuffling and augmentation")
    p.add_argument("--precision", choices=tools.PRECISIONS, default="fp32",
                   help="fp32; bf16 (CPUs with bfloat16 instructions: oneDNN mixed "
                        "precision); fp16 (GPUs: mixed precision with loss scaling)")
    p.add_argument("--xla", action="store_true", help="compile the graph with XLA")
    p.add_argument("--trainable", default="all",
                   help="which layers train: 'all', 'fc' (fc6-fc8: the network as a fixed "
                        "feature extractor), or a layer name such as conv5_1 (it and all after)")
    args = p.parse_args(argv)
    for flag in ("image_size", "batch_size", "val_every", "save_every", "summary_every",
                 "log_every"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.image_size % vgg16.SIDE_MULTIPLE:
        p.error(f"--image-size must be a multiple of {vgg16.SIDE_MULTIPLE}, "
                f"got {args.image_size}")
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be at least 1")
    if args.epochs <= 0 or args.learning_rate <= 0 or args.warmup_steps < 0:
        p.error("--epochs and --learning-rate must be positive, --warmup-steps not negative")
    if not 0 < args.dropout_keep_prob <= 1:
        p.error("--dropout-keep-prob must be in (0, 1]")
    if args.val_size < 0:
        p.error("--val-size must not be negative")
    args.skip = [s for s in args.skip.split(",") if s]
    args.num_classes = input_data.NUM_CLASSES
    try:
        trainable_layers(args.arch, args.trainable)
    except ValueError as e:
        p.error(f"--trainable: {e}")
    return args


def trainable_layers(arch, trainable):
    """The layers that train under --trainable, in graph order."""
    layers = vgg16.layer_names(arch)
    if trainable == "all":
        return layers
    if trainable == "fc":
        return [layer for layer in layers if layer.startswith("fc")]
    if trainable in layers:
        return layers[layers.index(trainable):]
    raise ValueError(f"{trainable!r} is not 'all', 'fc' or a layer of {arch} "
                     f"({', '.join(layers)})")


def learning_rate(args, global_step, max_steps):
    step = tf.cast(global_step, tf.float32)
    rate = tf.constant(args.learning_rate, tf.float32)
    if args.lr_schedule == "cosine":
        progress = tf.minimum(step / float(max_steps), 1.0)
        rate = rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
    if args.warmup_steps:
        rate = rate * tf.minimum(1.0, (step + 1.0) / float(args.warmup_steps))
    return rate


# ----------------------------------------------------------------------------------------------
# Hooks
# ----------------------------------------------------------------------------------------------

class ValidationHook(tf1.train.SessionRunHook):
    """Every ``every`` steps (and at the end), run the evaluation tower over the whole val split;
    write loss and accuracy to ``val_dir`` under the training tags; keep the best checkpoint."""

    def __init__(self, every, iterator, sums, val_dir, best_dir, global_step):
        self.every, self.iterator, self.sums = every, iterator, sums
        self.writer = tf1.summary.FileWriterCache.get(val_dir)
        self.best_dir, self.global_step = best_dir, global_step
        self.best_saver = tf1.train.Saver(max_to_keep=1, name="best_saver")
        self.best = read_json(os.path.join(best_dir, BEST_FILE)) or {"val_accuracy": -1.0}
        self.last_step = None
        self.seconds = 0.0  # time spent validating, left out of the training speed

    def after_create_session(self, session, coord):
        state = tf1.train.get_checkpoint_state(self.best_dir)
        if state:  # so that max_to_keep=1 also retires the best of an earlier run
            self.best_saver.recover_last_checkpoints(state.all_model_checkpoint_paths)

    def before_run(self, run_context):
        return tf1.train.SessionRunArgs(self.global_step)

    def after_run(self, run_context, run_values):
        step = run_values.results + 1  # the step just taken
        if step % self.every == 0:
            self.validate(run_context.session, step)

    def end(self, session):
        step = session.run(self.global_step)
        if step != self.last_step:
            self.validate(session, step)

    def validate(self, session, step):
        start = time.time()
        session.run(self.iterator.initializer)
        loss_sum = correct = count = 0
        while True:
            try:
                batch_loss, batch_correct, batch_count = session.run(self.sums)
            except tf.errors.OutOfRangeError:
                break
            loss_sum, correct, count = loss_sum + batch_loss, correct + batch_correct, \
                count + batch_count
        loss, accuracy = loss_sum / count, correct / count
        self.writer.add_summary(tf1.Summary(value=[
            tf1.Summary.Value(tag="loss", simple_value=loss),
            tf1.Summary.Value(tag="accuracy", simple_value=accuracy)]), step)
        self.writer.flush()
        note = ""
        if accuracy > self.best["val_accuracy"]:
            self.best = {"val_accuracy": accuracy, "val_loss": loss, "step": int(step),
                         "val_images": int(count)}
            self.best_saver.save(session, os.path.join(self.best_dir, "model.ckpt"), step)
            write_json(os.path.join(self.best_dir, BEST_FILE), self.best)
            note = " (best so far, saved)"
        print(f"validation at step {step}: loss {loss:.4f}, accuracy {accuracy:.4f} on "
              f"{count} images{note}", flush=True)
        self.last_step = step
        self.seconds += time.time() - start


class ProgressHook(tf1.train.SessionRunHook):
    """One line every ``every`` steps: step, epoch, loss, accuracy, learning rate, images/s,
    time left; images/s also goes to TensorBoard. Plain text, so it reads well in a log file."""

    def __init__(self, every, fetches, batch_size, steps_per_epoch, max_steps, train_dir,
                 validation=None):
        self.every, self.fetches, self.batch_size = every, fetches, batch_size
        self.steps_per_epoch, self.max_steps = steps_per_epoch, max_steps
        self.writer = tf1.summary.FileWriterCache.get(train_dir)
        self.validation = validation

    def begin(self):
        self.loss_sum, self.accuracy_sum, self.count = 0.0, 0.0, 0
        self.start, self.paused = None, 0.0

    def _validation_seconds(self):
        return self.validation.seconds if self.validation else 0.0

    def before_run(self, run_context):
        if self.start is None:
            self.start, self.paused = time.time(), self._validation_seconds()
        return tf1.train.SessionRunArgs(self.fetches)

    def after_run(self, run_context, run_values):
        loss, accuracy, rate, step = run_values.results
        step += 1
        self.loss_sum += loss
        self.accuracy_sum += accuracy
        self.count += 1
        if step % self.every and step < self.max_steps:
            return
        paused = self._validation_seconds()
        seconds = time.time() - self.start - (paused - self.paused)
        images_per_sec = self.count * self.batch_size / max(seconds, 1e-9)
        left = (self.max_steps - step) * self.batch_size / images_per_sec
        print(f"step {step}/{self.max_steps}  epoch {step / self.steps_per_epoch:.2f}  "
              f"loss {self.loss_sum / self.count:.4f}  "
              f"accuracy {self.accuracy_sum / self.count:.4f}  lr {rate:.5f}  "
              f"{images_per_sec:.0f} images/s  {format_seconds(left)} left", flush=True)
        self.writer.add_summary(tf1.Summary(value=[
            tf1.Summary.Value(tag="images_per_sec", simple_value=images_per_sec)]), step)
        self.loss_sum, self.accuracy_sum, self.count = 0.0, 0.0, 0
        self.start, self.paused = time.time(), paused


class StopOnSignalHook(tf1.train.SessionRunHook):
    """SIGINT (Ctrl-C) and SIGTERM end the run after the current step, so the checkpoint hook
    saves on the way out."""

    def __init__(self):
        self.received = None

    def begin(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def after_run(self, run_context, run_values):
        if self.received:
            run_context.request_stop()


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def read_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise tools.UsageError(f"{path} cannot be read ({e}); restore it, or use another "
                               "--log-dir") from None


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def resolve_pretrained(args):
    """The weights file to warm-start from, or None; makes pretrained/ARCH.npy if it can."""
    if args.pretrained == "none":
        return None
    if args.pretrained != "auto":
        if not os.path.isfile(args.pretrained):
            raise tools.UsageError(f"--pretrained {args.pretrained}: no such file (give the "
                                   "weights file, 'auto', or 'none' to train from scratch)")
        return args.pretrained
    if args.arch not in convert_weights.KERAS_MODELS:
        print(f"No public ImageNet weights for {args.arch}: training from scratch.")
        return None
    path = os.path.join("pretrained", f"{args.arch}.npy")
    if not os.path.exists(path):
        # fc6 only fits 224x224 inputs; otherwise the small convolution-only weights suffice.
        include_top = args.image_size == 224 and "fc6" not in args.skip
        print(f"{path} is missing: writing it from Keras's ImageNet weights "
              f"({'with' if include_top else 'without'} fc6-fc8).")
        try:
            convert_weights.convert(args.arch, path, include_top=include_top)
        except (convert_weights.ConversionError, OSError) as e:
            raise tools.UsageError(
                f"{path} is missing and could not be made: {e}. Put the public {args.arch}.npy "
                "at that path, or train from scratch with --pretrained none") from None
    return path


def check_resume(args, train_dir, checkpoint, variables):
    """A checkpoint resumes only a run of the same model; say so clearly otherwise."""
    config = read_json(os.path.join(train_dir, CONFIG_FILE)) or {}
    saved, wanted = config.get("model"), {key: getattr(args, key) for key in MODEL_KEYS}
    last_val_size = config["runs"][-1]["val_size"] if config.get("runs") else args.val_size
    if last_val_size != args.val_size:
        raise tools.UsageError(f"{train_dir} was trained with --val-size {last_val_size}; "
                               f"another --val-size ({args.val_size}) would validate on images "
                               "it trained on, or train on the old validation images: resume "
                               "with the same, or use another --log-dir")
    if saved and saved != wanted:
        differ = ", ".join(f"{k} {saved.get(k)!r} (asked {wanted[k]!r})" for k in MODEL_KEYS
                           if saved.get(k) != wanted[k])
        raise tools.UsageError(f"{train_dir} holds a checkpoint of another model: {differ}; "
                               "use those flags to resume it, or another --log-dir")
    mismatch = tools.checkpoint_mismatch(checkpoint, variables)
    if mismatch:
        raise tools.UsageError(f"{checkpoint} does not fit this graph ({mismatch}); "
                               "use the flags it was trained with, or another --log-dir")


def build_graph(args, max_steps, train_split):
    global_step = tf1.train.get_or_create_global_step()
    tf1.set_random_seed(args.seed)
    with tf.device("/cpu:0"):
        train_data = input_data.read_cifar10(
            args.data_dir, train_split, args.batch_size, shuffle=True,
            augment=not args.no_augment, image_size=args.image_size, repeat=True,
            seed=args.seed, val_size=args.val_size)
        images, labels = tf1.data.make_one_shot_iterator(train_data).get_next()
    logits, _ = vgg16.build(images, args.num_classes, args.arch, is_training=True,
                            batch_norm=args.batch_norm,
                            dropout_keep_prob=args.dropout_keep_prob)
    layers = trainable_layers(args.arch, args.trainable)
    var_list = [v for v in tf1.trainable_variables() if v.op.name.split("/")[0] in layers]
    total_loss, cross_entropy = tools.loss(logits, labels, args.weight_decay, var_list)
    accuracy = tools.accuracy(logits, labels)
    rate = learning_rate(args, global_step, max_steps)
    train_op = tools.minimize(total_loss, rate, global_step, args.momentum, var_list,
                              args.clip_norm, args.precision)
    tf1.summary.scalar("loss", cross_entropy)
    tf1.summary.scalar("total_loss", total_loss)
    tf1.summary.scalar("accuracy", accuracy)
    tf1.summary.scalar("learning_rate", rate)
    tf1.summary.image("input", tools.vgg_unprocess(images[:4]) / 255.0, max_outputs=4)

    graph = {"train_op": train_op, "loss": total_loss, "global_step": global_step,
             "progress": [cross_entropy, accuracy, rate, global_step]}
    if args.val_size:
        with tf.device("/cpu:0"):
            val_data = input_data.read_cifar10(args.data_dir, "val", args.batch_size,
                                               image_size=args.image_size,
                                               val_size=args.val_size)
            val_iterator = tf1.data.make_initializable_iterator(val_data)
            val_images, val_labels = val_iterator.get_next()
        val_logits, _ = vgg16.build(val_images, args.num_classes, args.arch,
                                    batch_norm=args.batch_norm)
        graph["val_iterator"] = val_iterator
        graph["val_sums"] = tools.batch_sums(val_logits, val_labels)
    return graph


def train(args):
    train_dir, val_dir, best_dir = (os.path.join(args.log_dir, d)
                                    for d in ("train", "val", "best"))
    tools.session_config(args.precision, args.xla)  # fails now on a precision it cannot run
    input_data.maybe_download(args.data_dir)
    train_split = "train" if args.val_size else "trainval"
    train_images = input_data.num_examples(args.data_dir, train_split, args.val_size)
    steps_per_epoch = train_images / args.batch_size
    max_steps = args.max_steps or max(1, round(args.epochs * steps_per_epoch))
    try:
        for d in (train_dir, val_dir, best_dir):
            os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise tools.UsageError(f"--log-dir {args.log_dir}: cannot create {d} ({e.strerror}); "
                               "choose another --log-dir") from None

    checkpoint = tf1.train.latest_checkpoint(train_dir)
    graph = build_graph(args, max_steps, train_split)
    if checkpoint:
        check_resume(args, train_dir, checkpoint, tf1.global_variables())
        start_step = tf1.train.load_variable(checkpoint, "global_step")
        print(f"Resuming from {checkpoint} (step {start_step}); pretrained weights not loaded.")
        pretrained = None
    else:
        start_step = 0
        pretrained = resolve_pretrained(args)
    if start_step >= max_steps:
        print(f"{checkpoint} is at step {start_step}, already at --max-steps {max_steps}: "
              "nothing to do (raise --max-steps or --epochs to train further).")
        return 0

    config = read_json(os.path.join(train_dir, CONFIG_FILE)) or {"runs": []}
    if not checkpoint:  # the model is this run's until a checkpoint of it exists
        config["model"] = {key: getattr(args, key) for key in MODEL_KEYS}
    config["runs"].append({**vars(args), "pretrained_file": pretrained,
                           "start_step": int(start_step), "max_steps": max_steps,
                           "train_split": train_split, "train_images": train_images,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    write_json(os.path.join(train_dir, CONFIG_FILE), config)

    def warm_start(scaffold, session):
        if pretrained:
            tools.load_pretrained(pretrained, session, skip=args.skip)

    validation = None
    scaffold = tf1.train.Scaffold(init_fn=warm_start)
    # The checkpoint hook comes after the NaN guard, so a step that made the loss NaN is never
    # saved (MonitoredTrainingSession would put its own before every hook passed in).
    hooks = [tf1.train.StopAtStepHook(last_step=max_steps),
             tf1.train.NanTensorHook(graph["loss"]),
             tf1.train.CheckpointSaverHook(train_dir, save_steps=args.save_every,
                                           scaffold=scaffold)]
    if args.val_size:
        validation = ValidationHook(args.val_every, graph["val_iterator"], graph["val_sums"],
                                    val_dir, best_dir, graph["global_step"])
    progress = ProgressHook(args.log_every, graph["progress"], args.batch_size, steps_per_epoch,
                            max_steps, train_dir, validation)
    stop_on_signal = StopOnSignalHook()
    hooks += [progress] + ([validation] if validation else []) + [stop_on_signal]
    print(f"Training {args.arch} on {train_images} images ({train_split}) from step "
          f"{start_step} to {max_steps}; logs in {args.log_dir}", flush=True)
    try:
        with tf1.train.MonitoredTrainingSession(
                checkpoint_dir=train_dir, scaffold=scaffold, hooks=hooks,
                save_checkpoint_steps=None, save_checkpoint_secs=None,
                save_summaries_steps=args.summary_every, log_step_count_steps=0,
                config=tools.session_config(args.precision, args.xla)) as session:
            while not session.should_stop():
                session.run(graph["train_op"])
    except (tf1.train.NanLossDuringTrainingError, tf.errors.InvalidArgumentError) as e:
        if isinstance(e, tf.errors.InvalidArgumentError) and tools.NAN_GRADIENTS not in str(e):
            raise
        last = tf1.train.latest_checkpoint(train_dir)
        print(f"train_and_val.py: training diverged (NaN loss or gradients); stopped without "
              f"saving. The last good checkpoint is {last or 'none (no checkpoint yet)'}; "
              "resume with a lower --learning-rate.", file=sys.stderr)
        return 1
    last = tf1.train.latest_checkpoint(train_dir)
    if stop_on_signal.received:
        print(f"Stopped by {stop_on_signal.received}; saved {last}. Run the same command to "
              "resume.")
        return 128 + getattr(signal, stop_on_signal.received)
    print(f"Done: {last}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    tf1.disable_eager_execution()
    try:
        return train(args)
    except (tools.UsageError, input_data.DataError, tools.WeightsFileError) as e:
        print(f"train_and_val.py: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train_and_val.py: interrupted before training started; nothing was saved.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

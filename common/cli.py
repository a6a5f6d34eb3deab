"""Command-line plumbing shared by the programs: the flags (one definition and help text each),
the errors a user can cause, and the ``main()`` trap that turns them into one line and exit 2.

    p = cli.ArgumentParser(description=...)
    cli.add_flags(p, "data-dir", "log-dir", "batch-size", batch_size=250)  # a default of its own
    cli.add_flags(p, "arch", choices={"arch": nets.NAMES})  # the table gives the choices
    flags = cli.freeze(p.parse_args(argv))  # frozen: what a program reads, never written
    return cli.run_main("evaluate.py", evaluate, flags)

Nothing here imports the rest of the project, so every module may import it. ``run_main`` is
hermetic: each call builds its graph in a ``tf.Graph`` of its own and puts back the signal
handlers, the thread exception hook and TensorFlow's summary writers it found, however it
returns, so a program's ``main(argv)`` can be called many times in one process (the tests do).
"""

import argparse
import atexit
import contextlib
import dataclasses
import faulthandler
import functools
import math
import os
import re
import signal
import sys
import tempfile
import threading


class UserError(Exception):
    """Something the user can fix (a flag, a file, a folder): the programs print the message on
    one line and exit with 2. The data, weights and checkpoint errors derive from it."""


class UsageError(UserError):
    """A bad flag or a combination of flags that cannot work."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (program, flag, what is wrong) and exit code 2."""

    def error(self, message):
        release_startup_lines()
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def freeze(args, **resolved):
    """The parsed flags as a frozen dataclass (``Flags``): one field for each of the parser's
    destinations in ``args`` (an argparse Namespace), in the parser's order, ``resolved`` giving
    the value of a field the program completes itself (a default that depends on another flag,
    say) or adding one after them. Writing a field raises ``dataclasses.FrozenInstanceError``,
    so what a program read from its command line stays what it read; a later step that learns
    more (from the data, a run's config.json) makes a new object with ``dataclasses.replace``.
    The programs' ``parse_args(argv)`` return one; train_and_val.py's run has its own, typed
    ``training.config.RunConfig``."""
    values = {**vars(args), **resolved}
    return _flags_class(tuple(values))(**values)


@functools.lru_cache(maxsize=None)
def _flags_class(names):
    return dataclasses.make_dataclass("Flags", names, frozen=True)


def quiet_interrupt(program):
    """Ctrl-C before ``run_main`` (while TensorFlow loads) ends the program with one line and
    exit code 130 instead of a traceback, and TensorFlow's start-up lines are held back
    (``hold_startup_lines``). A program calls it under ``if __name__ == "__main__"`` before its
    heavy imports, so importing the program changes nothing."""
    def handle(signum, frame):
        release_startup_lines()
        print(f"{program}: interrupted while starting; nothing was saved.", file=sys.stderr)
        os._exit(130)
    signal.signal(signal.SIGINT, handle)
    hold_startup_lines()


# What TensorFlow writes to the terminal while it starts, before its logging is set up (so that
# TF_CPP_MIN_LOG_LEVEL cannot hold it back): absl's notice, its info and warning lines (oneDNN,
# CUDA stubs, CPU features) and the CUDA error of a machine without a GPU.
_STARTUP_CHATTER = re.compile(
    r"(WARNING: All log messages before absl::InitializeLog\(\) is called|[IW]\d{4} \d|"
    r"E\d{4} \d.*(cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS)|To enable the following instructions"
    r"|.*rebuild TensorFlow with the appropriate compiler flags)")
_held = None  # (file descriptor 2 as it was, the file it writes to meanwhile)


def verbose(argv=None):
    """Whether TensorFlow may say everything: --verbose, or TF_CPP_MIN_LOG_LEVEL=0."""
    argv = sys.argv[1:] if argv is None else argv
    return any(len(a) > 4 and "--verbose".startswith(a) for a in map(str, argv)) or \
        os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"  # (argparse takes --verb too)


def hold_startup_lines():
    """Until ``release_startup_lines``, what is written to file descriptor 2 (where TensorFlow's
    C++ start-up lines go) is kept in a temporary file; then the lines that are not start-up
    chatter are shown, so a real error still is. Nothing is held back when ``verbose()``.
    TF_CPP_MIN_LOG_LEVEL defaults to 3 for what TensorFlow logs afterwards: its C++ error lines
    are chatter too (a missing CUDA driver, oneDNN's uint8 fallback); a real error reaches the
    program as an exception, and a fatal one is still logged."""
    global _held
    if verbose() or _held is not None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, kept = os.dup(2), tempfile.TemporaryFile()
    os.dup2(kept.fileno(), 2)
    # a crash in TensorFlow's C++ while held (an abort, a segfault) still reaches the terminal,
    # as Python's fatal error with where it happened
    faulthandler_was_on = faulthandler.is_enabled()
    if not faulthandler_was_on:
        faulthandler.enable(file=saved)
    _held = (saved, kept, faulthandler_was_on)
    atexit.register(release_startup_lines)  # (a traceback while loading is shown, too)


def release_startup_lines():
    """Give file descriptor 2 back and show what was held, less TensorFlow's chatter."""
    global _held
    if _held is None:
        return
    saved, kept, faulthandler_was_on = _held
    _held = None
    sys.stderr.flush()
    if not faulthandler_was_on:
        faulthandler.disable()
    os.dup2(saved, 2)
    os.close(saved)
    kept.seek(0)
    for line in kept.read().decode(errors="replace").splitlines():
        if line.strip() and not _STARTUP_CHATTER.match(line):
            print(line, file=sys.stderr)
    kept.close()


@contextlib.contextmanager
def restored_process_state():
    """Put back, on the way out, what a program changes for the whole process: the SIGINT and
    SIGTERM handlers (the training hooks install their own) and ``threading.excepthook``."""
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if main_thread else {}
    excepthook = threading.excepthook
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        threading.excepthook = excepthook


# Failures of the machine rather than of the program, as TensorFlow words them.
_ENVIRONMENT = ("No space left on device", "Permission denied", "Read-only file system",
                "Disk quota exceeded")
_WRITER_THREAD = "EventLoggerThread"  # the thread of a TensorFlow summary writer


def machine_failure(text):
    """The line of ``text`` (a TensorFlow error's message) that names the machine's failure and
    the file it hit (``.../events.out.tfevents...; No space left on device``), or None.
    TensorFlow's first line may be "Graph execution error:"; the cause is on a later one."""
    return next((line.strip() for line in str(text).splitlines()
                 if any(words in line for words in _ENVIRONMENT)), None)


class _WriterFailureLog:
    """A logging filter: leaves out TensorFlow's log line of a summary writer's thread that
    could not write its file, which the program's own line says (``run_main``)."""

    @staticmethod
    def filter(record):
        message = record.getMessage()
        return not (message.startswith("EventFileWriter writer thread error") and
                    machine_failure(message))


def _quiet_writer_threads(previous):
    """A ``threading.excepthook`` that keeps the traceback of a summary writer's thread that
    could not write its file (a full disk) to itself: the writer raises the same error in the
    program when it is next used or closed, and ``run_main`` says it in one line."""
    def hook(args):
        if not (args.thread is not None and args.thread.name == _WRITER_THREAD and
                machine_failure(args.exc_value)):
            previous(args)
    return hook


def _close_writers(tf):
    """Close (so flush) every summary writer TensorFlow caches by folder for the whole process;
    the first one that could not write its file raises its error once all are closed."""
    cache, failure = tf.compat.v1.summary.FileWriterCache, None
    while True:
        try:
            cache.clear()  # (a writer that failed is closed for good: the next pass skips it)
            break
        except RuntimeError as e:
            failure = failure or e
    if failure is not None:
        raise failure


def run_main(program, function, args, interrupted="interrupted; nothing was saved",
             tensorflow=True):
    """``function(args)`` in a graph of its own; a ``UserError``, or a file the machine would
    not let it read or write (no space, no permission: an ``OSError``, a TensorFlow error, a
    summary writer's ``RuntimeError``), becomes ``PROGRAM: message`` on stderr and exit code 2;
    Ctrl-C outside the program's own handling exit code 130. Whatever the program changed for
    the process (signal handlers, the thread exception hook, the summary writers TensorFlow
    caches by folder: flushed and closed, their failure reported) is put back or closed when it
    returns. ``tensorflow=False``: a program that never runs TensorFlow (cluster.py), which is
    then not even imported."""
    if tensorflow:
        import tensorflow as tf
        graph, failures = tf.Graph().as_default, (tf.errors.OpError, RuntimeError)
        if _held is not None:
            tf.config.list_physical_devices("GPU")  # (CUDA's start-up error, held back too)
        log_level = tf.get_logger().level
        if not (verbose() or getattr(args, "verbose", False)):  # its warnings about its v1 API
            tf.get_logger().setLevel("ERROR")
        tf.get_logger().addFilter(_WriterFailureLog)
    else:
        graph, failures = contextlib.nullcontext, RuntimeError
    release_startup_lines()
    with restored_process_state():
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.excepthook = _quiet_writer_threads(threading.excepthook)
        try:
            with graph():
                code = function(args)
            if tensorflow:  # (the last summaries reach their files, or the failure is said)
                _close_writers(tf)
            return code
        except UserError as e:
            print(f"{program}: {e}", file=sys.stderr)
        except OSError as e:
            print(f"{program}: cannot use {e.filename or 'a file'}: {e.strerror or e}; free "
                  "some space, fix its permissions, or choose another folder", file=sys.stderr)
        except failures as e:
            cause = machine_failure(getattr(e, "message", e))
            if cause is None:
                raise
            print(f"{program}: {cause}; free some space, fix the permissions, or choose "
                  "another folder", file=sys.stderr)
        except KeyboardInterrupt:
            print(f"{program}: {interrupted}.", file=sys.stderr)
            return 130
        finally:
            if tensorflow:  # writers are cached by folder for the whole process
                with contextlib.suppress(RuntimeError):  # (said above, or after another error)
                    _close_writers(tf)
                tf.get_logger().setLevel(log_level)
                tf.get_logger().removeFilter(_WriterFailureLog)
        return 2


# ----------------------------------------------------------------------------------------------
# Value types: a bad value is reported by argparse as "argument --flag: ..."
# ----------------------------------------------------------------------------------------------

def at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def side_range(text):
    """MIN,MAX: two whole numbers of at least 1, MIN <= MAX (--scale-jitter)."""
    parts = text.split(",")
    try:
        low, high = (int(part) for part in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None or not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX: two whole numbers with "
                                         "1 <= MIN <= MAX, such as 256,512")
    return low, high


def sides(text):
    """Q1,Q2,...: whole numbers of at least 1 (--scales)."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of sides such as 256,384,512")
    return values


def augmentations(text):
    """none, or some of crop and flip, comma-separated (--augment): normalized to that order."""
    parts = text.split(",")
    if text == "none" or (parts and set(parts) <= {"crop", "flip"} and len(set(parts)) ==
                          len(parts)):
        return text if text == "none" else ",".join(m for m in ("crop", "flip") if m in parts)
    raise argparse.ArgumentTypeError(f"{text!r}: give crop,flip, crop, flip or none")


def path(text):
    """A file or folder name: not empty (an empty one would name no place at all)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got an empty name")
    return text


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


# ----------------------------------------------------------------------------------------------
# The flags. Each program picks the ones it takes; a program may give its own default.
# ----------------------------------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16", "fp16")

FLAGS = {
    # data
    "dataset": dict(default="cifar10", help="which data set (%(choices)s): 'folder' reads "
                    "DATA_DIR/<class>/<image> or DATA_DIR/train/<class>/... and test/<class>/...; "
                    "'mnist' and 'fashion-mnist' the four IDX files (train-images-idx3-ubyte.gz, "
                    "...) in DATA_DIR, downloaded there when missing: give each its own "
                    "--data-dir"),
    "skip-bad-images": dict(action="store_true", help="with --dataset folder or gtsrb: leave "
                            "out images that cannot be read, with a count, instead of stopping"),
    "crop-roi": dict(action="store_true", help="with --dataset gtsrb (the official layout): cut "
                     "each image to the sign's box its CSV gives, before resizing"),
    "data-dir": dict(type=path, default="data", help="folder holding cifar-10-batches-bin/, or "
                     "the .bin files themselves (train_and_val.py downloads CIFAR-10 there when "
                     "missing)"),
    "val-size": dict(type=at_least(0), help="training images held out for validation "
                     "(default: a tenth of them: 5,000 of CIFAR-10's 50,000, the last ones of "
                     "its training files; a stable hashed tenth of a folder's); train_and_val.py "
                     "takes 0 as: train on all of them, no validation"),
    "split": dict(choices=("test", "val", "train", "trainval"), default="test",
                  help="which images: 'val' is the training run's held-out part"),
    # the model
    "arch": dict(default="vgg16", help="network: one of the table in nets.py (%(choices)s)"),
    "batch-norm": dict(action="store_true", help="batch normalization after every convolution"),
    "fc-size": dict(type=at_least(0), default=4096, help="width of the hidden fully connected "
                    "layers fc6 and fc7; 0 leaves them out (the last layer then reads the "
                    "convolutions' output: the usual head for 32x32 images)"),
    "image-size": dict(type=at_least(1), help="side the images are resized to (default: the "
                       "network's own, 32 for VGG; 224 lets the pretrained fc6 fit)"),
    "resize": dict(choices=("squash", "crop"), help="how an image becomes the network's "
                   "square: 'squash' resizes it to the square whatever its shape; 'crop' "
                   "resizes its shorter side to the square's and takes the central square "
                   "(non-square photos keep their proportions) (default: the run's own, "
                   "squash for a new one)"),
    "augment": dict(type=augmentations, metavar="crop,flip|crop|flip|none", help="training "
                    "augmentation: random crops of the image padded by 4 pixels, left-right "
                    "flips (only where a mirror keeps the class true, as the data set says: "
                    "none for MNIST, GTSRB's symmetric signs and swapped pairs), or none "
                    "(default: the data set's own)"),
    "no-augment": dict(action="store_true", help="no random crops and flips (--augment none)"),
    "dense": dict(action="store_true", help="apply the network densely (the VGG paper's test "
                  "time): the whole image, its shorter side rescaled to each of --scales with "
                  "the aspect kept, the fully connected layers as convolutions, the class "
                  "posterior averaged over the score map and the scales"),
    "scales": dict(type=sides, metavar="Q1,Q2,...", help="with --dense: the shorter sides to "
                   "apply the network at, each at least its image size (default: the image "
                   "size alone)"),
    "scale-jitter": dict(type=side_range, metavar="MIN,MAX", help="training augmentation of the "
                         "VGG paper: each image's shorter side rescaled to a random S in "
                         "[MIN, MAX] (aspect kept), then a random --image-size square cut and "
                         "mirrored, instead of the padded crop (MIN at least --image-size; "
                         "CIFAR-10: 32,40)"),
    "batch-size": dict(type=at_least(1), default=128, help="images per batch"),
    # a run's files
    "log-dir": dict(type=path, default="logs", help="the run's folder: checkpoints and "
                    "config.json in train/, the best checkpoint in best/, TensorBoard summaries, "
                    "eval/ results"),
    "checkpoint": dict(type=path, help="a checkpoint prefix such as logs/train/model.ckpt-5000 "
                       "(default: the latest in LOG_DIR/train)"),
    "best": dict(action="store_true", help="the checkpoint with the best validation accuracy "
                 "(LOG_DIR/best)"),
    # the recipe
    "learning-rate": dict(type=finite_float, default=0.01, help="peak learning rate (default "
                          "0.01; from scratch, --pretrained none: the data set's own, "
                          "docs/training.md)"),
    "lr-schedule": dict(choices=("cosine", "constant", "step", "plateau"), default="cosine",
                        help="cosine: decay to 0 at the last step; constant: no decay; step: "
                        "divide by 10 at the epochs of --lr-steps; plateau: the VGG paper's, "
                        "multiply by --plateau-factor when validation accuracy stops improving, "
                        "then stop early"),
    "lr-steps": dict(help="with --lr-schedule step: the epochs at which the rate is divided by "
                     "10, such as 30,60,90"),
    "plateau-patience": dict(type=at_least(1), help="with --lr-schedule plateau: "
                             "validations without a better accuracy before each decay (and "
                             "before the early stop after the last one) (default 2)"),
    "plateau-factor": dict(type=finite_float,
                           help="with --lr-schedule plateau: what each decay multiplies the "
                           "rate by (default 0.1)"),
    "plateau-decays": dict(type=at_least(0), help="with --lr-schedule plateau: "
                           "decays before the run stops early (default 3)"),
    "warmup-steps": dict(type=at_least(0), help="steps of linear learning-rate warm-up "
                         "(default: --warmup-fraction of the run)"),
    "warmup-fraction": dict(type=finite_float, default=0.05, help="share of the run's steps "
                            "spent warming the learning rate up, when --warmup-steps is not "
                            "given"),
    "momentum": dict(type=finite_float, default=0.9, help="SGD momentum"),
    "nesterov": dict(action="store_true", help="Nesterov's momentum"),
    "class-weights": dict(metavar="balanced|FILE.json", help="weigh each training image's loss "
                          "by its class: 'balanced' gives class c N / (classes x its count) of "
                          "the training split; a JSON file {class name: weight} gives those (1 "
                          "for a class it leaves out); accuracy is still reported unweighted"),
    "label-smoothing": dict(type=finite_float, default=0.0, help="share of each target spread "
                            "evenly over all classes (0: none)"),
    "ema-decay": dict(type=finite_float, default=0.0, help="keep an exponential moving average "
                      "of the weights with this decay (e.g. 0.99) and validate and evaluate with "
                      "it (0: off)"),
    "weight-decay": dict(type=finite_float, default=5e-4,
                         help="L2 penalty on the trained conv and fc weights"),
    "clip-norm": dict(type=finite_float, default=5.0, help="cap on the global gradient norm "
                      "(0: no cap); keeps the first steps on 0..255 inputs from diverging"),
    "dropout-keep-prob": dict(type=finite_float, default=0.5,
                              help="keep probability of the dropout after fc6 and fc7"),
    # how it runs
    "precision": dict(choices=PRECISIONS, default="fp32", help="fp32; bf16 (CPUs with bfloat16 "
                      "instructions: oneDNN mixed precision); fp16 (GPUs: mixed precision with "
                      "loss scaling)"),
    "xla": dict(action="store_true", help="compile the graph with XLA"),
    "verbose": dict(action="store_true", help="show everything TensorFlow says (its start-up "
                    "lines and deprecation warnings are held back otherwise; "
                    "TF_CPP_MIN_LOG_LEVEL=0 does the same)"),
}


def add_flags(parser, *names, choices=None, **defaults):
    """Add the named flags of ``FLAGS`` to ``parser``; ``defaults`` (``batch_size=250``)
    replace a flag's default for this program; ``choices`` (``{"arch": nets.NAMES}``) give
    the allowed values of a flag whose choices live with their table (``arch``: nets.py,
    ``dataset``: input_data.py)."""
    choices = dict(choices or {})
    for name in names:
        spec = dict(FLAGS[name])
        key = name.replace("-", "_")
        if key in defaults:
            spec["default"] = defaults.pop(key)
        if name in choices:
            spec["choices"] = tuple(choices.pop(name))
        elif "%(choices)s" in spec["help"]:
            raise TypeError(f"--{name} needs its choices: add_flags(..., choices={{{name!r}: "
                            "...}})")
        parser.add_argument("--" + name, **spec)
    if defaults or choices:
        raise TypeError(f"defaults or choices for flags not added: "
                        f"{', '.join([*defaults, *choices])}")


def default(name):
    """The default of a flag, e.g. ``default("weight-decay")``: programs that run a training
    step of their own (benchmark.py) take the recipe from here, not from literals."""
    return FLAGS[name]["default"]

"""A training run's folder (``--log-dir``) and what is in it, for every program that reads or
writes one: where the checkpoints, config.json and summaries go, which checkpoint to use, and
whether a checkpoint fits the graph built for it.

    LOG_DIR/train/   model.ckpt-*, config.json, TensorBoard summaries of training
    LOG_DIR/val/     validation summaries      LOG_DIR/best/   best checkpoint, best.json
    LOG_DIR/eval/    evaluate.py's reports
"""

import contextlib
import errno
import fcntl
import os
import re
import shutil
import socket
import time

import tensorflow as tf

from common import files
from common.cli import UsageError
from common.json_files import read_json
from model import HEADS
from model import MODEL_DEFAULTS
from model import MODEL_KEYS
import nets

tf1 = tf.compat.v1

CONFIG_FILE = "config.json"
BEST_FILE = "best.json"
LOCK_FILE = "run.lock"
CHECKPOINT_PREFIX = "model.ckpt"
# What an interrupted save leaves: TensorFlow's per-shard folder, its bundle writer's temporary
# files, the checkpoint index's and our JSON files' temporary copies.
LEFTOVER = re.compile(r"(model\.ckpt-\d+_temp|.*\.tempstate\d+|checkpoint\.tmp[0-9a-f]{32}|"
                      r".*\.json\.tmp)$")


class RunDir:
    """The folders of one run under ``log_dir``."""

    def __init__(self, log_dir):
        self.root = log_dir
        self.train, self.val, self.best, self.eval = (
            os.path.join(log_dir, d) for d in ("train", "val", "best", "eval"))
        self.config_file = os.path.join(self.train, CONFIG_FILE)
        self.best_file = os.path.join(self.best, BEST_FILE)

    def make(self):
        """Create train/, val/ and best/; UsageError naming the folder when it cannot be."""
        for folder in (self.train, self.val, self.best):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as e:
                raise UsageError(f"--log-dir {self.root}: cannot create {folder} "
                                 f"({e.strerror}); choose another --log-dir") from None

    def config(self):
        """config.json of the run, or None before the first run; UsageError when it is not
        what train_and_val.py writes."""
        return check_config(read_json(self.config_file), self.config_file)

    def latest_checkpoint(self):
        """The checkpoint the index of train/ names (after ``tidy``: the newest good one), which
        is the one MonitoredTrainingSession restores."""
        return tf1.train.latest_checkpoint(self.train)

    def lock(self):
        """Hold LOG_DIR/run.lock: a second run on the same log dir gets a UsageError naming the
        first. Returns a context manager that lets it go (``with run.lock(): ...``); the
        kernel releases it when the process ends, however it ends, so a killed run never
        blocks the next one."""
        path = os.path.join(self.root, LOCK_FILE)
        try:
            handle = open(path, "a+")
        except OSError as e:
            raise UsageError(f"--log-dir {self.root}: cannot write {path} ({e.strerror}); "
                             "choose another --log-dir") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UsageError(f"--log-dir {self.root} is in use by {holder}; wait for that run "
                             "to end (or stop it), or use another --log-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        return contextlib.closing(handle)  # closing the file releases the lock

    def will_resume(self):
        """Whether ``latest_checkpoint`` will name a checkpoint once ``tidy`` has run, found
        without changing anything (before the lock is held): the newest complete, readable
        checkpoint of train/ that tidy points the index at, else the one the index names now."""
        if os.path.isdir(self.train) and good_checkpoints(self.train)[0]:
            return True
        return self.latest_checkpoint() is not None

    # How many checkpoints the savers keep in train/ and best/.
    KEEP = {"train": 5, "best": 1}

    def tidy(self):
        """Before training: remove what an interrupted save left in train/ and best/, and make
        each folder's checkpoint index list its complete checkpoints by relative path (after a
        copy or a move, or when the index is missing). Returns the lines it printed."""
        notes = []
        for folder in (self.train, self.best):
            for name in sorted(os.listdir(folder)):
                if LEFTOVER.match(name):
                    path = os.path.join(folder, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                    notes.append(f"removed {path}, left by an interrupted save")
            notes += reindex(folder, self.KEEP[os.path.basename(folder)])
        for note in notes:
            print(note)
        return notes


def add_scalars(writer, step, **values):
    """Write ``tag=value`` scalars at ``step`` to a summary writer of the run, and flush."""
    writer.add_summary(tf1.Summary(value=[tf1.Summary.Value(tag=tag, simple_value=value)
                                          for tag, value in values.items()]), step)
    writer.flush()


def _step(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def complete_checkpoints(folder):
    """The prefixes of the checkpoints in ``folder`` whose index and every data shard are
    there, oldest first (by step)."""
    prefixes = []
    for name in os.listdir(folder):
        match = re.fullmatch(re.escape(CHECKPOINT_PREFIX) + r"-(\d+)\.index", name)
        if not match:
            continue
        prefix = os.path.join(folder, name[:-len(".index")])
        shards = [re.fullmatch(re.escape(os.path.basename(prefix)) + r"\.data-\d+-of-(\d+)", n)
                  for n in os.listdir(folder)]
        counts = {int(m.group(1)) for m in shards if m}
        if len(counts) == 1 and sum(1 for m in shards if m) == counts.pop():
            prefixes.append(prefix)
    return sorted(prefixes, key=_step)


def damage(prefix):
    """Why the checkpoint ``prefix`` cannot be restored (every tensor is read), or ''."""
    try:
        reader = tf1.train.NewCheckpointReader(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a truncated file
        return (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
    return ""


def good_checkpoints(folder):
    """``(prefixes, notes)``: the complete checkpoints of ``folder`` up to its newest readable
    one, oldest first (empty when none is readable), and a note on each newer damaged one."""
    notes, present = [], complete_checkpoints(folder)
    while present:
        why = damage(present[-1])
        if not why:
            break
        notes.append(f"{present.pop()} is damaged ({why}); using an earlier checkpoint")
    return present, notes


def reindex(folder, keep=5):
    """Point ``folder``'s checkpoint index at its newest complete, readable checkpoint and list
    the checkpoints by path relative to ``folder``, so that the folder can be copied or moved
    and the saver's rotation never reaches outside it. Damaged checkpoints are named and left
    out; no checkpoint file is touched. A rebuilt index lists the newest ``keep`` (what the saver
    keeps), so that its rotation deletes none of the older ones. Returns notes for the user."""
    present, notes = good_checkpoints(folder)
    if not present:
        return notes
    wanted = [os.path.basename(p) for p in present]
    state = tf1.train.get_checkpoint_state(folder)
    if state is None:
        notes.append(f"{folder} had no checkpoint index; rebuilt it from the checkpoints there "
                     f"(newest {wanted[-1]})")
        kept = wanted[-keep:]
    else:  # the ones it listed (rotation may delete them) that are still good, and the newest
        listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
        kept = [name for name in listed if name in wanted[:-1]] + wanted[-1:]
    # The text form of TensorFlow's CheckpointState, which Saver and latest_checkpoint read;
    # names without a folder are relative to this one.
    path = os.path.join(folder, "checkpoint")
    with files.whole(path, temporary=path + ".json.tmp") as f:  # (a leftover is tidied away)
        f.write(f'model_checkpoint_path: "{wanted[-1]}"\n' + "".join(
            f'all_model_checkpoint_paths: "{name}"\n' for name in kept))
    return notes


def latest_checkpoint(folder):
    """The newest complete checkpoint in ``folder`` (by step), or None. Read from the files,
    not the index, so that a copied or moved folder finds its own checkpoints."""
    present = complete_checkpoints(folder) if os.path.isdir(folder) else []
    return present[-1] if present else None


def _as_prefix(path):
    """``model.ckpt-5`` from ``model.ckpt-5.index`` or ``model.ckpt-5.data-00000-of-00001``."""
    return re.sub(r"\.(index|data-\d+-of-\d+)$", "", path)


def find_checkpoint(log_dir, checkpoint=None, best=False, flag="--checkpoint"):
    """The checkpoint a program should use: ``checkpoint`` itself when given (a prefix, one of
    its files, or a folder: its newest), else the newest in LOG_DIR/best (``best``) or
    LOG_DIR/train. UsageError when there is none, or when it is damaged (naming an earlier
    one to use instead). ``flag``: the program's flag that takes a checkpoint prefix, which
    the messages tell the user to pass (train_and_val.py's is --pretrained)."""
    if checkpoint:
        found = latest_checkpoint(checkpoint) if os.path.isdir(checkpoint) else \
            _as_prefix(checkpoint)
        if not found or not tf1.train.checkpoint_exists(found):
            raise UsageError(f"{flag} {checkpoint}: no such checkpoint (give the "
                             "prefix, e.g. logs/train/model.ckpt-5000)")
    else:
        run = RunDir(log_dir)
        folder = run.best if best else run.train
        found = latest_checkpoint(folder)
        if not found:
            where = "--log-dir" if flag == "--checkpoint" else flag
            raise UsageError(f"no checkpoint in {folder}; train first (python "
                             f"train_and_val.py) or point {where} at a training run")
    why = damage(found)
    if why:
        earlier = [p for p in complete_checkpoints(os.path.dirname(found) or ".")
                   if _step(p) < _step(found)]
        good = next((p for p in reversed(earlier) if not damage(p)), None)
        hint = (f"use {flag} {good}, the newest good one before it" if good
                else "no earlier checkpoint there is readable")
        raise UsageError(f"{found} is damaged ({why}); {hint}")
    return found


def config_for(checkpoint, log_dir):
    """The training run's configuration of ``checkpoint``: next to it, in its run's train/ (for
    a best/ checkpoint), else in LOG_DIR/train. UsageError when there is none."""
    folder = os.path.dirname(checkpoint)
    for folder in (folder, os.path.join(os.path.dirname(folder), "train"),
                   RunDir(log_dir).train):
        path = os.path.join(folder, CONFIG_FILE)
        config = check_config(read_json(path), path)
        if config and "model" in config:
            return config
    raise UsageError(f"no {CONFIG_FILE} next to {checkpoint} or in {RunDir(log_dir).train}; "
                     "the programs need the configuration train_and_val.py saved")


# What each key of a run's model must be, as (check, what it must be).
def _whole(minimum):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
            f"a whole number of at least {minimum}")


MODEL_TYPES = {
    "arch": (lambda v: isinstance(v, str) and v in nets.NETWORKS,
             "one of the networks of nets.py"),
    "batch_norm": (lambda v: isinstance(v, bool), "true or false"),
    "image_size": _whole(1), "num_classes": _whole(1), "fc_size": _whole(0),
    "codes_layer": (lambda v: v is None or isinstance(v, str), "null or a layer name"),
    "head": (lambda v: v is None or isinstance(v, str) and v in HEADS,
             f"null or one of {', '.join(HEADS)}"),
    "head_size": _whole(0),
}


def model_problem(model):
    """What is wrong in a run's ``model`` (config.json's, or a TFLite export's model.json): a
    key it lacks, or one of the wrong kind, such as a network this checkout's nets.py does not
    have; '' when nothing is."""
    for key, (fits, what) in MODEL_TYPES.items():
        if key not in model:
            return f"the model has no {key}"
        if not fits(model[key]):
            names = f" ({', '.join(nets.NAMES)})" if key == "arch" else ""
            return f"the model's {key} is {model[key]!r}, where it must be {what}{names}"
    return ""


def check_config(config, path):
    """``config`` when it has the shape train_and_val.py writes (a ``model`` with every key of
    ``MODEL_KEYS``, each of its kind, class names that are text, and a list of ``runs``, each
    with its ``val_size``); UsageError naming what is wrong otherwise."""
    if config is None:
        return None
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config["model"] = {**MODEL_DEFAULTS, **config["model"]}  # keys added since it was written
    model = config.get("model", {}) if isinstance(config, dict) else None
    runs = config.get("runs") if isinstance(config, dict) else None
    fix = "restore it, or delete it to have it rebuilt from the flags on the next run"
    if (not isinstance(model, dict) or ("model" in config and set(MODEL_KEYS) - set(model))
            or not isinstance(runs, list) or not runs
            or not all(isinstance(r, dict) and "val_size" in r for r in runs)):
        raise UsageError(f"{path} is not a configuration train_and_val.py wrote (it needs "
                         f"'model' with {', '.join(MODEL_KEYS)} and a list of 'runs'); {fix}")
    problem = model_problem(model) if "model" in config else ""
    if problem:
        raise UsageError(f"{path}: {problem}; {fix}")
    names = config.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(
            isinstance(n, str) for n in names) or ("model" in config and names and len(
                names) != model["num_classes"])):
        raise UsageError(f"{path}: class_names must be a list of {model.get('num_classes')} "
                         f"names; {fix}")
    return config


def read_best(path):
    """best.json of a run (``{"val_accuracy": ..., ...}``), or None before the first
    validation; UsageError when it is not what the training program wrote."""
    best = read_json(path)
    if best is None:
        return None
    accuracy = best.get("val_accuracy") if isinstance(best, dict) else None
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not (
            -1.0 <= accuracy <= 1.0):
        raise UsageError(f"{path}: val_accuracy is {accuracy!r}, where it must be a number "
                         "from -1 to 1; restore it, or delete it (the next validation then "
                         "counts as the best so far)")
    return best


def checkpoint_mismatch(checkpoint, variables):
    """What keeps ``checkpoint`` from restoring ``variables`` (missing names, other shapes), as
    one short sentence; '' when it fits."""
    saved = dict(tf1.train.list_variables(checkpoint))
    problems = []
    for v in variables:
        name, shape = v.op.name, v.shape.as_list()
        if name not in saved:
            problems.append(f"{name} missing")
        elif list(saved[name]) != shape:
            problems.append(f"{name} is {list(saved[name])} there, {shape} here")
    if len(problems) > 3:
        problems = problems[:3] + [f"{len(problems) - 3} more"]
    return "; ".join(problems)


def check_resume(run, model, val_size, checkpoint, variables, ema_decay=0.0, dataset=None):
    """A checkpoint resumes only a run of the same ``model``, data set and validation split,
    with moving averages of the weights if and only if it had them; UsageError saying what
    differs otherwise."""
    config = run.config() or {}
    last_dataset = config["runs"][-1].get("dataset") if config.get("runs") else None
    if dataset and last_dataset and last_dataset != dataset:
        raise UsageError(f"{run.train} was trained on --dataset {last_dataset}; resuming it on "
                         f"--dataset {dataset} would carry on its checkpoints on other data: "
                         "resume with the same, or use another --log-dir")
    saved = config.get("model")
    last_val_size = config["runs"][-1]["val_size"] if config.get("runs") else val_size
    last_ema = config["runs"][-1].get("ema_decay", 0.0) if config.get("runs") else ema_decay
    if bool(last_ema) != bool(ema_decay):
        raise UsageError(f"{run.train} was trained with --ema-decay {last_ema or 0}; resume it "
                         f"with {'a' if last_ema else 'no'} --ema-decay (the averages are part "
                         "of its checkpoints), or use another --log-dir")
    if last_val_size != val_size:
        raise UsageError(f"{run.train} was trained with --val-size {last_val_size}; "
                         f"another --val-size ({val_size}) would validate on images "
                         "it trained on, or train on the old validation images: resume "
                         "with the same, or use another --log-dir")
    if saved and saved != model:
        differ = ", ".join(f"{k} {saved.get(k)!r} (asked {model[k]!r})" for k in MODEL_KEYS
                           if saved.get(k) != model[k])
        raise UsageError(f"{run.train} holds a checkpoint of another model: {differ}; "
                         "use those flags to resume it, or another --log-dir")
    mismatch = checkpoint_mismatch(checkpoint, variables)
    if mismatch:
        raise UsageError(f"{checkpoint} does not fit this graph ({mismatch}); "
                         "use the flags it was trained with, or another --log-dir")

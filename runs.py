"""A training run's folder (``--log-dir``) and what is in it, for every program that reads or
writes one: where the checkpoints, config.json and summaries go, which checkpoint to use, and
whether a checkpoint fits the graph built for it.

    LOG_DIR/train/   model.ckpt-*, config.json, TensorBoard summaries of training
    LOG_DIR/val/     validation summaries      LOG_DIR/best/   best checkpoint, best.json
    LOG_DIR/eval/    evaluate.py's reports
"""

import os

import tensorflow as tf

from cli import UsageError, read_json
from model import MODEL_KEYS

tf1 = tf.compat.v1

CONFIG_FILE = "config.json"
BEST_FILE = "best.json"


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
        """config.json of the run, or None before the first run."""
        return read_json(self.config_file)

    def latest_checkpoint(self):
        return tf1.train.latest_checkpoint(self.train)


def find_checkpoint(log_dir, checkpoint=None, best=False):
    """The checkpoint a program should use: ``checkpoint`` itself when given, else the newest in
    LOG_DIR/best (``best``) or LOG_DIR/train. UsageError when there is none."""
    if checkpoint:
        if not tf1.train.checkpoint_exists(checkpoint):
            raise UsageError(f"--checkpoint {checkpoint}: no such checkpoint (give the "
                             "prefix, e.g. logs/train/model.ckpt-5000)")
        return checkpoint
    run = RunDir(log_dir)
    folder = run.best if best else run.train
    found = tf1.train.latest_checkpoint(folder)
    if not found:
        raise UsageError(f"no checkpoint in {folder}; train first (python "
                         "train_and_val.py) or point --log-dir at a training run")
    return found


def config_for(checkpoint, log_dir):
    """The training run's configuration of ``checkpoint``: next to it, in its run's train/ (for
    a best/ checkpoint), else in LOG_DIR/train. UsageError when there is none."""
    folder = os.path.dirname(checkpoint)
    for folder in (folder, os.path.join(os.path.dirname(folder), "train"),
                   RunDir(log_dir).train):
        config = read_json(os.path.join(folder, CONFIG_FILE))
        if config:
            return config
    raise UsageError(f"no {CONFIG_FILE} next to {checkpoint} or in {RunDir(log_dir).train}; "
                     "the programs need the configuration train_and_val.py saved")


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


def check_resume(run, model, val_size, checkpoint, variables):
    """A checkpoint resumes only a run of the same ``model`` and validation split; UsageError
    saying what differs otherwise."""
    config = run.config() or {}
    saved = config.get("model")
    last_val_size = config["runs"][-1]["val_size"] if config.get("runs") else val_size
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

"""The learning rate of a training run, step by step: cosine decay to 0 at the last step,
constant, step (divided by 10 at the epochs of --lr-steps: torchvision's VGG recipe) or plateau
(the VGG paper's: multiplied by --plateau-factor when validation accuracy has not improved on its
best for --plateau-patience validations, at most --plateau-decays times, then an early stop);
each times a linear warm-up. The plateau's state (its factor, the best accuracy, the validations
without improvement, the decays made) lives in variables under ``lr_schedule/``, so every
checkpoint carries it and a resumed run goes on at the same rate with the same counts.
"""

import math

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

# --plateau-patience, --plateau-factor, --plateau-decays when not given
PLATEAU_DEFAULTS = {"plateau_patience": 2, "plateau_factor": 0.1, "plateau_decays": 3}


def check_flags(p, args):
    """The schedule's own flags in ``args`` (the parsed command line), checked with the parser
    ``p`` (``p.error`` on a bad one); returns their resolved values: ``lr_steps`` a tuple of
    epochs (or None), the plateau's three with their defaults filled in."""
    given = args.lr_steps
    lr_steps = given
    if given is not None and args.lr_schedule != "step":
        p.error("--lr-steps goes with --lr-schedule step")
    if args.lr_schedule == "step" and given is None:
        p.error("--lr-schedule step needs --lr-steps: the epochs at which the rate is divided "
                "by 10, such as --lr-steps 30,60,90")
    if args.lr_schedule == "step":
        try:
            epochs = tuple(float(e) for e in (given or "").split(","))
        except ValueError:
            epochs = ()
        if not epochs or any(not (e > 0 and math.isfinite(e)) for e in epochs) or \
                list(epochs) != sorted(set(epochs)):
            p.error(f"--lr-steps {given!r}: give the epochs at which the rate is divided by 10, "
                    "positive and increasing, such as --lr-steps 30,60,90")
        lr_steps = epochs
    given = [f"--plateau-{name}" for name in ("patience", "factor", "decays")
             if getattr(args, f"plateau_{name}") is not None]
    if given and args.lr_schedule != "plateau":
        p.error(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --lr-schedule "
                "plateau")
    plateau = {name: default if getattr(args, name) is None else getattr(args, name)
               for name, default in PLATEAU_DEFAULTS.items()}
    if args.lr_schedule == "plateau":
        if not 0 < plateau["plateau_factor"] < 1:
            p.error("--plateau-factor must be above 0 and below 1")
        if getattr(args, "async_updates", False):
            p.error("--lr-schedule plateau does not go with --async: the chief alone validates, "
                    "and its early stop would not reach workers that update on their own")
        if args.val_size == 0:
            p.error("--lr-schedule plateau decays when validation stops improving: it needs a "
                    "validation split (--val-size above 0)")
    return {"lr_steps": lr_steps, **plateau}


def warmup_steps(cfg, max_steps):
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return round(cfg.warmup_fraction * max_steps)


def learning_rate(cfg, global_step, max_steps, steps_per_epoch, plateau=None):
    """The learning rate at ``global_step``: --learning-rate times the schedule's factor
    (cosine: from 1 at step 0 to 0 at ``max_steps``; step: 0.1 for each of --lr-steps' epochs
    reached; plateau: ``plateau.factor``), times a linear warm-up from 1/W to 1 over the first W
    steps (--warmup-steps, or else --warmup-fraction of the run)."""
    step = tf.cast(global_step, tf.float32)
    rate = tf.constant(cfg.learning_rate, tf.float32)
    if cfg.lr_schedule == "cosine":
        progress = tf.minimum(step / float(max_steps), 1.0)
        rate = rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
    elif cfg.lr_schedule == "step":
        epoch = step / float(steps_per_epoch)
        reached = tf.add_n([tf.cast(epoch >= e, tf.float32) for e in cfg.lr_steps])
        rate = rate * tf.pow(0.1, reached)
    elif cfg.lr_schedule == "plateau":
        rate = rate * plateau.factor
    warmup = warmup_steps(cfg, max_steps)
    if warmup:
        rate = rate * tf.minimum(1.0, (step + 1.0) / float(warmup))
    return rate


def plateau_step(state, accuracy, patience, factor, decays):
    """The plateau schedule after one validation: ``(state, what happened)`` with ``state`` =
    (factor, best accuracy, validations without improvement, decays made) and what happened
    one of "improved", "waiting", "decayed", "stop"."""
    rate_factor, best, waited, made = state
    if accuracy > best:
        return (rate_factor, accuracy, 0, made), "improved"
    waited += 1
    if waited < patience:
        return (rate_factor, best, waited, made), "waiting"
    if made < decays:
        return (rate_factor * factor, best, 0, made + 1), "decayed"
    return (rate_factor, best, waited, made), "stop"


def stopped_early(cfg, checkpoint):
    """The line for a ``checkpoint`` of a plateau run that has stopped early already (its last
    decay made, and the patience run out since): training on would only stop again. Or None."""
    if cfg.lr_schedule != "plateau" or not checkpoint:
        return None
    reader = tf1.train.load_checkpoint(checkpoint)
    _, best, waited, made = (reader.get_tensor(f"lr_schedule/{name}") for name in Plateau.NAMES)
    if made < cfg.plateau_decays or waited < cfg.plateau_patience:
        return None
    return (f"{checkpoint} stopped early: validation accuracy had not improved on {best:.4f} "
            f"for {validations(int(waited))} after {int(made)} decays; nothing to do (raise "
            "--plateau-decays or --plateau-patience to train on, or use another --log-dir).")


def validations(count):
    return f"{count} validation{'' if count == 1 else 's'}"


class Plateau:
    """The plateau schedule's state as variables of the graph (saved with every checkpoint) and
    ``after_validation``, which updates them after a validation and says what happened."""

    NAMES = ("factor", "best_accuracy", "bad_validations", "decays")

    def __init__(self, patience, factor, decays, max_steps=None):
        self.patience, self.decay_factor, self.decays = patience, factor, decays
        self.max_steps = max_steps  # (a stop there is the run's end, not an early one)
        with tf1.variable_scope("lr_schedule"):
            self.variables = [
                tf1.get_variable(name, initializer=np.array(start, dtype), trainable=False,
                                 use_resource=False)
                for name, start, dtype in zip(self.NAMES, (1.0, -1.0, 0, 0),
                                              (np.float32, np.float32, np.int32, np.int32))]
        self.factor = self.variables[0]
        self.values = [tf1.placeholder(v.dtype.base_dtype, [], f"lr_schedule_{name}")
                       for v, name in zip(self.variables, self.NAMES)]
        self.assign = tf.group(*[tf1.assign(v, value)
                                 for v, value in zip(self.variables, self.values)])

    def after_validation(self, session, step, accuracy):
        """Update the state with this validation's ``accuracy``; a line to print (a decay, or
        the early stop, which then ``stop`` is True for) or None: ``(line, stop)``."""
        state = tuple(session.run(self.variables))
        state, event = plateau_step(state, accuracy, self.patience, self.decay_factor,
                                    self.decays)
        session.run(self.assign, dict(zip(self.values, state)))
        rate_factor, best, waited, made = state
        if event == "decayed":
            return (f"learning rate multiplied by {self.decay_factor:g} at step {step} "
                    f"(decay {made} of {self.decays}): validation accuracy has not improved "
                    f"on {best:.4f} for {validations(self.patience)}"), False
        if event == "stop":
            what = "stopped early" if not self.max_steps or step < self.max_steps else \
                "reached --max-steps, where it would have stopped early"
            return (f"{what} at step {step}: validation accuracy has not improved on "
                    f"{best:.4f} for {validations(waited)} after "
                    + (f"the last of {self.decays} decays" if self.decays else
                       "--plateau-decays 0")), True
        return None, False

"""The training program's own ``SessionRunHook``s, beside TensorFlow's (StopAtStepHook,
NanTensorHook, CheckpointSaverHook): validation with a best checkpoint, a progress line, and a
clean stop on Ctrl-C or SIGTERM.
"""

import os
import signal
import sys
import time

import tensorflow as tf

from common.json_files import write_json
from common.progress import say
import model
from training import runs
from training import summaries

tf1 = tf.compat.v1


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RefreshHook(tf1.train.SessionRunHook):
    """After the last step (``last_step``) and before the hooks after it (validation, the
    saver), set the batch-norm moving averages from training images (``refresh``, a
    ``training.statistics.Refresh``). A run that stops before its last step keeps its moving
    averages."""

    def __init__(self, refresh, global_step, last_step, batch_size):
        self.refresh, self.global_step, self.last_step = refresh, global_step, last_step
        self.batch_size = batch_size

    def before_run(self, run_context):
        return tf1.train.SessionRunArgs(self.global_step)

    def after_run(self, run_context, run_values):
        if run_values.results + 1 == self.last_step:
            self.refresh.run(run_context.session)
            say(f"batch-norm statistics refreshed at step {self.last_step} from "
                f"{self.refresh.batches * self.batch_size} training images (--bn-refresh "
                f"{self.refresh.batches})")


class ValidationHook(tf1.train.SessionRunHook):
    """Every ``every`` steps (and at the end), run the evaluation ``tower`` over the whole val
    split; write loss and accuracy to ``run.val`` under the training tags; keep the best
    checkpoint in ``run.best``. ``activations`` ({layer: the tower's maps there}): the maps of
    the first few val images (the same ones each time: the val split is read in order) go to
    ``run.val`` as the images ``activations/<layer>``. ``schedule`` (a ``schedules.Plateau``)
    hears every validation's accuracy, and may stop the run early."""

    def __init__(self, every, iterator, tower, run, global_step, activations=None,
                 schedule=None):
        self.every, self.iterator, self.tower = every, iterator, tower
        self.schedule = schedule
        self.activations = activations or {}
        self.writer = tf1.summary.FileWriterCache.get(run.val)
        self.run, self.global_step = run, global_step
        self.best_saver = tf1.train.Saver(max_to_keep=1, name="best_saver",
                                          save_relative_paths=True)
        self.best = runs.read_best(run.best_file) or {"val_accuracy": -1.0}
        self.last_step = None
        self.seconds = 0.0  # time spent validating, left out of the training speed

    def after_create_session(self, session, coord):
        state = tf1.train.get_checkpoint_state(self.run.best)
        if state:  # so that max_to_keep=1 also retires the best of an earlier run
            self.best_saver.recover_last_checkpoints(state.all_model_checkpoint_paths)

    def before_run(self, run_context):
        return tf1.train.SessionRunArgs(self.global_step)

    def after_run(self, run_context, run_values):
        step = run_values.results + 1  # the step just taken
        if step % self.every == 0:
            stop = self.validate(run_context.session, step)
            if stop:
                say(stop)
                run_context.request_stop()

    def end(self, session):
        step = session.run(self.global_step)
        if step != self.last_step:
            self.validate(session, step)

    def validate(self, session, step):
        """Validate, keep the best, tell the schedule: the line of an early stop, or None."""
        start = time.time()
        result = model.run_split(session, self.iterator, self.tower)
        loss, accuracy = result.loss, result.accuracy
        runs.add_scalars(self.writer, step, loss=loss, accuracy=accuracy)
        if self.activations and result.count:  # (one more batch: the first of the split)
            session.run(self.iterator.initializer)
            self.writer.add_summary(summaries.activation_summary(
                session.run(self.activations)), step)
        note = ""
        if accuracy > self.best["val_accuracy"]:
            self.best = {"val_accuracy": accuracy, "val_loss": loss, "step": int(step),
                         "val_images": result.count}
            self.best_saver.save(session, os.path.join(self.run.best, "model.ckpt"), step)
            write_json(self.run.best_file, self.best)
            note = " (best so far, saved)"
        say(f"validation at step {step}: loss {loss:.4f}, accuracy {accuracy:.4f} on "
            f"{result.count} images{note}")
        self.last_step = step
        line, stopping = self.schedule.after_validation(session, step, accuracy) \
            if self.schedule else (None, False)
        if line and not stopping:
            say(line)
        self.seconds += time.time() - start
        return line if stopping else None


class ProgressHook(tf1.train.SessionRunHook):
    """One line every ``every`` steps: step, epoch, loss, accuracy, learning rate, images/s,
    time left; images/s also goes to TensorBoard. Plain text, so it reads well in a log file; on
    a terminal a live bar (tqdm) below them shows the same after every step.
    ``fetches`` are the batch's cross-entropy, accuracy, learning rate and the global step."""

    def __init__(self, every, fetches, batch_size, steps_per_epoch, max_steps, train_dir,
                 validation=None, stream=None):
        self.every, self.fetches, self.batch_size = every, fetches, batch_size
        self.steps_per_epoch, self.max_steps = steps_per_epoch, max_steps
        # (None: a worker that is not the chief writes nothing)
        self.writer = tf1.summary.FileWriterCache.get(train_dir) if train_dir else None
        self.validation = validation
        self.stream = stream or sys.stdout
        self.bar = None

    def begin(self):
        self.loss_sum, self.accuracy_sum, self.count = 0.0, 0.0, 0
        self.start, self.paused = None, 0.0
        self.last_step = self.last_rate = None  # of the last step that finished

    def _validation_seconds(self):
        return self.validation.seconds if self.validation else 0.0

    def before_run(self, run_context):
        if self.start is None:
            self.start, self.paused = time.time(), self._validation_seconds()
        return tf1.train.SessionRunArgs(self.fetches)

    def _show(self, step, loss, accuracy, rate):
        """The live bar on a terminal: where the run is, after every step."""
        if self.bar is None:
            import tqdm
            self.bar = tqdm.tqdm(total=self.max_steps, initial=step - 1, unit="step",
                                 file=self.stream, dynamic_ncols=True, desc="training")
            self.bar_start = (time.time(), step - 1)
        seconds, steps = time.time() - self.bar_start[0], step - self.bar_start[1]
        self.bar.set_postfix_str(f"loss {loss:.4f}  accuracy {accuracy:.4f}  lr {rate:.5f}  "
                                 f"{steps * self.batch_size / max(seconds, 1e-9):.0f} images/s",
                                 refresh=False)
        self.bar.update(step - self.bar.n)

    def after_run(self, run_context, run_values):
        loss, accuracy, rate, step = run_values.results
        step += 1
        self.last_step, self.last_rate = step, rate
        self.loss_sum += loss
        self.accuracy_sum += accuracy
        self.count += 1
        if self.stream.isatty():
            self._show(step, loss, accuracy, rate)
        if step % self.every and step < self.max_steps:
            return
        paused = self._validation_seconds()
        seconds = time.time() - self.start - (paused - self.paused)
        images_per_sec = self.count * self.batch_size / max(seconds, 1e-9)
        left = (self.max_steps - step) * self.batch_size / images_per_sec
        say(f"step {step}/{self.max_steps}  epoch {step / self.steps_per_epoch:.2f}  "
            f"loss {self.loss_sum / self.count:.4f}  "
            f"accuracy {self.accuracy_sum / self.count:.4f}  lr {rate:.5f}  "
            f"{images_per_sec:.0f} images/s  {format_seconds(left)} left", self.stream)
        if self.writer:
            runs.add_scalars(self.writer, step, images_per_sec=images_per_sec)
        self.loss_sum, self.accuracy_sum, self.count = 0.0, 0.0, 0
        self.start, self.paused = time.time(), paused

    def end(self, session):
        self.close()

    def close(self):
        """End the live bar (also when training fails, so the error's line is not in it)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopOnSignalHook(tf1.train.SessionRunHook):
    """SIGINT (Ctrl-C) and SIGTERM end the run after the current step, so the checkpoint hook
    saves on the way out. ``exit_code`` is 128 + the signal's number once one came."""

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

    @property
    def exit_code(self):
        return 128 + getattr(signal, self.received) if self.received else 0

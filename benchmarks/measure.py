"""The measuring tools of benchmark.py: a median rate after warm-up, the machine's matmul rate,
the training program's own images/s from its TensorBoard events, and CIFAR-format files of
random pixels to feed it (speed does not depend on the pixels)."""

import os
import statistics
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

import input_data

tf1 = tf.compat.v1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_rate(run_once, images, repeats, warmup=1):
    """Median images/s of ``run_once`` (which processes ``images`` images) over ``repeats``."""
    for _ in range(warmup):
        run_once()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_once()
        rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def matmul_gflops(dtype, repeats, n=4096):
    with tf.Graph().as_default():
        a = tf1.get_variable("a", [n, n], dtype, tf1.random_normal_initializer())
        b = tf1.get_variable("b", [n, n], dtype, tf1.random_normal_initializer())
        product = tf.matmul(a, b)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            rate = median_rate(lambda: session.run(product.op), 1, repeats)
    return rate * 2 * n ** 3 / 1e9


def program_rates(log_dir, flags, max_steps, every):
    """The images/s that train_and_val.py itself measures over each ``every`` steps and writes
    to TensorBoard, the first (warm-up) interval left out."""
    from tensorboard.backend.event_processing import event_accumulator

    command = [sys.executable, os.path.join(ROOT, "train_and_val.py"), "--log-dir", log_dir,
               "--max-steps", str(max_steps), "--log-every", str(every), *map(str, flags)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"train_and_val.py failed: {result.stderr[-2000:]}")
    events = event_accumulator.EventAccumulator(os.path.join(log_dir, "train"))
    events.Reload()
    return [e.value for e in events.Scalars("images_per_sec")][1:]


def global_rate(log_dir, batch_size):
    """Median images/s of the whole job from the training events: the global step's progress
    between progress lines times the global batch, the first interval left out."""
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(os.path.join(log_dir, "train"))
    events.Reload()
    points = [(e.step, e.wall_time) for e in events.Scalars("images_per_sec")]
    rates = [(b[0] - a[0]) * batch_size / (b[1] - a[1]) for a, b in zip(points, points[1:])]
    return statistics.median(rates)


def write_cifar_files(data_dir, train_records, test_records, seed=0):
    """Random CIFAR-format batches (speed does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(data_dir, input_data.BATCHES_DIR)
    os.makedirs(folder)
    per_file = train_records // len(input_data.TRAIN_FILES)
    for name, count in [(n, per_file) for n in input_data.TRAIN_FILES] + [
            (input_data.TEST_FILE, test_records)]:
        records = rng.integers(0, 256, (count, input_data.RECORD_BYTES), dtype=np.uint8)
        records[:, 0] %= input_data.NUM_CLASSES
        records.tofile(os.path.join(folder, name))

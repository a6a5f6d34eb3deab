"""The default benchmark: the training program, the bare training step, Keras, evaluation and the
input pipeline side by side, in images/s, and the model's FLOPs per image (benchmark.py)."""

import contextlib
import json
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks import measure
from common import cli
from common import devices
import input_data
import model
import tools
import vgg16

tf1 = tf.compat.v1


def model_config(arch, image_size, num_classes=input_data.NUM_CLASSES):
    """The ``model`` entry of a run's config.json for the network measured here."""
    return {"arch": arch, "batch_norm": False, "image_size": image_size,
            "num_classes": num_classes, "fc_size": cli.default("fc-size")}


def flops_per_image(arch, image_size, num_classes=input_data.NUM_CLASSES):
    """``(forward, training)`` FLOPs (multiply-adds x 2) per image, counted on the graph: every
    convolution and matrix product of the forward pass; training adds the two backward products
    of each, less the input gradient of the layer that reads the images."""
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [1, image_size, image_size, 3])
        model.inference(model_config(arch, image_size, num_classes), images)
        forward = first = 0
        for op in graph.get_operations():
            if op.type == "Conv2D":
                kernel = op.inputs[1].shape.as_list()
                flops = 2 * int(np.prod(op.outputs[0].shape.as_list()[1:])) * int(
                    np.prod(kernel[:3]))
            elif op.type == "MatMul":
                flops = 2 * int(np.prod(op.inputs[1].shape.as_list()))
            else:
                continue
            forward += flops
            if op.inputs[0] is images:
                first += flops
    return forward, 3 * forward - first


@contextlib.contextmanager
def bare_step(cfg, batch_norm=False):
    """``(session, step, grads_and_vars, tower)``: the training step alone (the training
    program's default loss, optimizer and clipping) on a batch held in a variable."""
    rng = np.random.default_rng(0)
    shape = [cfg.batch_size, cfg.image_size, cfg.image_size, 3]
    with tf.Graph().as_default():
        images = tf1.get_variable("images", initializer=rng.uniform(
            -120, 130, shape).astype(np.float32), trainable=False)
        labels = tf1.get_variable("labels", initializer=rng.integers(
            0, input_data.NUM_CLASSES, cfg.batch_size).astype(np.int32), trainable=False)
        config = {**model_config(cfg.arch, cfg.image_size), "batch_norm": batch_norm}
        tower = model.tower(config, images, labels, is_training=True,
                            weight_decay=cli.default("weight-decay"),
                            dropout_keep_prob=cli.default("dropout-keep-prob"))
        optimizer = tools.make_optimizer(cli.default("learning-rate"), cli.default("momentum"),
                                         cfg.precision)
        grads = tools.compute_gradients(optimizer, tower.total_loss, tower.var_list,
                                        cli.default("clip-norm"), cfg.precision)
        step = tools.apply_gradients(optimizer, grads, tf1.train.get_or_create_global_step())
        with tf1.Session(config=devices.session_config(cfg.precision, cfg.xla)) as session:
            session.run(tf1.global_variables_initializer())
            yield session, step, grads, tower


def bare_step_rate(cfg):
    """Images/s of the training step alone (``bare_step``)."""
    with bare_step(cfg) as (session, step, _, _):
        def steps():
            for _ in range(cfg.steps):
                session.run(step)
        return measure.median_rate(steps, cfg.steps * cfg.batch_size, cfg.repeats)


def eval_rate(cfg, data_dir):
    with tf.Graph().as_default():
        config = model_config(cfg.arch, cfg.image_size)
        images, _, _ = model.split_input(config, "cifar10", data_dir, "test", cfg.batch_size,
                                         repeat=True)
        logits, _ = model.inference(config, images)
        predictions = tf.argmax(logits, -1)
        with tf1.Session(config=devices.session_config(cfg.precision, cfg.xla)) as session:
            session.run(tf1.global_variables_initializer())

            def batches():
                for _ in range(cfg.steps):
                    session.run(predictions)
            return measure.median_rate(batches, cfg.steps * cfg.batch_size, cfg.repeats)


def pipeline_rate(cfg, data_dir, val_size):
    with tf.Graph().as_default():
        images, labels, _ = model.split_input(
            model_config(cfg.arch, cfg.image_size), "cifar10", data_dir, "train",
            cfg.batch_size, val_size, shuffle=True, augment=True, repeat=True, seed=0)
        consume = [tf.reduce_sum(images), tf.reduce_sum(labels)]
        with tf1.Session() as session:
            batches = 50

            def run():
                for _ in range(batches):
                    session.run(consume)
            return measure.median_rate(run, batches * cfg.batch_size, cfg.repeats, warmup=2)


def keras_rate(cfg, data_dir, val_size):
    """``(images/s, whether Keras compiled with XLA)`` of Keras model.fit on the same network,
    optimizer, batch size and data; ``(None, None)`` for a network with no Keras twin here."""
    import keras

    if cfg.arch not in vgg16.CONFIGS:  # the Keras twin below is written for VGG only
        return None, None
    keep = cli.default("dropout-keep-prob")
    if cfg.precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    elif cfg.precision == "fp16":
        keras.mixed_precision.set_global_policy("mixed_float16")
    layers = [keras.Input((cfg.image_size, cfg.image_size, 3))]
    for block in vgg16.CONFIGS[cfg.arch]:
        layers += [keras.layers.Conv2D(c, 3, padding="same", activation="relu") for c in block]
        layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.Flatten())
    for _ in ("fc6", "fc7"):
        layers += [keras.layers.Dense(vgg16.FC_SIZE, activation="relu"),
                   keras.layers.Dropout(1 - keep)]
    layers.append(keras.layers.Dense(input_data.NUM_CLASSES, dtype="float32"))
    net = keras.Sequential(layers)
    net.compile(keras.optimizers.SGD(cli.default("learning-rate"),
                                     momentum=cli.default("momentum"),
                                     global_clipnorm=cli.default("clip-norm")),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    data = input_data.read_cifar10(data_dir, "train", cfg.batch_size, shuffle=True,
                                   augment=True, image_size=cfg.image_size, repeat=True,
                                   seed=0, val_size=val_size)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rates.append(cfg.steps * cfg.batch_size / (time.perf_counter() - self.start))

    rates = []
    net.fit(data, epochs=cfg.repeats + 1, steps_per_epoch=cfg.steps, verbose=0,
            callbacks=[EpochTimer()])
    keras.mixed_precision.set_global_policy("float32")
    return statistics.median(rates[1:]), bool(net.jit_compile)  # the first epoch compiles


def program_rate(cfg, data_dir, log_dir):
    """Median images/s of train_and_val.py from scratch on the CIFAR-format files."""
    flags = ["--data-dir", data_dir, "--arch", cfg.arch, "--pretrained", "none",
             "--batch-size", cfg.batch_size, "--image-size", cfg.image_size, "--val-size", 0,
             "--fc-size", cli.default("fc-size"), "--precision", cfg.precision] + (
                 ["--xla"] if cfg.xla else [])
    return statistics.median(measure.program_rates(
        log_dir, flags, cfg.steps * (cfg.repeats + 1), cfg.steps))


def print_table(r, forward):
    print(f"{r['arch']} {r['image_size']}x{r['image_size']}, batch {r['batch_size']}, "
          f"{r['precision']}{' + XLA' if r['xla'] else ''}; medians of runs after warm-up")
    print(f"  model: {forward / 1e9:.3f} GFLOP forward, {r['train_gflops_per_image']:.3f} "
          "GFLOP per training image")
    rows = [("training program (train_and_val.py)", r["train_img_s"]),
            ("bare training step", r["bare_step_img_s"]),
            (f"Keras model.fit{' (XLA)' if r.get('keras_xla') else ''}", r["keras_img_s"]),
            ("evaluation (forward only)", r["eval_img_s"]),
            ("input pipeline alone", r["pipeline_img_s"])]
    for name, value in rows:
        print(f"  {name:38s} {'-' if value is None else f'{value:10.1f}'} images/s")
    print(f"  matmul float32 {r['matmul_gflops_fp32']:.1f} GFLOP/s, bfloat16 "
          f"{r['matmul_gflops_bf16']:.1f} GFLOP/s")
    print(f"  training achieves {r['train_gflops']:.1f} GFLOP/s = "
          f"{100 * r['train_share_of_matmul']:.1f}% of the {r['precision']} matmul rate "
          f"(bare step {r['bare_step_gflops']:.1f} GFLOP/s)")
    keras = f", {r['train_vs_keras']:.2f}x Keras" if r.get("train_vs_keras") else ""
    print(f"  program / bare step {r['program_vs_bare']:.3f}{keras}; pipeline "
          f"{r['pipeline_vs_train']:.1f}x and evaluation {r['eval_vs_train']:.1f}x training")


def step_speeds(cfg):
    """The default benchmark: the table (see benchmark.py's docstring), then one JSON line."""
    forward, training = flops_per_image(cfg.arch, cfg.image_size)
    results = {"arch": cfg.arch, "batch_size": cfg.batch_size, "image_size": cfg.image_size,
               "precision": cfg.precision, "xla": cfg.xla}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        measure.write_cifar_files(data_dir, train_records=2000, test_records=1000)
        val_size = 200
        results["matmul_gflops_fp32"] = measure.matmul_gflops(tf.float32, cfg.repeats)
        results["matmul_gflops_bf16"] = measure.matmul_gflops(tf.bfloat16, cfg.repeats)
        results["pipeline_img_s"] = pipeline_rate(cfg, data_dir, val_size)
        results["bare_step_img_s"] = bare_step_rate(cfg)
        results["train_img_s"] = program_rate(cfg, data_dir, os.path.join(tmp, "logs"))
        results["eval_img_s"] = eval_rate(cfg, data_dir)
        results["keras_img_s"], results["keras_xla"] = (
            (None, None) if cfg.skip_keras else keras_rate(cfg, data_dir, val_size))
    peak = results["matmul_gflops_bf16" if cfg.precision == "bf16" else "matmul_gflops_fp32"]
    results["train_gflops_per_image"] = training / 1e9
    results["train_gflops"] = results["train_img_s"] * training / 1e9
    results["bare_step_gflops"] = results["bare_step_img_s"] * training / 1e9
    results["train_share_of_matmul"] = results["train_gflops"] / peak
    results["program_vs_bare"] = results["train_img_s"] / results["bare_step_img_s"]
    if results["keras_img_s"]:
        results["train_vs_keras"] = results["train_img_s"] / results["keras_img_s"]
    results["pipeline_vs_train"] = results["pipeline_img_s"] / results["train_img_s"]
    results["eval_vs_train"] = results["eval_img_s"] / results["train_img_s"]
    print_table(results, forward)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0

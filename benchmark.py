"""Speed of the training program, side by side with Keras and the machine's matrix-multiply rate.

    python benchmark.py                          # VGG16, 32x32, batch 128, fp32
    python benchmark.py --precision bf16         # oneDNN bfloat16 on CPUs that have it
    python benchmark.py --transfer               # codes: extraction, an epoch on codes vs images
    python benchmark.py --scale                  # 1, 2, 4 towers and a localhost cluster
    python benchmark.py --bandwidth              # bytes a cluster step moves, per network
    python benchmark.py --summaries              # what filters, histograms, activations cost
    python benchmark.py --tflite                 # TFLite float32 and int8 against the SavedModel
    python benchmark.py --tflite --export-dir exported/cifar10   # the newest exports there

In one run, after warm-up, each figure a median over --repeats measurements:
  train      the real train_and_val.py (its input pipeline from CIFAR-format files written to a
             temporary folder, its hooks, summaries and checkpoints; no validation), images/s
             as the program itself reports them to TensorBoard
  bare       the same training step fed from a variable: no pipeline, no hooks
  keras      the same network, optimizer, batch size and data in Keras model.fit
  eval       the forward pass of the evaluation graph on the test pipeline
  pipeline   the training input pipeline alone (shuffle, augment, preprocess)
  matmul     a large matrix product in float32 and bfloat16, GFLOP/s
With --scale, instead: train_and_val.py's images/s with 1, 2 and 4 towers on logical CPU
devices (--num-gpus N --tower-device cpu) and as a localhost cluster of 1 parameter server and 2
synchronous workers (cluster.py, half the batch each), all with the same global batch, as
ratios to the one-tower run: on one machine this is the overhead each adds.
With --summaries, instead: a training step with batch norm alone and with the first
convolution's filters, with the weight and gradient histograms, and the activation images of a
validation, side by side in turns (what TensorBoard's pictures of the network cost).
With --tflite, instead: the SavedModel (at --batch-size and one image a call) and the TFLite
float32 and int8 models of one network, each as export.py writes it, on the same --tflite-images
random uint8 images at the network's side, images/s and bytes on disk: the newest version of
each kind in --export-dir, or without it the --arch network trained one step on random
CIFAR-format files and exported three times in a temporary folder.
With --bandwidth, instead: for each network and head, the bytes one worker moves through the
parameter servers in a step (it reads every variable and sends the gradient of every trained
one: 4 bytes a value, counted on the graph), and the floor that puts on a synchronous step of 2
and 8 workers through one parameter server's link at 1, 10 and 100 Gb/s (nothing is timed).
With --transfer, instead: extract_codes.py's images/s (fc6 codes from a weights file of the
network's own initial values), and one epoch of train_and_val.py on those codes (--codes, a
linear head) against one epoch of --trainable fc on the images they came from.
The model's FLOPs per training image (counted on its graph: every convolution and matrix
product forward, plus the two backward products of each, less the input gradient of the layer
that reads the images) times the training rate gives the achieved GFLOP/s. Prints a table,
then one JSON line.
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

import cli
import devices
import input_data
import measure
import model
import nets
import summaries
import tflite
import tools
import vgg16
import weights

tf1 = tf.compat.v1
ROOT = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "arch", "batch-size", "image-size", "precision", "xla",
                  choices={"arch": nets.NAMES})
    p.add_argument("--repeats", type=cli.at_least(1), default=5, help="measurements per figure")
    p.add_argument("--steps", type=cli.at_least(1), default=20,
                   help="training steps per measurement")
    p.add_argument("--skip-keras", action="store_true", help="leave out the Keras run")
    p.add_argument("--transfer", action="store_true",
                   help="measure transfer learning instead: extraction of codes, and an epoch "
                        "on codes against an epoch of --trainable fc on images")
    p.add_argument("--scale", action="store_true",
                   help="measure towers and a localhost cluster against one process instead")
    p.add_argument("--bandwidth", action="store_true",
                   help="count the bytes a cluster step moves through the parameter servers "
                        "for each network and head instead")
    p.add_argument("--summaries", action="store_true",
                   help="measure what TensorBoard's filters, histograms and activation images "
                        "add to a training step instead")
    p.add_argument("--tflite", action="store_true",
                   help="measure the TFLite float32 and int8 models against the SavedModel")
    p.add_argument("--export-dir", type=cli.path,
                   help="--tflite: the newest SavedModel, tflite and tflite-int8 versions in "
                        "this export.py --out folder (default: export a one-step run here)")
    p.add_argument("--tflite-images", type=cli.at_least(1),
                   help="--tflite: images per measurement (default 200)")
    p.add_argument("--tflite-threads", type=cli.at_least(1),
                   help="--tflite: the interpreter's threads (default: one a core)")
    p.add_argument("--transfer-images", type=cli.at_least(100), default=5000,
                   help="training images (a tenth held out) for --transfer")
    args = p.parse_args(argv)
    given = [flag for flag in ("export_dir", "tflite_images", "tflite_threads")
             if getattr(args, flag) is not None]
    if given and not args.tflite:
        p.error(f"--{given[0].replace('_', '-')} goes with --tflite")
    args.tflite_images = args.tflite_images or 200
    args.tflite_threads = args.tflite_threads or os.cpu_count()
    nets.check_image_size(p, args)
    try:
        devices.session_config(args.precision, args.xla)
    except cli.UsageError as e:
        p.error(str(e))
    return args


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
def bare_step(args, batch_norm=False):
    """``(session, step, grads_and_vars, tower)``: the training step alone (the training
    program's default loss, optimizer and clipping) on a batch held in a variable."""
    rng = np.random.default_rng(0)
    shape = [args.batch_size, args.image_size, args.image_size, 3]
    with tf.Graph().as_default():
        images = tf1.get_variable("images", initializer=rng.uniform(
            -120, 130, shape).astype(np.float32), trainable=False)
        labels = tf1.get_variable("labels", initializer=rng.integers(
            0, input_data.NUM_CLASSES, args.batch_size).astype(np.int32), trainable=False)
        config = {**model_config(args.arch, args.image_size), "batch_norm": batch_norm}
        tower = model.tower(config, images, labels, is_training=True,
                            weight_decay=cli.default("weight-decay"),
                            dropout_keep_prob=cli.default("dropout-keep-prob"))
        optimizer = tools.make_optimizer(cli.default("learning-rate"), cli.default("momentum"),
                                         args.precision)
        grads = tools.compute_gradients(optimizer, tower.total_loss, tower.var_list,
                                        cli.default("clip-norm"), args.precision)
        step = tools.apply_gradients(optimizer, grads, tf1.train.get_or_create_global_step())
        with tf1.Session(config=devices.session_config(args.precision, args.xla)) as session:
            session.run(tf1.global_variables_initializer())
            yield session, step, grads, tower


def bare_step_rate(args):
    """Images/s of the training step alone (``bare_step``)."""
    with bare_step(args) as (session, step, _, _):
        def steps():
            for _ in range(args.steps):
                session.run(step)
        return measure.median_rate(steps, args.steps * args.batch_size, args.repeats)


def summary_costs(args):
    """Seconds of a training step with batch norm, alone and with each kind of summary run in
    the same ``session.run`` (as MonitoredTrainingSession runs them every --summary-every
    steps), measured in turns so that the machine's load falls on all alike; and of the
    activation images a validation makes (a batch forward to a few layers, their maps drawn and
    encoded)."""
    network = nets.get(args.arch)
    with bare_step(args, batch_norm=True) as (session, step, grads, tower):
        kinds = {"step": [], "filters": [summaries.filters(network)],
                 "histograms": summaries.histograms(grads)}
        maps = {layer: tower.end_points[layer] for layer in summaries.activation_layers(network)}
        times = {kind: [] for kind in kinds}
        for repeat in range(args.repeats + 1):  # side by side, in turns (the first: warm-up)
            for kind, extra in kinds.items():
                start = time.perf_counter()
                session.run([step, *extra])
                if repeat:
                    times[kind].append(time.perf_counter() - start)
        seconds = {kind: statistics.median(values) for kind, values in times.items()}
        seconds["activations"] = 1 / measure.median_rate(
            lambda: summaries.activation_summary(session.run(maps)).SerializeToString(), 1,
            args.repeats)
    print(f"{args.arch} {args.image_size}x{args.image_size}, batch {args.batch_size}, with batch "
          f"norm; medians of {args.repeats} after warm-up")
    print(f"  training step                   {seconds['step'] * 1000:8.1f} ms")
    for kind in ("filters", "histograms"):
        extra = seconds[kind] - seconds["step"]
        print(f"  + {kind:29s} {extra * 1000:+8.1f} ms  ({extra / seconds['step']:+.1%} of a "
              f"step; every --summary-every 100 steps: {extra / seconds['step'] / 100:+.2%})")
    print(f"  activation images (a validation) {seconds['activations'] * 1000:7.1f} ms  "
          f"({seconds['activations'] / seconds['step']:.2f} steps, once a validation)")
    print(json.dumps({f"{k}_seconds": round(v, 5) for k, v in seconds.items()}))
    return 0


def eval_rate(args, data_dir):
    with tf.Graph().as_default():
        config = model_config(args.arch, args.image_size)
        images, _, _ = model.split_input(config, "cifar10", data_dir, "test", args.batch_size,
                                         repeat=True)
        logits, _ = model.inference(config, images)
        predictions = tf.argmax(logits, -1)
        with tf1.Session(config=devices.session_config(args.precision, args.xla)) as session:
            session.run(tf1.global_variables_initializer())

            def batches():
                for _ in range(args.steps):
                    session.run(predictions)
            return measure.median_rate(batches, args.steps * args.batch_size, args.repeats)


def pipeline_rate(args, data_dir, val_size):
    with tf.Graph().as_default():
        images, labels, _ = model.split_input(
            model_config(args.arch, args.image_size), "cifar10", data_dir, "train",
            args.batch_size, val_size, shuffle=True, augment=True, repeat=True, seed=0)
        consume = [tf.reduce_sum(images), tf.reduce_sum(labels)]
        with tf1.Session() as session:
            batches = 50

            def run():
                for _ in range(batches):
                    session.run(consume)
            return measure.median_rate(run, batches * args.batch_size, args.repeats, warmup=2)


def keras_rate(args, data_dir, val_size):
    """``(images/s, whether Keras compiled with XLA)`` of Keras model.fit on the same network,
    optimizer, batch size and data; ``(None, None)`` for a network with no Keras twin here."""
    import keras

    if args.arch not in vgg16.CONFIGS:  # the Keras twin below is written for VGG only
        return None, None
    keep = cli.default("dropout-keep-prob")
    if args.precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    elif args.precision == "fp16":
        keras.mixed_precision.set_global_policy("mixed_float16")
    layers = [keras.Input((args.image_size, args.image_size, 3))]
    for block in vgg16.CONFIGS[args.arch]:
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
    data = input_data.read_cifar10(data_dir, "train", args.batch_size, shuffle=True,
                                   augment=True, image_size=args.image_size, repeat=True,
                                   seed=0, val_size=val_size)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rates.append(args.steps * args.batch_size / (time.perf_counter() - self.start))

    rates = []
    net.fit(data, epochs=args.repeats + 1, steps_per_epoch=args.steps, verbose=0,
            callbacks=[EpochTimer()])
    keras.mixed_precision.set_global_policy("float32")
    return statistics.median(rates[1:]), bool(net.jit_compile)  # the first epoch compiles


def program_rate(args, data_dir, log_dir):
    """Median images/s of train_and_val.py from scratch on the CIFAR-format files."""
    flags = ["--data-dir", data_dir, "--arch", args.arch, "--pretrained", "none",
             "--batch-size", args.batch_size, "--image-size", args.image_size, "--val-size", 0,
             "--fc-size", cli.default("fc-size"), "--precision", args.precision] + (
                 ["--xla"] if args.xla else [])
    return statistics.median(measure.program_rates(
        log_dir, flags, args.steps * (args.repeats + 1), args.steps))


def scale(args):
    """Towers on CPU devices and a localhost cluster against one tower, same global batch."""
    steps = args.steps * (args.repeats + 2)
    results = {"arch": args.arch, "image_size": args.image_size, "batch_size": args.batch_size,
               "precision": args.precision}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        measure.write_cifar_files(data_dir, train_records=2000, test_records=100)
        common = ["--data-dir", data_dir, "--arch", args.arch, "--pretrained", "none",
                  "--image-size", args.image_size, "--val-size", 0, "--precision",
                  args.precision, "--save-every", 10 ** 9]
        for towers in (1, 2, 4):
            log_dir = os.path.join(tmp, f"towers{towers}")
            measure.program_rates(log_dir, common + ["--batch-size", args.batch_size,
                                                     "--num-gpus", towers, "--tower-device",
                                                     "cpu"], steps, args.steps)
            results[f"towers{towers}_img_s"] = measure.global_rate(log_dir, args.batch_size)
        log_dir = os.path.join(tmp, "cluster")
        command = [sys.executable, os.path.join(ROOT, "cluster.py"), "--ps", "1", "--workers",
                   "2", "--", *map(str, common), "--batch-size", str(args.batch_size // 2),
                   "--max-steps", str(steps), "--log-every", str(args.steps), "--log-dir",
                   log_dir]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise RuntimeError(f"cluster.py failed: {done.stdout[-2000:]}")
        results["cluster_img_s"] = measure.global_rate(log_dir, args.batch_size)
    for name in ("towers2", "towers4", "cluster"):
        results[f"{name}_vs_one"] = results[f"{name}_img_s"] / results["towers1_img_s"]
    print(f"scale-out overhead: {args.arch} {args.image_size}x{args.image_size}, global batch "
          f"{args.batch_size}, {args.precision}, one machine; medians of intervals of "
          f"{args.steps} steps after the first")
    for name, what in (("towers1", "1 tower"), ("towers2", "2 towers on CPU devices"),
                       ("towers4", "4 towers on CPU devices"),
                       ("cluster", "cluster: 1 ps + 2 synchronous workers")):
        ratio = f"  {results[name + '_vs_one']:.3f}x one tower" if name != "towers1" else ""
        print(f"  {what:40s} {results[name + '_img_s']:8.1f} images/s{ratio}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0


def write_initial_weights(arch, image_size, path):
    """A weights file in the public layout holding the network's initial values (fc6 sized
    for ``image_size``): speed does not depend on the values."""
    with tf.Graph().as_default():
        model.inference(model_config(arch, image_size, 1000),
                        tf1.placeholder(tf.float32, [None, image_size, image_size, 3]))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            layers = {name: [session.run(w), session.run(b)]
                      for name, (w, b) in weights.graph_layers().items()}
    weights.write_weights(path, layers)


def extraction_rate(args, data_dir, weights_file, out, val_size):
    """extract_codes.py's images/s over the training split, as its progress lines report it."""
    command = [sys.executable, os.path.join(ROOT, "extract_codes.py"), "--arch", args.arch,
               "--weights", weights_file, "--layer", "fc6", "--data-dir", data_dir,
               "--image-size", str(args.image_size), "--val-size", str(val_size),
               "--batch-size", str(args.batch_size), "--precision", args.precision,
               "--out", out]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"extract_codes.py failed: {result.stderr[-2000:]}")
    last = [line for line in result.stdout.splitlines()
            if line.startswith("train: ") and "images/s" in line][-1]
    return float(last.split("images  ")[1].split()[0])


def transfer(args):
    """Extraction images/s; one epoch of a linear head on fc6 codes against one epoch of
    --trainable fc on the images, both as train_and_val.py reports its speed."""
    val_size = args.transfer_images // 10
    train_images = args.transfer_images - val_size
    epoch_steps = max(1, train_images // args.batch_size)
    results = {"arch": args.arch, "image_size": args.image_size, "batch_size": args.batch_size,
               "precision": args.precision, "layer": "fc6", "train_images": train_images}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, npy = os.path.join(tmp, "data"), os.path.join(tmp, f"{args.arch}.npy")
        measure.write_cifar_files(data_dir, train_records=args.transfer_images, test_records=100)
        write_initial_weights(args.arch, args.image_size, npy)
        out = os.path.join(tmp, "codes")
        results["extract_img_s"] = extraction_rate(args, data_dir, npy, out, val_size)
        quiet = ["--batch-size", args.batch_size, "--val-every", 10 ** 9, "--save-every",
                 10 ** 9, "--precision", args.precision]
        for name, flags in (("codes", ["--codes", out, "--head", "linear"]),
                            ("images", ["--data-dir", data_dir, "--arch", args.arch,
                                        "--pretrained", npy, "--trainable", "fc",
                                        "--image-size", args.image_size, "--val-size",
                                        val_size, "--fc-size", cli.default("fc-size")])):
            rates = measure.program_rates(os.path.join(tmp, f"logs-{name}"), flags + quiet,
                                          epoch_steps * (args.repeats + 1), epoch_steps)
            results[f"{name}_img_s"] = statistics.median(rates)
            results[f"{name}_epoch_s"] = train_images / results[f"{name}_img_s"]
    results["codes_vs_images"] = results["codes_img_s"] / results["images_img_s"]
    print(f"transfer learning: {args.arch} {args.image_size}x{args.image_size}, fc6 codes, "
          f"batch {args.batch_size}, {args.precision}, {train_images} training images; "
          "medians of epochs after the first")
    print(f"  extraction (extract_codes.py)          {results['extract_img_s']:10.1f} images/s")
    for name, what in (("codes", "a linear head on the codes (--codes)"),
                       ("images", "--trainable fc on the images")):
        print(f"  one epoch, {what:38s} {results[f'{name}_epoch_s']:8.3f} s "
              f"({results[f'{name}_img_s']:.0f} images/s)")
    print(f"  an epoch on codes is {results['codes_vs_images']:.0f} times faster")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0


def export_one_step(args, tmp):
    """An export.py --out folder in ``tmp`` with the three kinds, of the --arch network trained
    one step from scratch on random CIFAR-format files."""
    data_dir, log_dir, out = (os.path.join(tmp, name) for name in ("data", "logs", "exported"))
    measure.write_cifar_files(data_dir, train_records=500, test_records=10)
    export = ["export.py", "--log-dir", log_dir, "--out", out]
    for command in (["train_and_val.py", "--data-dir", data_dir, "--arch", args.arch,
                     "--pretrained", "none", "--image-size", args.image_size, "--val-size", 0,
                     "--batch-size", 8, "--fc-size", cli.default("fc-size"), "--max-steps", 1,
                     "--log-dir", log_dir], export, export + ["--format", "tflite"],
                    export + ["--format", "tflite-int8", "--calibration-images", 100]):
        done = subprocess.run([sys.executable, os.path.join(ROOT, command[0]),
                               *map(str, command[1:])], capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    return out


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def lite_rates(folders, count, batch_size, repeats, threads, seed=0):
    """{kind_img_s, kind_bytes}: images/s of the SavedModel at ``batch_size`` and at 1
    ("savedmodel_b1"), and of the TFLite models (one image a call, as they take them), all on
    the same ``count`` random uint8 images at the network's side; the bytes of each on disk."""
    lites = {kind: tflite.load(folders[kind], "--export-dir", threads) for kind in tflite.FORMATS}
    side = lites["tflite"].image_size
    images = np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), np.uint8)
    results = {}
    with tf.Graph().as_default(), tf1.Session() as session:
        meta = tf1.saved_model.loader.load(session, ["serve"], folders["savedmodel"])
        signature = meta.signature_def["serving_default"]
        given, wanted = signature.inputs["images"].name, signature.outputs["probabilities"].name
        for name, batch in (("savedmodel", batch_size), ("savedmodel_b1", 1)):
            def run(batch=batch):
                for start in range(0, count, batch):
                    session.run(wanted, {given: images[start:start + batch]})
            results[f"{name}_img_s"] = measure.median_rate(run, count, repeats)
    results["savedmodel_bytes"] = folder_bytes(folders["savedmodel"])
    for kind, lite in lites.items():
        name = kind.replace("-", "_")
        results[f"{name}_img_s"] = measure.median_rate(lambda: lite.run(images), count, repeats)
        results[f"{name}_bytes"] = os.path.getsize(lite.path)
    return results


def lite_speeds(args):
    """--tflite: the table (see the docstring), then one JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        folders = tflite.newest_exports(args.export_dir or export_one_step(args, tmp))
        where = {"savedmodel": folders["savedmodel"], "tflite": folders["tflite"],
                 "tflite_int8": folders["tflite-int8"]} if args.export_dir else {}
        results = {**where, "images": args.tflite_images,
                   "batch_size": args.batch_size, "tflite_threads": args.tflite_threads,
                   "interpreter": tflite.INTERPRETER, **lite_rates(
                       folders, args.tflite_images, args.batch_size, args.repeats,
                       args.tflite_threads)}
    if not args.export_dir:
        results["arch"], results["image_size"] = args.arch, args.image_size
    print(f"TFLite against the SavedModel: {args.tflite_images} images, medians of "
          f"{args.repeats} runs after warm-up; {tflite.INTERPRETER} with {args.tflite_threads} "
          "threads")
    for name, what in (("savedmodel", f"SavedModel, batch {args.batch_size}"),
                       ("savedmodel_b1", "SavedModel, batch 1"), ("tflite", "TFLite float32"),
                       ("tflite_int8", "TFLite int8")):
        size = results.get(f"{name}_bytes")
        ratio = results[f"{name}_img_s"] / results["savedmodel_img_s"]
        print(f"  {what:24s} {results[f'{name}_img_s']:10.1f} images/s {ratio:6.2f}x"
              + (f"  {size:>13,} bytes" if size else ""))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0


# (network, image side, --fc-size, --trainable) of the table --bandwidth prints
BANDWIDTH_CASES = [(arch, 32, 0, "all") for arch in vgg16.ARCHS] + [
    (arch, 224, 4096, trainable) for arch in vgg16.ARCHS for trainable in ("all", "fc")] + [
    ("alexnet", 227, 4096, "all"), ("alexnet", 227, 4096, "fc")]


def step_bytes(arch, image_size, fc_size, trainable, num_classes=input_data.NUM_CLASSES):
    """(bytes of every variable, bytes of the trained ones) of a network as train_and_val.py
    builds it: what a worker reads and what it sends back, each step."""
    network = nets.NETWORKS[arch]
    with tf.Graph().as_default():
        network.make(tf1.placeholder(tf.float32, [None, image_size, image_size, 3]),
                     num_classes, is_training=True, fc_size=fc_size)
        layers = set(network.trainable_layers(trainable))
        every = tf1.global_variables()
        trained = [v for v in every if v.op.name.split("/")[0] in layers]
        return (4 * sum(v.shape.num_elements() for v in every),
                4 * sum(v.shape.num_elements() for v in trained))


def bandwidth():
    """The table of --bandwidth (see the docstring); then one JSON line."""
    rows = []
    print(f"{'network':9} {'side':>4} {'fc':>5} {'trains':>6} {'MB/step':>8}  "
          + "  ".join(f"{f'{n}w {g}Gb/s':>12}" for n in (2, 8) for g in (1, 10, 100)))
    for arch, side, fc_size, trainable in BANDWIDTH_CASES:
        read, sent = step_bytes(arch, side, fc_size, trainable)
        per_worker = read + sent
        floors = {f"{n}w_{g}gbps_s": n * per_worker * 8 / (g * 1e9)
                  for n in (2, 8) for g in (1, 10, 100)}
        rows.append({"arch": arch, "image_size": side, "fc_size": fc_size,
                     "trainable": trainable, "bytes_per_worker_step": per_worker, **floors})
        print(f"{arch:9} {side:>4} {fc_size:>5} {trainable:>6} {per_worker / 1e6:8.1f}  "
              + "  ".join(f"{seconds:11.3f}s" for seconds in floors.values()))
    print(json.dumps(rows))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.bandwidth:
        return bandwidth()
    if args.transfer:
        return transfer(args)
    if args.scale:
        return scale(args)
    if args.summaries:
        return summary_costs(args)
    if args.tflite:
        return cli.run_main("benchmark.py", lite_speeds, args)
    forward, training = flops_per_image(args.arch, args.image_size)
    results = {"arch": args.arch, "batch_size": args.batch_size, "image_size": args.image_size,
               "precision": args.precision, "xla": args.xla}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        measure.write_cifar_files(data_dir, train_records=2000, test_records=1000)
        val_size = 200
        results["matmul_gflops_fp32"] = measure.matmul_gflops(tf.float32, args.repeats)
        results["matmul_gflops_bf16"] = measure.matmul_gflops(tf.bfloat16, args.repeats)
        results["pipeline_img_s"] = pipeline_rate(args, data_dir, val_size)
        results["bare_step_img_s"] = bare_step_rate(args)
        results["train_img_s"] = program_rate(args, data_dir, os.path.join(tmp, "logs"))
        results["eval_img_s"] = eval_rate(args, data_dir)
        results["keras_img_s"], results["keras_xla"] = (
            (None, None) if args.skip_keras else keras_rate(args, data_dir, val_size))
    peak = results["matmul_gflops_bf16" if args.precision == "bf16" else "matmul_gflops_fp32"]
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


if __name__ == "__main__":
    sys.exit(main())

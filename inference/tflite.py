"""A trained network as a TensorFlow Lite model: conversion (float32, or full-integer int8
calibrated on a run's training images), loading a model file with its checks, and running it
on batches, for export.py, evaluate.py, predict.py and benchmark.py.

    model_bytes = tflite.convert(classifier)                            # float32
    model_bytes = tflite.convert(classifier, calibration=uint8_images)  # int8
    lite = tflite.load("exported/cifar10/3")      # or .../3/model.tflite
    probabilities, logits = lite.run(uint8_images)  # [B, S, S, 3] at lite.image_size

A TFLite model has a fixed image size: it takes uint8 RGB [batch, S, S, 3] at the network's
side S, so images are resized (as evaluation resizes them) before they go in; inside, it
preprocesses them as the network was trained and returns ``probabilities`` and ``logits``
(float32 [batch, classes]). The int8 model computes with int8 weights and activations; its
uint8 input and float32 outputs are converted at its edges.

The interpreter is LiteRT's (``ai_edge_litert``), tf.lite.Interpreter's successor: TensorFlow
2.21's own says it is deprecated. Without ai-edge-litert installed, TensorFlow's is used.
"""

import contextlib
import csv
import io
import json
import os
import re
import typing
import warnings

import numpy as np
import tensorflow as tf

from common import cli
from common import json_files
from common.progress import Progress
import input_data
import model
import nets
from training import runs

try:
    from ai_edge_litert.interpreter import Interpreter
    INTERPRETER = "ai_edge_litert"
except ImportError:  # (TensorFlow's own: deprecated, still there in 2.21)
    Interpreter = tf.lite.Interpreter
    INTERPRETER = "tf.lite"

tf1 = tf.compat.v1
MODEL_FILE = "model.tflite"
CLASS_NAMES_FILE = "class_names.txt"
INFO_FILE = "model.json"  # what the model is: its source, size, resizing, the run's data
FORMATS = ("tflite", "tflite-int8")


def network(classifier, images):
    """``(probabilities, logits)`` of the classifier's network on uint8 RGB ``images`` at its
    size, preprocessed inside as evaluation does (the serving graph without its resizing)."""
    config = classifier.config
    # (the uint8 images themselves: what preprocessing does before its cast stays out of the
    # int8 model's quantized part)
    preprocessed = input_data.preprocess_batch(images, nets.get(config["arch"]).preprocess)
    probabilities, _, logits = model.classify(config, preprocessed)
    with tf.name_scope("outputs"):  # (a scope of its own: a network's layer may be "logits")
        return tf.identity(probabilities, "probabilities"), tf.identity(logits, "logits")


@contextlib.contextmanager
def converter(classifier, calibration=None):
    """The ``TFLiteConverter`` of ``classifier`` (its session open while inside): float32, or
    with ``calibration`` (uint8 images [N, S, S, 3]) full-integer int8, its activation ranges
    measured on those images."""
    side = classifier.config["image_size"]
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
        images = tf1.placeholder(tf.uint8, [1, side, side, 3], name="images")
        outputs = network(classifier, images)
        classifier.load(session)
        made = tf1.lite.TFLiteConverter.from_session(session, [images], list(outputs))
        if calibration is not None:
            made.optimizations = [tf.lite.Optimize.DEFAULT]
            made.representative_dataset = lambda: ([image[None]] for image in calibration)
            # (int8 throughout; the uint8 input is cast and the outputs dequantized at the edges)
            made.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield made


def convert(classifier, calibration=None):
    """The TFLite flatbuffer (bytes) of ``classifier`` (see ``converter``)."""
    with converter(classifier, calibration) as made:
        return made.convert()


def layer_errors(classifier, calibration):
    """``[(op, tensor, scale, error)]``, a row per quantized tensor of the int8 model in graph
    order: ``error`` is the root mean square difference between its int8 values (scaled back)
    and the float model's on the ``calibration`` images, in steps of its ``scale``, each op fed
    the float model's own input (TensorFlow Lite's QuantizationDebugger): about 0.3 is the
    rounding alone."""
    with converter(classifier, calibration) as made:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=made, debug_dataset=made.representative_dataset)
        debugger.run()
        table = io.StringIO()
        debugger.layer_statistics_dump(table)
    table.seek(0)
    return [(row["op_name"], row["tensor_name"], float(row["scale"]),
             float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"])))
            for row in csv.DictReader(table)]


def calibration_images(run_config, classifier, count, data_dir=None, batch_size=50):
    """uint8 RGB [<= count, S, S, 3]: the first ``count`` training images of the run of
    ``run_config``, read, resized and preprocessed as evaluation reads them, back in 0..255."""
    run = run_config["runs"][-1]
    dataset, data_dir = run.get("dataset", "cifar10"), data_dir or run.get("data_dir")
    config = classifier.config
    options = {"crop_roi": True} if run.get("crop_roi") else {}
    with tf.Graph().as_default(), tf1.Session() as session:
        split = "trainval" if run.get("val_size") == 0 else "train"  # (0: trained on all)
        images, _, iterator = model.split_input(
            config, dataset, data_dir, split, batch_size, run.get("val_size"), options,
            initializable=True, resize=config.get("resize", "squash"))
        pixels = to_uint8(images, config)
        session.run(iterator.initializer)
        found, total = [], 0
        with Progress("calibration", count) as progress:
            for batch in model.each_batch(session, pixels):
                found.append(batch[:count - total])
                total += len(found[-1])
                progress.update(total)
                if total >= count:
                    break
    if not total:
        raise cli.UsageError(f"no training images in {data_dir} to calibrate the int8 model on")
    return np.concatenate(found)


def to_uint8(preprocessed, config=None):
    """Preprocessed images (the input pipeline's, for the network of ``config``; None: RGB
    0..255 as they are) back to what a TFLite model takes: uint8 RGB, rounded."""
    rgb = input_data.unprocess_batch(preprocessed, nets.get(config["arch"]).preprocess) \
        if config else preprocessed
    return tf.cast(tf.round(tf.clip_by_value(rgb, 0, 255)), tf.uint8)


def predict_files(lite, files, batch_size, resize=None, stream=None):
    """``(probabilities, logits)`` [len(files), classes] of the TFLite model on image files,
    each decoded and resized to its side (``resize``, default its export's) as evaluation does,
    then rounded to uint8."""
    resize = resize or lite.info.get("model", {}).get("resize", "squash")
    with tf.Graph().as_default(), tf1.Session() as session:
        data = input_data.read_files(files, batch_size, lite.image_size, "none", resize)
        batch = to_uint8(tf1.data.make_one_shot_iterator(
            input_data.fixed_parallelism(data)).get_next())
        columns = []
        with Progress("predict", len(files), stream) if len(files) > batch_size \
                else contextlib.nullcontext() as progress:
            for pixels in model.each_batch(session, batch):
                columns.append(lite.run(pixels))
                if progress:
                    progress.update(sum(len(c[0]) for c in columns))
    return tuple(np.concatenate(column) for column in zip(*columns))


def write(folder, content, classifier, kind, run_config=None):
    """MODEL_FILE, CLASS_NAMES_FILE and INFO_FILE of one TFLite export in ``folder``."""
    with open(os.path.join(folder, MODEL_FILE), "wb") as f:
        f.write(content)
    with open(os.path.join(folder, CLASS_NAMES_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classifier.class_names))
    run = (run_config or {}).get("runs", [{}])[-1]
    info = {"format": kind, "source": classifier.source, "interpreter_input": "uint8 RGB",
            "model": classifier.config,
            "run": {key: run.get(key) for key in ("dataset", "data_dir", "val_size", "crop_roi")}}
    with open(os.path.join(folder, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)


class Lite(typing.NamedTuple):
    """A TFLite model file ready to run, with what its export says of it."""
    path: str
    interpreter: typing.Any
    image_size: int
    class_names: list
    info: dict  # INFO_FILE (empty without one)

    def run(self, images):
        """``(probabilities, logits)`` float32 [B, classes] of uint8 RGB ``images`` [B, S, S,
        3], one image at a time (the model's batch is 1)."""
        interpreter = self.interpreter
        given = interpreter.get_input_details()[0]
        outputs = named_outputs(interpreter.get_output_details())
        columns = [np.empty((len(images), len(self.class_names)), np.float32) for _ in outputs]
        for n, image in enumerate(np.asarray(images, np.uint8)):
            interpreter.set_tensor(given["index"], image[None])
            interpreter.invoke()
            for column, detail in zip(columns, outputs):
                column[n] = dequantized(interpreter.get_tensor(detail["index"])[0], detail)
        return tuple(columns)


def named_outputs(details):
    """The details of the ``probabilities`` and the ``logits`` output among ``details`` (the
    interpreter's), by their names (in a scope, or ``logits_1`` as an older export named one
    beside a layer called logits); None unless there is exactly one of each."""
    found = [[d for d in details if re.search(rf"(^|/){key}(_\d+)?$", d["name"])]
             for key in ("probabilities", "logits")]
    return [one for one, in found] if all(len(each) == 1 for each in found) else None


def dequantized(values, detail):
    """An output tensor's values as float32 (a quantized one scaled back)."""
    scale, zero = detail.get("quantization", (0.0, 0))
    if values.dtype != np.float32 and scale:
        return (values.astype(np.float32) - zero) * scale
    return values.astype(np.float32)


def model_path(path, flag="--model"):
    """The model file of ``path``: itself, or MODEL_FILE in a version folder."""
    found = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(found):
        raise cli.UsageError(f"{flag} {path}: no such file" if not os.path.isdir(path) else
                             f"{flag} {path}: a folder without {MODEL_FILE}")
    return found


def load(path, flag="--model", threads=None):
    """The TFLite model of ``path`` (a .tflite file or its version folder), its class names from
    CLASS_NAMES_FILE beside it; UsageError naming the file when it is missing, not a TFLite
    model, not an image classifier of uint8 [1, S, S, 3], or of another class count."""
    found = model_path(path, flag)
    folder = os.path.dirname(found)
    names_file = os.path.join(folder, CLASS_NAMES_FILE)
    try:
        with open(names_file, encoding="utf-8") as f:
            names = [line.rstrip("\n") for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise cli.UsageError(f"{flag} {path}: {names_file} is not text ({e.reason} at byte "
                             f"{e.start}); export the model again (export.py writes the two "
                             "together)") from None
    except OSError:
        raise cli.UsageError(f"{flag} {path}: no {CLASS_NAMES_FILE} beside {found} (export.py "
                             "writes the two together)") from None
    try:
        interpreter = Interpreter(model_path=found, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise cli.UsageError(f"{flag} {found}: not a TensorFlow Lite model ({why})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    shape = list(inputs[0]["shape"]) if len(inputs) == 1 else []
    if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3 or \
            inputs[0]["dtype"] != np.uint8 or len(outputs) != 2 or not named_outputs(outputs):
        raise cli.UsageError(f"{flag} {found}: not an image classifier of export.py (uint8 "
                             "[1, S, S, 3] in, probabilities and logits out)")
    classes = {int(d["shape"][-1]) for d in outputs}
    if classes != {len(names)}:
        raise cli.UsageError(f"{flag} {found} gives {'/'.join(map(str, sorted(classes)))} "
                             f"classes, but {names_file} names {len(names)}")
    info_file = os.path.join(folder, INFO_FILE)
    info = json_files.read_json(info_file, fix=f"export the model again, or remove {INFO_FILE} "
                                "(predict.py does without it)")
    info = {} if info is None else info
    if not isinstance(info, dict) or not all(isinstance(info.get(key, {}), dict)
                                             for key in ("model", "run")):
        raise cli.UsageError(f"{flag} {path}: {info_file} is not what export.py writes (an "
                             "object whose model and run are objects); export the model again")
    return Lite(found, interpreter, int(shape[1]), names, info)


def tower(lite, images, labels):
    """A ``model.Tower`` of the TFLite model on a batch of the input pipeline (``images``
    preprocessed for the network of its export, ``labels``), for ``model.run_split``: the
    images go back to uint8 RGB and through the interpreter."""
    config = lite.info["model"]
    logits = tf1.numpy_function(lambda pixels: lite.run(pixels)[1],
                                [to_uint8(images, config)], tf.float32, stateful=True)
    logits = tf.ensure_shape(logits, [None, len(lite.class_names)])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))
    return model.Tower(logits, {}, tf.reduce_mean(losses), tf.reduce_mean(losses), accuracy,
                       losses, predictions, labels, [])


def run_config(lite):
    """A run's configuration as evaluate.py reads one (the network, its class names, the run's
    data set and split) from the model's export; UsageError without one."""
    info, info_file = lite.info, os.path.join(os.path.dirname(lite.path), INFO_FILE)
    if "model" not in info:
        raise cli.UsageError(f"--model {lite.path}: no {INFO_FILE} of its export beside it "
                             "(export.py writes it: the network's preprocessing and the run's "
                             "split)")
    problem = runs.model_problem({**model.MODEL_DEFAULTS, **info["model"]})
    if not problem and info["model"]["image_size"] != lite.image_size:
        problem = (f"the model's image_size is {info['model']['image_size']}, where the model "
                   f"takes {lite.image_size}x{lite.image_size}")
    if problem:
        raise cli.UsageError(f"--model {lite.path}: {info_file}: {problem}; evaluate it with "
                             "the checkout it was exported from, or export it again with "
                             "this one")
    run = {**info.get("run", {}), "resize": info["model"].get("resize", "squash")}
    return {"model": info["model"], "runs": [run], "class_names": lite.class_names}


def report_name(path):
    """What a report of the model at ``path`` is named after: NAME-N-model.tflite for
    exported/NAME/N/model.tflite, else the file's name."""
    folder, name = os.path.split(os.path.abspath(path))
    parent, version = os.path.split(folder)
    return f"{os.path.basename(parent)}-{version}-{name}" if version.isdigit() else name


def newest_exports(out):
    """{kind: folder}: the newest version of each of "savedmodel", "tflite" and "tflite-int8"
    in an export.py --out folder (for benchmark.py); UsageError naming the kind it lacks."""
    found = {}
    versions = sorted((int(n) for n in os.listdir(out) if n.isdigit()), reverse=True) \
        if os.path.isdir(out) else []
    for version in versions:
        folder = os.path.join(out, str(version))
        kind = "savedmodel" if os.path.isfile(os.path.join(folder, "saved_model.pb")) else \
            (json_files.read_json(os.path.join(folder, INFO_FILE)) or {}).get("format")
        found.setdefault(kind, folder)
    for kind in ("savedmodel",) + FORMATS:
        if kind not in found:
            flag = "" if kind == "savedmodel" else f" --format {kind}"
            raise cli.UsageError(f"--export-dir {out}: no {kind} version (python export.py "
                                 f"--out {out}{flag} writes one)")
    return found


def source_step(lite):
    """The training step of the checkpoint the model was exported from (0 when unknown)."""
    tail = str(lite.info.get("source", "")).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0

"""A trained network ready to classify: from a training run's checkpoint or from an ImageNet
weights file, for predict.py and export.py.

    classifier = serving.from_run("logs", checkpoint=None, best=True)
    classifier = serving.from_weights("pretrained/vgg16.npy", "vgg16")
    with tf.Graph().as_default():
        probabilities, classes = model.classify(classifier.config, images)
        with tf1.Session() as session:
            classifier.load(session)        # every variable of the graph, set in place
"""

import os
import sys
import typing

import tensorflow as tf

from common import cli
import model
import nets
from training import runs
import weights

tf1 = tf.compat.v1


class Classifier(typing.NamedTuple):
    config: dict  # the model entry of config.json (network, image size, classes, head), and
    # "resize": how images become the network's square (pipeline.resize)
    class_names: list  # in the order of the network's outputs
    load: typing.Callable  # load(session): set the variables of the session's graph
    source: str  # the checkpoint or weights file it comes from


def from_run(log_dir, checkpoint=None, best=False, use_averages=True):
    """The network of a training run's checkpoint (``runs.find_checkpoint``), rebuilt from its
    config.json with its class names, read with the moving averages of its weights when it has
    them (as evaluate.py does)."""
    checkpoint = runs.find_checkpoint(log_dir, checkpoint, best)
    config = runs.config_for(checkpoint, log_dir)
    names = config.get("class_names") or [str(i) for i in range(config["model"]["num_classes"])]

    def load(session):
        mismatch = runs.checkpoint_mismatch(checkpoint, session.graph.get_collection(
            tf1.GraphKeys.GLOBAL_VARIABLES))
        if mismatch:
            raise cli.UsageError(f"{checkpoint} does not fit a {config['model']['arch']} "
                                 f"(config.json says so) graph: {mismatch}")
        if model.load_checkpoint(session, checkpoint, use_averages):
            print(f"{checkpoint}: using the moving averages of its weights (--no-ema for the "
                  "weights themselves)", file=sys.stderr)
    resize = config["runs"][-1].get("resize") or "squash"  # how the run's images were resized
    return Classifier({**model.MODEL_DEFAULTS, **config["model"], "resize": resize}, names, load,
                      checkpoint)


def from_weights(path, arch, flag="--weights"):
    """The network of a weights file with every layer up to fc8 (the public vgg16.npy): at its
    ImageNet size (224x224 for VGG, 227x227 for AlexNet), with the 1000 ImageNet classes."""
    if not os.path.isfile(path):
        raise cli.UsageError(f"{flag} {path}: no such file")
    classes = weights.imagenet_classes()
    config = {**model.MODEL_DEFAULTS, "arch": arch, "batch_norm": False,
              "image_size": nets.get(arch).imagenet_image_size, "num_classes": len(classes),
              "fc_size": cli.default("fc-size"), "resize": "squash"}
    layers = weights.check_finite(weights.read_weights(path), path, ())

    def load(session):
        report = weights.load_pretrained(path, session, skip=(), verbose=False, layers=layers)
        missing = [f"{layer} ({status})" for layer, status, _ in report
                   if status not in ("loaded", "not in graph")]
        if missing:
            raise cli.UsageError(f"{flag} {path} cannot give ImageNet's classes with {arch}: "
                                 f"{', '.join(missing)}; it needs every layer up to fc8 at "
                                 f"{config['image_size']}x{config['image_size']} "
                                 "(convert_weights.py writes one for VGG)")
    return Classifier(config, [name for _, name in classes], load, path)

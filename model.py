"""The model API the programs share, in the TensorFlow CIFAR-10 tutorial's order:

    images, labels, iterator = model.inputs(lambda: input_data.read_cifar10(...))
    tower = model.tower(config, images, labels, is_training=True, weight_decay=5e-4)
    grads = tools.compute_gradients(optimizer, tower.total_loss, ...)  # then average, if towers
    train_op = tools.apply_gradients(optimizer, grads, global_step)
    result = model.run_split(session, iterator, tower)                 # every image once

``config`` is the ``model`` entry a run saves in its config.json (``MODEL_KEYS``): which network
from nets.py, with batch norm or not, at which image size, for how many classes.
"""

import contextlib
import typing

import numpy as np
import tensorflow as tf

import devices
import nets
import tools

tf1 = tf.compat.v1

# What fixes the shapes of the variables; a checkpoint only restores into the same.
MODEL_KEYS = ("arch", "batch_norm", "image_size", "num_classes", "fc_size")
# What a run's config.json had before a key was added, for runs written before it.
MODEL_DEFAULTS = {"fc_size": 4096}


def model_config(args):
    """The ``model`` entry of config.json from parsed flags."""
    return {key: getattr(args, key) for key in MODEL_KEYS}


def inputs(make_dataset, initializable=False):
    """``(images, labels, iterator)`` of the ``tf.data.Dataset`` that ``make_dataset()`` returns,
    built on the CPU with its iterator (TensorFlow keeps an iterator where its dataset is, so
    the dataset itself must be made in the CPU's scope). An initializable iterator (for
    validation and evaluation) restarts the split on each run of ``iterator.initializer``;
    otherwise it runs once through (training repeats its data)."""
    with tf.device(devices.INPUT_DEVICE):
        dataset = make_dataset()
        if initializable:
            iterator = tf1.data.make_initializable_iterator(dataset)
        else:
            iterator = tf1.data.make_one_shot_iterator(dataset)
        images, labels = iterator.get_next()
    return images, labels, iterator


def inference(config, images, is_training=False, dropout_keep_prob=0.5):
    """``(logits, end_points)`` of the configured network; variables are shared between calls."""
    network = nets.get(config["arch"])
    return network.build(images, config["num_classes"], is_training=is_training,
                         batch_norm=config["batch_norm"], dropout_keep_prob=dropout_keep_prob,
                         fc_size=config.get("fc_size", MODEL_DEFAULTS["fc_size"]))


def layer_variables(layers=None):
    """The trainable variables of the named layers (all of them for None)."""
    return [v for v in tf1.trainable_variables()
            if layers is None or v.op.name.split("/")[0] in layers]


class Tower(typing.NamedTuple):
    """What one copy of the network computes on a batch."""
    logits: tf.Tensor
    end_points: dict
    total_loss: tf.Tensor  # cross-entropy + weight decay: what training minimizes
    cross_entropy: tf.Tensor  # mean over the batch
    accuracy: tf.Tensor  # fraction of the batch
    losses: tf.Tensor  # cross-entropy of each image
    predictions: tf.Tensor  # the class with the highest logit, int32
    labels: tf.Tensor
    var_list: list  # the variables that train (and are decayed)


def tower(config, images, labels, is_training=False, weight_decay=0.0, trainable_layers=None,
          dropout_keep_prob=0.5, label_smoothing=0.0, flip_average=False):
    """The network on ``images`` and its loss against ``labels``. Only the variables of
    ``trainable_layers`` (default: all layers) train, and weight decay covers their weights;
    ``label_smoothing`` softens the targets of the total loss (see ``tools.loss``).
    ``flip_average`` (evaluation): each image's class probabilities are the mean of the
    network's on the image and on its mirror image; ``logits`` are their logarithms."""
    logits, end_points = inference(config, images, is_training, dropout_keep_prob)
    if flip_average:
        mirrored, _ = inference(config, tf.reverse(images, axis=[2]), is_training,
                                dropout_keep_prob)
        # log of the mean probability, computed in log space so that it stays finite
        logits = tf.reduce_logsumexp(tf.stack([tf.nn.log_softmax(logits),
                                               tf.nn.log_softmax(mirrored)]), axis=0) \
            - tf.math.log(2.0)
    labels = tf.cast(labels, tf.int32)
    var_list = layer_variables(trainable_layers)
    total_loss, cross_entropy = tools.loss(logits, labels, weight_decay, var_list,
                                           label_smoothing)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return Tower(logits, end_points, total_loss, cross_entropy, tools.accuracy(logits, labels),
                 losses, tf.argmax(logits, axis=-1, output_type=tf.int32), labels, var_list)


def moving_average(decay, global_step, train_op, variables):
    """An exponential moving average of ``variables`` after each run of ``train_op``. Returns
    ``(ema, train_op that also updates it, op copying the variables into it)``; the decay ramps
    up from 0.1 as (1 + step) / (10 + step) until it reaches ``decay``, so short runs average
    what they learned rather than where they started."""
    ema = tf1.train.ExponentialMovingAverage(decay, num_updates=global_step)
    with tf.control_dependencies([train_op]):
        update = ema.apply(variables)
    sync = tf.group([ema.average(v).assign(v) for v in variables])
    return ema, update, sync


@contextlib.contextmanager
def averaged_weights(ema):
    """Inside, networks are built on the moving averages of their variables (``ema``) where
    there is one, on the variables themselves otherwise (e.g. batch-norm statistics)."""
    def read_average(getter, name, *args, **kwargs):  # (TensorFlow passes ``getter=``)
        variable = getter(name, *args, **kwargs)
        average = ema.average(variable)
        return variable if average is None else average
    with tf1.variable_scope(tf1.get_variable_scope(), custom_getter=read_average):
        yield


def has_moving_averages(checkpoint):
    """Whether ``checkpoint`` holds moving averages of its weights (a run with --ema-decay)."""
    return any(name.endswith("/ExponentialMovingAverage")
               for name, _ in tf1.train.list_variables(checkpoint))


def averages_saver():
    """A Saver that restores each trainable variable of the graph from its moving average."""
    return tf1.train.Saver(tf1.train.ExponentialMovingAverage(0.0).variables_to_restore())


class SplitResult(typing.NamedTuple):
    """Every image of a split: its label, the predicted class and its cross-entropy."""
    labels: np.ndarray
    predictions: np.ndarray
    losses: np.ndarray

    @property
    def count(self):
        return len(self.labels)

    @property
    def loss(self):
        return float(self.losses.mean())

    @property
    def accuracy(self):
        return float(np.mean(self.labels == self.predictions))


def run_split(session, iterator, tower):
    """Run ``tower`` over its whole split once (from ``iterator.initializer`` to the end of the
    data) and return a ``SplitResult`` of every image, the last partial batch included."""
    session.run(iterator.initializer)
    fetches = [tower.labels, tower.predictions, tower.losses]
    batches = []
    while True:
        try:
            batches.append(session.run(fetches))
        except tf.errors.OutOfRangeError:
            break
    if not batches:
        return SplitResult(*(np.zeros(0, dtype) for dtype in (np.int32, np.int32, np.float32)))
    return SplitResult(*(np.concatenate(column) for column in zip(*batches)))

"""What training shows in TensorBoard beyond its curves: the first convolution's filters as one
image, the weights and gradients of every layer as histograms, the maps a few validation images
make at a few layers, and the run's HParams.

    summaries.filters(network)                         # IMAGES: filters/<first conv layer>
    summaries.histograms(grads_and_vars, network)      # HISTOGRAMS: weights/<layer>, gradients/
    summaries.activation_summary(step, {layer: maps})  # IMAGES: activations/<layer>
    summaries.write_hparams(log_dir, hparams)          # HPARAMS: the run's recipe

The first two are graph summaries, written with the others every --summary-every steps; the
activations are made by the validation hook from a batch it fetches.
"""

import io
import time

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

ACTIVATION_IMAGES = 3  # validation images whose maps are shown (the first of the val split)
ACTIVATION_CHANNELS = 16  # maps shown per image and layer (its first channels)
TILE = 32  # the least side a map or filter is drawn at, in pixels


def _tag(family, name):
    """A summary op named ``family/name`` whose tag is exactly that (outside any name scope)."""
    return f"{family}/{name}"


def first_conv_weights(network):
    """The kernel of the network's first convolution, [k, k, in, out], or None."""
    layer = network.conv_layers[0]
    found = [v for v in tf1.global_variables() if v.op.name.split("/")[0] == layer
             and len(v.shape) == 4]
    return found[0] if found else None


def filter_grid(kernel):
    """[k, k, in, out] -> one float32 image [1, H, W, 3] in [0, 1]: each filter a tile (its
    first three input channels as RGB, or its mean over them in grey), each scaled by its own
    range, 1-pixel gaps, as square a grid as the count allows."""
    kernel = tf.cast(kernel, tf.float32)
    k, channels, count = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    tiles = tf.transpose(kernel[:, :, :3] if channels >= 3 else tf.tile(
        tf.reduce_mean(kernel, axis=2, keepdims=True), [1, 1, 3, 1]), [3, 0, 1, 2])
    low = tf.reduce_min(tiles, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(tiles, axis=[1, 2, 3], keepdims=True)
    tiles = tf.math.divide_no_nan(tiles - low, high - low)
    scale = max(1, TILE // k)
    tiles = tf.repeat(tf.repeat(tiles, scale, axis=1), scale, axis=2)
    return _tile(tiles, count)


def _tile(tiles, count):
    """[count, h, w, 3] -> [1, rows * (h + 1) - 1, columns * (w + 1) - 1, 3]."""
    columns = int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    tiles = tf.pad(tiles, [[0, rows * columns - count], [0, 1], [0, 1], [0, 0]],
                   constant_values=1.0)
    height, width = tiles.shape[1], tiles.shape[2]
    grid = tf.reshape(tf.transpose(tf.reshape(tiles, [rows, columns, height, width, 3]),
                                   [0, 2, 1, 3, 4]), [rows * height, columns * width, 3])
    return grid[None, :-1, :-1]


def filters(network):
    """The image summary ``filters/<first conv layer>``; None when the graph has no such
    kernel (a head trained on codes)."""
    kernel = first_conv_weights(network)
    if kernel is None:
        return None
    with tf1.name_scope(None):
        return tf1.summary.image(_tag("filters", network.conv_layers[0]), filter_grid(kernel),
                                 max_outputs=1)


HISTOGRAM_VALUES = 2 ** 16  # at most this many values of a tensor go into its histogram


def sample(tensor):
    """At most HISTOGRAM_VALUES values of ``tensor``, at an even stride through it: its
    histogram's shape for a fraction of the cost (TensorFlow's histogram op takes about a
    second for VGG16's 15 million weights on a CPU core, several training steps)."""
    flat = tf.reshape(tensor, [-1])
    stride = -(-int(np.prod(tensor.shape)) // HISTOGRAM_VALUES)
    return flat[::stride] if stride > 1 else flat


def histograms(grads_and_vars):
    """Histogram summaries ``weights/<layer>`` (each trained layer's weights, the biases and
    batch-norm parameters left out) and ``gradients/<layer>`` (their gradients), each of at
    most HISTOGRAM_VALUES values (``sample``)."""
    made = []
    with tf1.name_scope(None):
        for grad, variable in grads_and_vars:
            layer, leaf = variable.op.name.split("/")[0], variable.op.name.split("/")[-1]
            if leaf != "weights" or grad is None:
                continue
            made.append(tf1.summary.histogram(_tag("weights", layer), sample(variable)))
            made.append(tf1.summary.histogram(_tag("gradients", layer), sample(grad)))
    return made


def activation_layers(network):
    """A few convolutional layers whose maps are shown: the first, the middle and the last."""
    layers = network.conv_layers
    return list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]]))


def activation_image(maps):
    """[images, h, w, channels] float -> uint8 [H, W] (grey): a row per image, its first
    ACTIVATION_CHANNELS maps side by side, each scaled by its own maximum (ReLU maps are
    >= 0), drawn at least TILE pixels on a side, with 1-pixel gaps."""
    maps = np.asarray(maps, np.float32)[:ACTIVATION_IMAGES, :, :, :ACTIVATION_CHANNELS]
    count, height, width, channels = maps.shape
    peak = maps.max(axis=(1, 2), keepdims=True)
    maps = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
    scale = max(1, TILE // min(height, width))
    maps = maps.repeat(scale, axis=1).repeat(scale, axis=2)
    height, width = height * scale, width * scale
    image = np.ones([count * (height + 1) - 1, channels * (width + 1) - 1], np.float32)
    for i in range(count):
        for c in range(channels):
            image[i * (height + 1):i * (height + 1) + height,
                  c * (width + 1):c * (width + 1) + width] = maps[i, :, :, c]
    return (image * 255).round().astype(np.uint8)


def png_summary(tag, image):
    """A Summary of one uint8 image ([H, W] grey or [H, W, 3]) as a PNG, for a FileWriter."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    height, width = image.shape[:2]
    return tf1.Summary(value=[tf1.Summary.Value(tag=tag, image=tf1.Summary.Image(
        height=height, width=width, colorspace=1 if image.ndim == 2 else 3,
        encoded_image_string=buffer.getvalue()))])


def activation_summary(maps_by_layer):
    """One Summary of the images ``activations/<layer>`` of ``{layer: maps}``."""
    summary = tf1.Summary()
    for layer, maps in maps_by_layer.items():
        summary.value.extend(png_summary(_tag("activations", layer),
                                         activation_image(maps)).value)
    return summary


# The flags that make a run's recipe: what the HParams tab compares runs by.
HPARAMS = ("arch", "batch_norm", "fc_size", "image_size", "dataset", "pretrained", "trainable",
           "batch_size", "learning_rate", "lr_schedule", "lr_steps", "plateau_patience",
           "plateau_factor", "plateau_decays", "warmup_steps", "momentum",
           "nesterov", "weight_decay", "label_smoothing", "dropout_keep_prob", "ema_decay",
           "clip_norm", "max_steps", "no_augment", "augment", "scale_jitter", "resize",
           "precision", "num_gpus", "codes", "head", "seed")


def hparams_of(cfg):
    """``{flag: value}`` of the recipe values a run's configuration ``cfg`` has, as HParams
    takes them (bool, number or string; None as the string "none")."""
    values = {}
    for name in HPARAMS:
        if not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        values[name] = value if isinstance(value, (bool, int, float, str)) else \
            "none" if value is None else str(value)
    return values


def write_hparams(log_dir, hparams, start_time=None):
    """TensorBoard's HParams session-start record of the run in ``log_dir``, in an events file
    of its own there: the tab's metrics are the scalars of the run's folders (val/accuracy,
    val/loss, train/loss ...)."""
    from tensorboard.plugins.hparams import summary as hparams_summary

    writer = tf1.summary.FileWriter(log_dir, filename_suffix=".hparams")
    try:
        writer.add_summary(hparams_summary.session_start_pb(
            hparams, start_time_secs=start_time or time.time()).SerializeToString())
    finally:
        writer.close()

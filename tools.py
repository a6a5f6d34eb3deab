"""Shared helpers for the VGG graph: layers, loss, accuracy, optimizer, preprocessing and weights.

Everything here is TensorFlow 1.x graph style through ``tf.compat.v1``: variables come from
``get_variable`` inside the caller's ``variable_scope``, so a layer called ``conv1_1`` owns
``conv1_1/weights`` and ``conv1_1/biases``, exactly the names of the public ``vgg16.npy``.

Weights files (``read_weights``) are read without ever running code from the file: the pickle
inside is unpickled with an allow-list of NumPy's array-rebuilding callables, nothing else.
"""

import argparse
import pickle
import sys

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

# The public VGG weights expect BGR pixels in 0..255 minus the ImageNet mean, in this order.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)

# Weights of every conv and fc layer are added here when they are made; the loss applies weight
# decay to this collection (and only to the trainable part of it).
WEIGHT_DECAY_COLLECTION = "vgg_weight_decay"

BATCH_NORM_DECAY = 0.99
BATCH_NORM_EPSILON = 1e-3


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------

def _weights(shape, fan_in, input_std=1.0):
    """He-normal weights for a ReLU layer (divided by ``input_std`` for inputs that are not of
    unit scale), registered for weight decay."""
    stddev = np.sqrt(2.0 / fan_in) / input_std / 0.87962566  # truncation shrinks the spread
    init = tf1.truncated_normal_initializer(stddev=stddev)
    weights = tf1.get_variable("weights", shape, tf.float32, initializer=init)
    if not any(w is weights for w in tf1.get_collection(WEIGHT_DECAY_COLLECTION)):
        tf1.add_to_collection(WEIGHT_DECAY_COLLECTION, weights)
    return weights


def _biases(size):
    return tf1.get_variable("biases", [size], tf.float32, initializer=tf1.zeros_initializer())


def batch_norm(x, is_training):
    """Batch normalization over the channels of an NHWC tensor, in the current variable scope.

    Training normalizes with the batch statistics and puts the moving-average updates into
    ``UPDATE_OPS`` (``minimize`` below runs them); evaluation uses the moving averages.
    """
    channels = x.shape[-1]
    with tf1.variable_scope("batch_norm"):
        gamma = tf1.get_variable("gamma", [channels], initializer=tf1.ones_initializer())
        beta = tf1.get_variable("beta", [channels], initializer=tf1.zeros_initializer())
        moving_mean = tf1.get_variable("moving_mean", [channels], trainable=False,
                                       initializer=tf1.zeros_initializer())
        moving_var = tf1.get_variable("moving_variance", [channels], trainable=False,
                                      initializer=tf1.ones_initializer())
    if not is_training:
        y, _, _ = tf1.nn.fused_batch_norm(x, gamma, beta, moving_mean, moving_var,
                                          epsilon=BATCH_NORM_EPSILON, is_training=False)
        return y
    # With exponential_avg_factor the fused kernel returns the updated running averages.
    y, new_mean, new_var = tf1.nn.fused_batch_norm(
        x, gamma, beta, moving_mean, moving_var, epsilon=BATCH_NORM_EPSILON, is_training=True,
        exponential_avg_factor=1.0 - BATCH_NORM_DECAY)
    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, moving_mean.assign(new_mean))
    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, moving_var.assign(new_var))
    return y


def conv(name, x, out_channels, is_training=False, use_batch_norm=False, kernel_size=3,
         input_std=1.0):
    """3x3 stride-1 'SAME' convolution + bias (+ batch norm) + ReLU, variables under ``name``.
    ``input_std``: the typical size of the inputs, which the initial weights are scaled by."""
    in_channels = int(x.shape[-1])
    with tf1.variable_scope(name):
        weights = _weights([kernel_size, kernel_size, in_channels, out_channels],
                           fan_in=kernel_size * kernel_size * in_channels, input_std=input_std)
        biases = _biases(out_channels)
        y = tf.nn.bias_add(tf.nn.conv2d(x, weights, strides=1, padding="SAME"), biases)
        if use_batch_norm:
            y = batch_norm(y, is_training)
        return tf.nn.relu(y)


def max_pool(name, x):
    """2x2 stride-2 max pooling, halving height and width."""
    return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID", name=name)


def fc(name, x, out_size, relu=True):
    """Fully connected layer. A 4-D input is flattened in height, width, channel order, which is
    the order of the public fc6 weights (7x7x512 -> 25088). ``relu=False`` gives plain logits."""
    if x.shape.ndims == 4:
        x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
    in_size = int(x.shape[-1])
    with tf1.variable_scope(name):
        weights = _weights([in_size, out_size], fan_in=in_size if relu else 2 * in_size)
        biases = _biases(out_size)
        y = tf.nn.bias_add(tf.matmul(x, weights), biases)
        return tf.nn.relu(y) if relu else y


def dropout(x, keep_prob, is_training):
    """Dropout while training only; the identity otherwise."""
    if not is_training or keep_prob >= 1.0:
        return x
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def vgg_preprocess(images):
    """float32 RGB images in 0..255, channels last -> BGR minus the ImageNet mean."""
    return tf.reverse(images, axis=[-1]) - tf.constant(VGG_MEAN_BGR, tf.float32)


def vgg_unprocess(images):
    """The inverse of ``vgg_preprocess``: back to RGB 0..255 (for image summaries)."""
    return tf.reverse(images + tf.constant(VGG_MEAN_BGR, tf.float32), axis=[-1])


# ----------------------------------------------------------------------------------------------
# Loss, accuracy, optimizer
# ----------------------------------------------------------------------------------------------

def loss(logits, labels, weight_decay=0.0, var_list=None):
    """Mean softmax cross-entropy plus ``weight_decay`` * sum of squared weights / 2.

    Returns ``(total_loss, cross_entropy)``. Weight decay covers the conv and fc weights that are
    in ``var_list`` (default: all trainable variables), so frozen layers add nothing.
    """
    cross_entropy = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if not weight_decay:
        return cross_entropy, cross_entropy
    trainable = {id(v) for v in (var_list if var_list is not None else tf1.trainable_variables())}
    decayed = [w for w in tf1.get_collection(WEIGHT_DECAY_COLLECTION) if id(w) in trainable]
    if not decayed:
        return cross_entropy, cross_entropy
    penalty = weight_decay * tf.add_n([tf.nn.l2_loss(w) for w in decayed])
    return cross_entropy + penalty, cross_entropy


def accuracy(logits, labels):
    """Fraction of the batch whose highest logit is the label."""
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
    return tf.reduce_mean(tf.cast(correct, tf.float32))


def batch_sums(logits, labels):
    """``(sum of cross-entropy, number correct, number of examples)`` of a batch, for exact
    averages over a whole split whose last batch is smaller."""
    labels = tf.cast(labels, tf.int32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return (tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.int64)),
            tf.shape(labels, out_type=tf.int64)[0])


NAN_GRADIENTS = "the gradients are not finite"


def minimize(total_loss, learning_rate, global_step, momentum=0.9, var_list=None,
             clip_norm=None, precision="fp32"):
    """Momentum SGD step on ``var_list`` (default: all trainable variables) that also runs the
    batch-norm moving-average updates. ``clip_norm`` caps the global norm of the gradients;
    ``precision="fp16"`` adds dynamic loss scaling for the float16 graph rewrite."""
    optimizer = tf1.train.MomentumOptimizer(learning_rate, momentum)
    if precision == "fp16":
        optimizer = tf1.mixed_precision.enable_mixed_precision_graph_rewrite(optimizer)
    pairs = optimizer.compute_gradients(total_loss, var_list=var_list)
    grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
    checks = []
    if precision != "fp16":  # (fp16's loss scaling skips steps with infinite gradients itself)
        # A step whose gradients are not finite fails here instead of writing NaN weights.
        checks.append(tf.debugging.check_numerics(tf.linalg.global_norm(grads), NAN_GRADIENTS))
    if clip_norm:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm)
    with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS) + checks):
        return optimizer.apply_gradients(zip(grads, variables), global_step=global_step)


# ----------------------------------------------------------------------------------------------
# Sessions: precision and XLA
# ----------------------------------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16", "fp16")


def cpu_has_bf16():
    """Whether the CPU computes in bfloat16 natively (AVX512_BF16 or AMX), read on Linux."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def session_config(precision="fp32", xla=False):
    """A ConfigProto for ``precision``: ``bf16`` turns on oneDNN's bfloat16 mixed-precision
    rewrite (CPUs with bfloat16 instructions), ``fp16`` expects a GPU (the float16 rewrite is
    enabled with loss scaling by ``minimize``). Raises UsageError where the machine cannot."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    gpus = tf.config.list_physical_devices("GPU")
    if precision == "bf16" and (gpus or not cpu_has_bf16()):
        raise UsageError("--precision bf16 runs on CPUs with AVX512_BF16 or AMX "
                         + ("(this machine has a GPU: use --precision fp16)" if gpus else
                            "and this CPU has neither: use --precision fp32"))
    if precision == "fp16" and not gpus:
        raise UsageError("--precision fp16 needs a GPU and TensorFlow sees none: use "
                         f"--precision {'bf16' if cpu_has_bf16() else 'fp32'}")
    config = tf1.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    from tensorflow.core.protobuf import rewriter_config_pb2
    rewrites = config.graph_options.rewrite_options
    if precision == "bf16":
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "fp16":
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf1.OptimizerOptions.ON_1
    return config


# ----------------------------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------------------------

class WeightsFileError(ValueError):
    """A weights file that cannot be used; the message names the file and what to do."""


def _numpy_callables():
    """The only callables a weights pickle may use, under every name NumPy has pickled them."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray, numeric
    import _codecs
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               # Python 3 bytes under pickle protocol 2.
               ("_codecs", "encode"): _codecs.encode}
    for module in ("numpy.core", "numpy._core"):
        allowed[(module + ".multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(module + ".numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


_ALLOWED = _numpy_callables()


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it asks for {module}.{name}, which is not a NumPy array") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it uses persistent ids")


def _as_pair(layer, entry, path):
    if isinstance(entry, dict):
        entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
        if set(entry) != {"weights", "biases"}:
            raise WeightsFileError(f"{path}: layer {layer!r} has keys {sorted(entry)}, "
                                   "expected 'weights' and 'biases'")
        entry = [entry["weights"], entry["biases"]]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(
            isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in entry):
        raise WeightsFileError(f"{path}: layer {layer!r} is not a [weights, biases] pair of "
                               "float arrays; this is not a VGG weights file")
    weights, biases = (np.asarray(a, np.float32) for a in entry)
    if biases.ndim != 1 or weights.shape[-1] != biases.shape[0]:
        raise WeightsFileError(f"{path}: layer {layer!r} has weights {weights.shape} and biases "
                               f"{biases.shape}, which do not belong together")
    return weights, biases


def read_weights(path):
    """Read a VGG weights ``.npy`` into ``{layer: (weights, biases)}`` of float32 arrays.

    Accepts the public Python 2 file (a 0-d object array holding ``{layer: [weights, biases]}``,
    pickle protocol 2, ``str`` keys), the same written by Python 3's ``np.save``, and entries that
    are ``{"weights": ..., "biases": ...}``. The pickle may only rebuild NumPy arrays: a file that
    asks for anything else is refused before any of it runs. Raises ``WeightsFileError``.
    """
    try:
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            except ValueError as e:
                raise WeightsFileError(f"{path}: not a .npy file ({e})") from None
            if dtype != np.dtype(object) or shape not in ((), (1,)):
                raise WeightsFileError(f"{path}: holds a {dtype} array of shape {shape}, not a "
                                       "dict of layers; this is not a VGG weights file")
            try:
                array = _ArraysOnlyUnpickler(f, encoding="latin1").load()
            except pickle.UnpicklingError as e:
                raise WeightsFileError(f"{path}: refused: {e}. A weights file holds only NumPy "
                                       "arrays; nothing from it was run") from None
            except (EOFError, ValueError, TypeError, AttributeError, IndexError,
                    KeyError) as e:
                raise WeightsFileError(f"{path}: truncated or corrupt ({type(e).__name__}: {e}); "
                                       "download or convert it again") from None
    except OSError as e:
        raise WeightsFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    content = array.item() if isinstance(array, np.ndarray) and array.size == 1 else array
    if not isinstance(content, dict) or not content:
        raise WeightsFileError(f"{path}: holds {type(content).__name__}, not a dict of layers; "
                               "this is not a VGG weights file")
    layers = {}
    for layer, entry in content.items():
        layer = layer.decode("latin1") if isinstance(layer, bytes) else str(layer)
        layers[layer] = _as_pair(layer, entry, path)
    return layers


def graph_layers(graph=None):
    """``{layer: (weights_variable, biases_variable)}`` for the VGG layers in the graph."""
    graph = graph or tf1.get_default_graph()
    found = {}
    for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES):
        scope, _, leaf = v.op.name.rpartition("/")
        if leaf in ("weights", "biases") and "/" not in scope:
            found.setdefault(scope, {})[leaf] = v
    return {layer: (vs["weights"], vs["biases"]) for layer, vs in found.items()
            if len(vs) == 2}


def _layer_order(name):
    """conv1_1 < conv1_2 < ... < conv5_3 < fc6 < fc7 < fc8 < anything else."""
    if name.startswith("conv"):
        block, _, index = name[4:].partition("_")
        if block.isdigit() and index.isdigit():
            return (0, int(block), int(index), name)
    if name.startswith("fc") and name[2:].isdigit():
        return (1, int(name[2:]), 0, name)
    return (2, 0, 0, name)


def load_pretrained(path, session, skip=("fc8",), strict=False, verbose=True):
    """Copy a weights file into the VGG variables of the session's graph.

    The values are fed into the variables' own initializers, so no constant is added to the graph
    (and a finalized graph works). Returns ``[(layer, status, detail)]``, one per layer of the file
    or the graph, with status ``loaded``, ``skipped``, ``shape mismatch``, ``not in file`` or
    ``not in graph``, and prints one line each unless ``verbose`` is False. A shape mismatch
    leaves that layer at its initial value; with ``strict=True`` it raises ``WeightsFileError``.
    """
    weights = read_weights(path)
    variables = graph_layers(session.graph)
    skip = set(skip or ())
    report = []
    for layer in sorted(set(weights) | set(variables), key=_layer_order):
        if layer in skip:
            report.append((layer, "skipped", "asked"))
        elif layer not in variables:
            report.append((layer, "not in graph", ""))
        elif layer not in weights:
            report.append((layer, "not in file", "left at its initial value"))
        else:
            pairs = list(zip(variables[layer], weights[layer]))
            shapes = [(tuple(v.shape.as_list()), a.shape) for v, a in pairs]
            if any(g != f for g, f in shapes):
                detail = ", ".join(f"{n} file {f} vs graph {g}"
                                   for n, (g, f) in zip(("weights", "biases"), shapes) if g != f)
                report.append((layer, "shape mismatch", detail + "; left at its initial value"))
            else:
                for variable, value in pairs:
                    session.run(variable.initializer, {variable.initializer.inputs[1]: value})
                report.append((layer, "loaded", f"weights {shapes[0][1]}"))
    if verbose:
        print(f"Pretrained weights from {path}:")
        for layer, status, detail in report:
            print(f"  {layer:8s} {status}{': ' + detail if detail else ''}")
    mismatched = [layer for layer, status, _ in report if status == "shape mismatch"]
    if strict and mismatched:
        raise WeightsFileError(f"{path}: shapes do not fit the graph for {', '.join(mismatched)} "
                               "(pass them in skip, or use a matching image size)")
    return report


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


# ----------------------------------------------------------------------------------------------
# Command lines
# ----------------------------------------------------------------------------------------------

class UsageError(Exception):
    """Bad input from the user: the programs print the message on one line and exit with 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (program, flag, what is wrong) and exit code 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

"""The layer helpers the networks are built from, their preprocessing, and the loss, accuracy and
optimizer (gradients computed and applied in two steps, so towers can average in between).

Everything is TensorFlow 1.x graph style through ``tf.compat.v1``: variables come from
``get_variable`` inside the caller's ``variable_scope``, so a layer called ``conv1_1`` owns
``conv1_1/weights`` and ``conv1_1/biases``, exactly the names of the public ``vgg16.npy``.
"""

import contextlib

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

# The public VGG weights expect BGR pixels in 0..255 minus the ImageNet mean, in this order.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
# Standard deviation of VGG-preprocessed pixels (0..255 minus a mean): the first convolution's
# initial weights are scaled down by it, so that a network trained from scratch starts with
# unit-scale activations.
VGG_INPUT_STD = 64.0

# The weights reader and loader live in weights.py (which this module does not import). Scripts
# written when the README called them tools.read_weights and tools.load_pretrained still work.
_MOVED_TO_WEIGHTS = ("WeightsFileError", "load_pretrained", "read_weights")


def __getattr__(name):
    if name in _MOVED_TO_WEIGHTS:
        import weights
        return getattr(weights, name)
    raise AttributeError(f"module 'tools' has no attribute {name!r}")

# Weights of every conv and fc layer are added here when they are made; the loss applies weight
# decay to this collection (and only to the trainable part of it).
WEIGHT_DECAY_COLLECTION = "vgg_weight_decay"

BATCH_NORM_DECAY = 0.99
BATCH_NORM_EPSILON = 1e-3
# Inside ``measuring_statistics()``, batch norm in training mode records each layer's
# ``(moving_mean, moving_variance, batch_mean, batch_variance)`` here instead of updating its
# moving averages (``training.statistics`` re-estimates them from these).
BATCH_NORM_STATISTICS = "vgg_batch_norm_statistics"
_measuring = []


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------

def _weights(shape, fan_in, input_std=1.0):
    """He-normal weights for a ReLU layer (divided by ``input_std`` for inputs that are not of
    unit scale), registered for weight decay."""
    stddev = np.sqrt(2.0 / fan_in) / input_std / 0.87962566  # truncation shrinks the spread
    init = tf1.truncated_normal_initializer(stddev=stddev)
    weights = tf1.get_variable("weights", shape, tf.float32, initializer=init)
    # (a moving average read in its place, see model.averaged_weights, is not decayed)
    if weights.trainable and not any(w is weights
                                     for w in tf1.get_collection(WEIGHT_DECAY_COLLECTION)):
        tf1.add_to_collection(WEIGHT_DECAY_COLLECTION, weights)
    return weights


def _biases(size):
    return tf1.get_variable("biases", [size], tf.float32, initializer=tf1.zeros_initializer())


def batch_norm(x, is_training):
    """Batch normalization over the channels of an NHWC tensor, in the current variable scope.

    Training normalizes with the batch statistics and puts the moving-average updates into
    ``UPDATE_OPS`` (``apply_gradients`` below runs them); evaluation uses the moving averages.
    Inside ``measuring_statistics()`` training mode normalizes the same way but adds the batch's
    mean and variance to BATCH_NORM_STATISTICS and updates nothing.
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
    if _measuring:  # (a factor of 1: the fused kernel returns the batch's own statistics)
        y, mean, variance = tf1.nn.fused_batch_norm(
            x, gamma, beta, moving_mean, moving_var, epsilon=BATCH_NORM_EPSILON,
            is_training=True, exponential_avg_factor=1.0)
        tf1.add_to_collection(BATCH_NORM_STATISTICS, (moving_mean, moving_var, mean, variance))
        return y
    # With exponential_avg_factor the fused kernel returns the updated running averages.
    y, new_mean, new_var = tf1.nn.fused_batch_norm(
        x, gamma, beta, moving_mean, moving_var, epsilon=BATCH_NORM_EPSILON, is_training=True,
        exponential_avg_factor=1.0 - BATCH_NORM_DECAY)
    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, moving_mean.assign(new_mean))
    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, moving_var.assign(new_var))
    return y


@contextlib.contextmanager
def measuring_statistics():
    """Inside, networks built in training mode measure their batch-norm statistics (see
    ``batch_norm``) instead of updating the moving averages."""
    _measuring.append(True)
    try:
        yield
    finally:
        _measuring.pop()


def conv(name, x, out_channels, is_training=False, use_batch_norm=False, kernel_size=3,
         input_std=1.0, stride=1, padding="SAME", groups=1):
    """Convolution + bias (+ batch norm) + ReLU, variables under ``name``; by default 3x3,
    stride 1, 'SAME' (VGG's). ``input_std``: the typical size of the inputs, which the initial
    weights are scaled by. ``groups`` > 1 splits the input channels and the kernel's output
    channels into that many equal parts, convolves each input part with its kernel part and
    concatenates the results (AlexNet's two-GPU layers): the weights are
    [kernel, kernel, in_channels / groups, out_channels], as in the public AlexNet file."""
    in_channels = int(x.shape[-1])
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: {in_channels} input and {out_channels} output channels do "
                         f"not split into {groups} groups")
    group_in = in_channels // groups
    with tf1.variable_scope(name):
        weights = _weights([kernel_size, kernel_size, group_in, out_channels],
                           fan_in=kernel_size * kernel_size * group_in, input_std=input_std)
        biases = _biases(out_channels)
        if groups == 1:
            y = tf.nn.conv2d(x, weights, strides=stride, padding=padding)
        else:
            y = tf.concat([tf.nn.conv2d(part, kernel, strides=stride, padding=padding)
                           for part, kernel in zip(tf.split(x, groups, axis=-1),
                                                   tf.split(weights, groups, axis=-1))],
                          axis=-1)
        y = tf.nn.bias_add(y, biases)
        if use_batch_norm:
            y = batch_norm(y, is_training)
        return tf.nn.relu(y)


def max_pool(name, x, kernel_size=2, stride=2):
    """Max pooling with 'VALID' windows; by default 2x2 stride 2, halving height and width."""
    return tf.nn.max_pool2d(x, ksize=kernel_size, strides=stride, padding="VALID", name=name)


def fc(name, x, out_size, relu=True, window=None):
    """Fully connected layer. A 4-D input is flattened in height, width, channel order, which is
    the order of the public fc6 weights (7x7x512 -> 25088). ``relu=False`` gives plain logits.
    ``window`` (dense application, an int): the same layer, the same variables, as a
    ``window`` x ``window`` convolution ('VALID', stride 1) over a 4-D input of any height and
    width; its weights [window * window * C, out] reshaped to the kernel [window, window, C,
    out] (the flattening order), so at each position it computes what the layer computes on
    the window there."""
    if window is not None:
        channels = int(x.shape[-1])
        in_size = window * window * channels
    else:
        if x.shape.ndims == 4:
            x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
        in_size = int(x.shape[-1])
    with tf1.variable_scope(name):
        weights = _weights([in_size, out_size], fan_in=in_size if relu else 2 * in_size)
        biases = _biases(out_size)
        if window is None:
            y = tf.nn.bias_add(tf.matmul(x, weights), biases)
        else:
            kernel = tf.reshape(weights, [window, window, channels, out_size])
            y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="VALID"), biases)
        return tf.nn.relu(y) if relu else y


def fc_head(net, end_points, num_classes, fc_size, is_training, dropout_keep_prob, until=None,
            dense=None):
    """The fully connected top of VGG and AlexNet on ``net``: fc6 and fc7, ``fc_size`` wide
    (ReLU, then dropout while training; none for 0), and fc8, the logits. Returns ``(logits,
    end_points)`` as the networks' ``build`` does: the features fc8 would read for no
    ``num_classes``, or a layer's output when it is ``until``. ``dense`` (an int: the side of
    ``net`` at the size the network was trained at) applies the layers as convolutions (the
    first ``dense`` x ``dense``, the others 1x1, see ``fc``) over a ``net`` of any size: the
    logits are then a score map [B, h, w, classes]."""
    window = dense
    for name in ("fc6", "fc7") if fc_size else ():
        net = fc(name, net, fc_size, window=window)
        window = 1 if dense else None
        end_points[name] = net
        if name == until:
            return net, end_points
        net = dropout(net, dropout_keep_prob, is_training)
    if not num_classes:
        return net, end_points
    logits = fc("fc8", net, num_classes, relu=False, window=window)
    end_points["logits"] = logits
    return logits, end_points


def dropout(x, keep_prob, is_training):
    """Dropout while training only; the identity otherwise."""
    if not is_training or keep_prob >= 1.0:
        return x
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def vgg_preprocess(images):
    """RGB images in 0..255, channels last (float32, or uint8) -> float32 BGR minus the ImageNet
    mean. The channels are reversed before the cast, so that in an int8 TFLite model the
    reversal stays on the uint8 input: between int8 tensors the converter gives REVERSE_V2 an
    output scale other than its input's, which its kernel does not apply (issue 41)."""
    bgr = tf.cast(tf.reverse(images, axis=[-1]), tf.float32)
    return bgr - tf.constant(VGG_MEAN_BGR, tf.float32)


def vgg_unprocess(images):
    """The inverse of ``vgg_preprocess``: back to RGB 0..255 (for image summaries)."""
    return tf.reverse(images + tf.constant(VGG_MEAN_BGR, tf.float32), axis=[-1])


# ----------------------------------------------------------------------------------------------
# Loss, accuracy, optimizer
# ----------------------------------------------------------------------------------------------

def loss(logits, labels, weight_decay=0.0, var_list=None, label_smoothing=0.0,
         class_weights=None):
    """Mean softmax cross-entropy plus ``weight_decay`` * sum of squared weights / 2.

    Returns ``(total_loss, cross_entropy)``. Weight decay covers the conv and fc weights that are
    in ``var_list`` (default: all trainable variables), so frozen layers add nothing.
    ``label_smoothing`` e makes the total loss's targets 1 - e + e/K for the label and e/K for
    each of the other K - 1 classes; ``cross_entropy`` stays the plain one, for reporting.
    ``class_weights`` ([K] numbers): each image's term of the total loss is multiplied by its
    class's weight before the mean over the batch (Keras's ``class_weight``).
    """
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    cross_entropy = tf.reduce_mean(losses)
    if label_smoothing:
        num_classes = int(logits.shape[-1])
        targets = (tf.one_hot(labels, num_classes) * (1.0 - label_smoothing)
                   + label_smoothing / num_classes)
        losses = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    if class_weights is not None:
        losses = losses * tf.gather(tf.constant(class_weights, losses.dtype), labels)
    objective = tf.reduce_mean(losses)
    if not weight_decay:
        return objective, cross_entropy
    trainable = {id(v) for v in (var_list if var_list is not None else tf1.trainable_variables())}
    decayed = [w for w in tf1.get_collection(WEIGHT_DECAY_COLLECTION) if id(w) in trainable]
    if not decayed:
        return objective, cross_entropy
    penalty = weight_decay * tf.add_n([tf.nn.l2_loss(w) for w in decayed])
    return objective + penalty, cross_entropy


def accuracy(logits, labels):
    """Fraction of the batch whose highest logit is the label."""
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32))
    return tf.reduce_mean(tf.cast(correct, tf.float32))


NAN_GRADIENTS = "the gradients are not finite"


def make_optimizer(learning_rate, momentum=0.9, precision="fp32", nesterov=False):
    """Momentum SGD (Nesterov's variant with ``nesterov``); ``precision="fp16"`` wraps it in
    dynamic loss scaling for the float16 graph rewrite."""
    optimizer = tf1.train.MomentumOptimizer(learning_rate, momentum, use_nesterov=nesterov)
    if precision == "fp16":
        optimizer = tf1.mixed_precision.enable_mixed_precision_graph_rewrite(optimizer)
    return optimizer


def compute_gradients(optimizer, total_loss, var_list=None, clip_norm=None, precision="fp32"):
    """Step one of two: ``[(gradient, variable)]`` of ``total_loss`` for ``var_list`` (default:
    all trainable variables), with their global norm capped at ``clip_norm``. Evaluating them
    fails with ``NAN_GRADIENTS`` when they are not finite, so a bad step never reaches
    ``apply_gradients`` (under fp16 the loss scaling skips such steps itself). Several towers'
    gradients can be averaged between the two steps."""
    return check_and_clip(optimizer.compute_gradients(total_loss, var_list=var_list),
                          clip_norm, precision)


def check_and_clip(pairs, clip_norm=None, precision="fp32"):
    """``[(gradient, variable)]`` with the gradients' global norm capped at ``clip_norm``,
    failing with ``NAN_GRADIENTS`` when evaluated on non-finite ones (see
    ``compute_gradients``); for gradients averaged over towers first."""
    grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
    if precision != "fp16":
        norm = tf.debugging.check_numerics(tf.linalg.global_norm(grads), NAN_GRADIENTS)
        if clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
        else:
            with tf.control_dependencies([norm]):
                grads = [g if g is None else tf.identity(g) for g in grads]
    elif clip_norm:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm)
    return list(zip(grads, variables))


def apply_gradients(optimizer, grads_and_vars, global_step, update_ops=None):
    """Step two of two: one update of the variables and of ``global_step``, after the batch-norm
    moving averages in ``update_ops`` (default: all of ``UPDATE_OPS``; with towers, one
    tower's, so the averages move once a step)."""
    if update_ops is None:
        update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        return optimizer.apply_gradients(grads_and_vars, global_step=global_step)

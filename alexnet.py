"""AlexNet, the Caffe reference model (the network of the public ``bvlc_alexnet.npy``), as a
TensorFlow 1.x graph built from the helpers in tools.py.

Five convolutions and three fully connected layers, named like the keys of the public file
(``conv1`` ... ``conv5``, ``fc6``, ``fc7``, ``fc8``), so ``weights.load_pretrained`` maps it onto
the graph with no translation table. conv2, conv4 and conv5 are grouped in two (the two GPUs of
the original): each half of the output channels sees one half of the input channels. conv1 and
conv2 are followed by local response normalization, then a 3x3 stride-2 max pool. nets.py
registers it as ``alexnet``.

    logits, end_points = alexnet.build(images, num_classes=10, is_training=True)

Images are VGG-preprocessed (BGR minus the ImageNet mean, see ``tools.vgg_preprocess``), NHWC,
227x227 for the ImageNet weights (any side of at least ``MIN_SIDE`` builds).
"""

import tensorflow as tf

import tools

tf1 = tf.compat.v1

# (layer, kernel size, output channels, stride, padding, groups)
CONVS = (("conv1", 11, 96, 4, "VALID", 1),
         ("conv2", 5, 256, 1, "SAME", 2),
         ("conv3", 3, 384, 1, "SAME", 1),
         ("conv4", 3, 384, 1, "SAME", 2),
         ("conv5", 3, 256, 1, "SAME", 2))
# What follows a convolution before the next one: local response normalization, max pooling.
AFTER = {"conv1": ("lrn1", "pool1"), "conv2": ("lrn2", "pool2"), "conv5": ("pool5",)}
POOL_SIZE, POOL_STRIDE = 3, 2  # overlapping pools
# Local response normalization across 5 channels, with the Caffe model's alpha (1e-4) divided
# by the window size, since TensorFlow does not divide it.
LRN = dict(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)
FC_SIZE = 4096
LAYERS = tuple(name for name, *_ in CONVS) + ("fc6", "fc7", "fc8")
DEFAULT_IMAGE_SIZE = 227
# The same preprocessing as VGG, so the same spread of input pixels for conv1's initial weights.
INPUT_STD = tools.VGG_INPUT_STD


def _window(side, kernel, stride, padding):
    """The output side of a convolution or pool over ``side`` inputs (0 when none fits)."""
    if padding == "SAME":
        return -(-side // stride)
    return (side - kernel) // stride + 1 if side >= kernel else 0


def pool5_side(side):
    """The height (or width) of pool5's output for inputs of that height (or width)."""
    for name, kernel, _, stride, padding, _ in CONVS:
        side = _window(side, kernel, stride, padding)
        for after in AFTER.get(name, ()):
            if after.startswith("pool"):
                side = _window(side, POOL_SIZE, POOL_STRIDE, "VALID")
    return side


MIN_SIDE = next(side for side in range(1, 1000) if pool5_side(side) >= 1)  # 67


def image_size_error(side):
    """Why AlexNet cannot take ``side`` x ``side`` images, or None when it can: pool5 must keep
    at least a 1x1 map."""
    if side < MIN_SIDE:
        return f"must be at least {MIN_SIDE}, got {side}"
    return None


def end_point_names(fc_size=FC_SIZE):
    """The keys of ``end_points`` before the logits, in graph order."""
    names = []
    for name, *_ in CONVS:
        names += [name, *AFTER.get(name, ())]
    return names + (["fc6", "fc7"] if fc_size else [])


def build(images, num_classes=1000, is_training=False, batch_norm=False, dropout_keep_prob=0.5,
          fc_size=FC_SIZE, until=None, dense=None):
    """Build AlexNet on ``images`` [batch, side, side, 3] and return ``(logits, end_points)``.

    Variables live at the root of the variable scope (``conv1/weights`` ... ``fc8/biases``) and
    are reused when ``build`` is called again in the same graph. ``is_training`` turns on dropout
    after fc6 and fc7 and batch statistics in batch norm; ``batch_norm=True`` puts batch norm
    after every convolution, before its ReLU (the LRN layers stay). The logits (fc8) have no
    activation. ``end_points`` maps every conv layer, ``lrn1``, ``lrn2``, ``pool1``, ``pool2``,
    ``pool5``, ``fc6``, ``fc7`` (after ReLU, before dropout) and ``logits`` to its tensor.
    ``num_classes`` None or 0 leaves out fc8 and returns fc7's output (after dropout while
    training). ``fc_size`` is the width of fc6 and fc7; 0 leaves them out, so that fc8 reads
    pool5. ``until`` names a key of ``end_points`` to stop after: its output is returned in place
    of the logits and no later layer is made. These are ``vgg16.build``'s semantics.
    """
    side = images.shape[1:3].as_list()
    if dense is None and (len(side) != 2 or None in side or any(image_size_error(s)
                                                               for s in side)):
        raise ValueError(f"image height and width must be known and at least {MIN_SIDE}, "
                         f"got {side}")
    if until is not None and until not in end_point_names(fc_size):
        raise ValueError(f"until={until!r} is not a layer of alexnet with fc_size {fc_size}")
    end_points = {}
    net = images
    with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
        for name, kernel, channels, stride, padding, groups in CONVS:
            net = tools.conv(name, net, channels, is_training, batch_norm, kernel_size=kernel,
                             input_std=INPUT_STD if net is images else 1.0, stride=stride,
                             padding=padding, groups=groups)
            end_points[name] = net
            if name == until:
                return net, end_points
            for after in AFTER.get(name, ()):
                if after.startswith("lrn"):
                    net = tf.nn.local_response_normalization(net, name=after, **LRN)
                else:
                    net = tools.max_pool(after, net, POOL_SIZE, POOL_STRIDE)
                end_points[after] = net
                if after == until:
                    return net, end_points
        return tools.fc_head(net, end_points, num_classes, fc_size, is_training,
                             dropout_keep_prob, until, dense)

"""The VGG networks (VGG11/13/16/19) as a TensorFlow 1.x graph, built from one table.

``CONFIGS`` is Table 1 of Simonyan & Zisserman (2015), configurations A, B, D and E: the output
channels of each 3x3 convolution, block by block; every block ends in a 2x2 max pool. ``build``
turns a row of it into layers named like the public weights file (``conv1_1`` ... ``conv5_4``,
``pool1`` ... ``pool5``, ``fc6``, ``fc7``, ``fc8``), so ``weights.load_pretrained`` maps
``vgg16.npy`` onto the graph with no translation table. nets.py registers VGG11/13/16/19.

    logits, end_points = vgg16.build(images, num_classes=10, arch="vgg16", is_training=True)

Images are VGG-preprocessed (BGR minus the ImageNet mean, see ``tools.vgg_preprocess``), NHWC,
with height and width a multiple of 32 (32 for CIFAR-10, 224 for ImageNet).
"""

import tensorflow as tf

import tools

tf1 = tf.compat.v1

CONFIGS = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512),
              (512, 512, 512, 512)),
}
ARCHS = tuple(CONFIGS)
FC_SIZE = 4096
SIDE_MULTIPLE = 2 ** 5  # five 2x2 pools
INPUT_STD = tools.VGG_INPUT_STD  # conv1_1's initial weights are scaled down by it


def conv_layer_names(arch):
    """``['conv1_1', 'conv1_2', ...]`` for an architecture, in graph order."""
    return [f"conv{block}_{i}" for block, channels in enumerate(CONFIGS[arch], 1)
            for i in range(1, len(channels) + 1)]


def layer_names(arch):
    """Every layer that owns variables, in graph order: the convolutions, then fc6, fc7, fc8."""
    return conv_layer_names(arch) + ["fc6", "fc7", "fc8"]


def image_size_error(side):
    """Why VGG cannot take ``side`` x ``side`` images, or None when it can."""
    if side < SIDE_MULTIPLE or side % SIDE_MULTIPLE:
        return f"must be a multiple of {SIDE_MULTIPLE}, got {side}"
    return None


def build(images, num_classes=10, arch="vgg16", is_training=False, batch_norm=False,
          dropout_keep_prob=0.5, fc_size=FC_SIZE, until=None, dense=None):
    """Build VGG on ``images`` [batch, side, side, 3] and return ``(logits, end_points)``.

    Variables live at the root of the variable scope (``conv1_1/weights`` ... ``fc8/biases``) and
    are reused when ``build`` is called again in the same graph, so a training tower and an
    evaluation tower share them. ``is_training`` turns on dropout after fc6 and fc7 and batch
    statistics in batch norm. The logits (fc8) have no activation. ``end_points`` maps every conv
    layer, ``pool1``..``pool5``, ``fc6``, ``fc7`` (after ReLU, before dropout) and ``logits`` to
    its tensor. ``num_classes`` None or 0 leaves out fc8 and returns fc7's output (after dropout
    while training) in place of the logits, as Keras's ``include_top=False`` returns features.
    ``fc_size`` is the width of fc6 and fc7 (4096 in the paper); 0 leaves them out, so that fc8
    reads pool5 directly (the usual head for 32x32 inputs: 512 -> classes). ``until`` names a layer
    of ``end_points`` (``pool5``, ``fc6`` ...) to stop after: its output is returned in place of
    the logits and no later layer is made (a backbone cut there, for a head trained on codes).
    ``dense`` (pool5's side at the trained image size: 1 at 32x32, 7 at 224x224) applies the
    network densely (the VGG paper's test time): fc6-fc8 as convolutions with the same weights
    (``tools.fc_head``) on images of any height and width (known or not, at least the trained
    size), and the logits are a class score map [batch, h, w, classes].
    """
    if arch not in CONFIGS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    side = images.shape[1:3].as_list()
    if dense is None and (len(side) != 2 or None in side or any(image_size_error(s)
                                                               for s in side)):
        raise ValueError(f"image height and width must be known multiples of {SIDE_MULTIPLE}, "
                         f"got {side}")
    if until is not None and until not in (conv_layer_names(arch) + [f"pool{b}" for b in range(
            1, 6)] + (["fc6", "fc7"] if fc_size else [])):
        raise ValueError(f"until={until!r} is not a layer of {arch} with fc_size {fc_size}")
    end_points = {}
    net = images
    with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
        for block, channels in enumerate(CONFIGS[arch], 1):
            for i, out_channels in enumerate(channels, 1):
                name = f"conv{block}_{i}"
                net = tools.conv(name, net, out_channels, is_training, batch_norm,
                                 input_std=INPUT_STD if net is images else 1.0)
                end_points[name] = net
                if name == until:
                    return net, end_points
            name = f"pool{block}"
            net = tools.max_pool(name, net)
            end_points[name] = net
            if name == until:
                return net, end_points
        return tools.fc_head(net, end_points, num_classes, fc_size, is_training,
                             dropout_keep_prob, until, dense)

"""A network that is not shaped like VGG, for tests of the network contract: three
convolutions (batch norm optional, the second with stride 2), a global average pool and one
dense layer, with none of fc6, fc7, fc8 or pool5. ``tinynet.NETWORK`` is its table entry; the
tests register it with ``nets.register`` and run every program on it."""

import tensorflow as tf

import nets
import tools

tf1 = tf.compat.v1

# (layer, output channels, stride)
CONVS = (("conv1", 8, 1), ("conv2", 16, 2), ("conv3", 16, 1))
LAYERS = tuple(name for name, _, _ in CONVS) + ("logits",)
MIN_SIDE = 4


def image_size_error(side):
    return f"must be at least {MIN_SIDE}, got {side}" if side < MIN_SIDE else None


def build(images, num_classes=10, is_training=False, batch_norm=False, until=None):
    """``(logits, end_points)``; num_classes None or 0: the pooled features; ``until`` stops
    after that end point."""
    end_points = {}
    net = images
    with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
        for name, channels, stride in CONVS:
            net = tools.conv(name, net, channels, is_training, batch_norm, stride=stride,
                             input_std=tools.VGG_INPUT_STD if net is images else 1.0)
            end_points[name] = net
            if name == until:
                return net, end_points
        net = tf.reduce_mean(net, axis=[1, 2], name="gap")
        end_points["gap"] = net
        if until == "gap" or not num_classes:
            return net, end_points
        logits = tools.fc("logits", net, num_classes, relu=False)
        end_points["logits"] = logits
        return logits, end_points


NETWORK = nets.Network(name="tinynet", build=build, layers=LAYERS, default_image_size=16,
                       image_size_error=image_size_error, last_conv="conv3",
                       code_layers=("gap",), fc_layers=("logits",), build_args=("batch_norm",),
                       head="logits", imagenet_image_size=None)

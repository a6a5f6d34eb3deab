"""A small network that knows where things are: three 3x3 convolutions (batch norm optional), a
2x2 max pool after each of the first two, and one dense layer on the flattened maps, so that
its logits depend on the position of what it sees (a global average pool, as tiny_net.py has,
would not). Trained in seconds; the Grad-CAM tests register it with ``nets.register``."""

import tensorflow as tf

import nets
import tools

tf1 = tf.compat.v1

CONVS = (("conv1", 16), ("conv2", 32), ("conv3", 32))
LAYERS = tuple(name for name, _ in CONVS) + ("logits",)
SIDE_MULTIPLE = 4  # two 2x2 pools


def image_size_error(side):
    return None if side >= SIDE_MULTIPLE and side % SIDE_MULTIPLE == 0 else \
        f"must be a multiple of {SIDE_MULTIPLE}, got {side}"


def build(images, num_classes=10, is_training=False, batch_norm=False, until=None):
    end_points = {}
    net = images
    with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
        for i, (name, channels) in enumerate(CONVS):
            net = tools.conv(name, net, channels, is_training, batch_norm,
                             input_std=tools.VGG_INPUT_STD if net is images else 1.0)
            end_points[name] = net
            if name == until:
                return net, end_points
            if i < 2:
                net = tools.max_pool(f"pool{i + 1}", net)
                end_points[f"pool{i + 1}"] = net
        net = tf.reshape(net, [-1, int(net.shape[1]) * int(net.shape[2]) * int(net.shape[3])])
        end_points["flat"] = net
        if until == "flat" or not num_classes:
            return net, end_points
        logits = tools.fc("logits", net, num_classes, relu=False)
        end_points["logits"] = logits
        return logits, end_points


NETWORK = nets.Network(name="flatnet", build=build, layers=LAYERS, default_image_size=32,
                       image_size_error=image_size_error, last_conv="conv3",
                       code_layers=("flat",), fc_layers=("logits",), build_args=("batch_norm",),
                       head="logits", imagenet_image_size=None)

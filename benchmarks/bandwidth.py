"""benchmark.py --bandwidth: the bytes one worker moves through the parameter servers in a
step, counted on the graph, and the floor that puts on a synchronous step."""

import json

import tensorflow as tf

import input_data
import nets
import vgg16

tf1 = tf.compat.v1


# (network, image side, --fc-size, --trainable) of the table --bandwidth prints
BANDWIDTH_CASES = [(arch, 32, 0, "all") for arch in vgg16.ARCHS] + [
    (arch, 224, 4096, trainable) for arch in vgg16.ARCHS for trainable in ("all", "fc")] + [
    ("alexnet", 227, 4096, "all"), ("alexnet", 227, 4096, "fc")]


def step_bytes(arch, image_size, fc_size, trainable, num_classes=input_data.NUM_CLASSES):
    """(bytes of every variable, bytes of the trained ones) of a network as train_and_val.py
    builds it: what a worker reads and what it sends back, each step."""
    network = nets.NETWORKS[arch]
    with tf.Graph().as_default():
        network.make(tf1.placeholder(tf.float32, [None, image_size, image_size, 3]),
                     num_classes, is_training=True, fc_size=fc_size)
        layers = set(network.trainable_layers(trainable))
        every = tf1.global_variables()
        trained = [v for v in every if v.op.name.split("/")[0] in layers]
        return (4 * sum(v.shape.num_elements() for v in every),
                4 * sum(v.shape.num_elements() for v in trained))


def bandwidth():
    """The table of --bandwidth (see the docstring); then one JSON line."""
    rows = []
    print(f"{'network':9} {'side':>4} {'fc':>5} {'trains':>6} {'MB/step':>8}  "
          + "  ".join(f"{f'{n}w {g}Gb/s':>12}" for n in (2, 8) for g in (1, 10, 100)))
    for arch, side, fc_size, trainable in BANDWIDTH_CASES:
        read, sent = step_bytes(arch, side, fc_size, trainable)
        per_worker = read + sent
        floors = {f"{n}w_{g}gbps_s": n * per_worker * 8 / (g * 1e9)
                  for n in (2, 8) for g in (1, 10, 100)}
        rows.append({"arch": arch, "image_size": side, "fc_size": fc_size,
                     "trainable": trainable, "bytes_per_worker_step": per_worker, **floors})
        print(f"{arch:9} {side:>4} {fc_size:>5} {trainable:>6} {per_worker / 1e6:8.1f}  "
              + "  ".join(f"{seconds:11.3f}s" for seconds in floors.values()))
    print(json.dumps(rows))
    return 0

"""The network table: every network the programs can train, evaluate and benchmark, by name.

A network is one module with a ``build`` function; it becomes usable everywhere (``--arch NAME``)
with one entry in ``NETWORKS`` below saying how to build it, which layers own variables, which
image sizes it takes, how its inputs are preprocessed and where its ImageNet weights come from.
Programs never name a particular network: they call ``nets.get(args.arch)``.

    network = nets.get("vgg16")
    logits, end_points = network.build(images, num_classes=10, is_training=True)
    features, end_points = network.build(images, num_classes=None)   # fc7, no fc8
"""

import dataclasses
import functools
from typing import Callable, Optional, Tuple

import alexnet
import vgg16


@dataclasses.dataclass(frozen=True)
class Network:
    """One entry of the table.

    ``build(images, num_classes, is_training=False, batch_norm=False, dropout_keep_prob=0.5,
    fc_size=4096, until=None)`` returns ``(logits, end_points)`` (``fc_size``: the width of the
    hidden fully connected layers, 0 for none); ``num_classes`` None or 0 returns the features the
    last layer would read instead of logits; ``until`` (a key of ``end_points``) stops there and
    returns that layer's output. ``layers`` are the layers that own ``weights`` and
    ``biases`` variables, in graph order, named like the keys of the weights file, so a file maps
    onto the graph by name. ``head`` is the layer a new task replaces (not loaded from ImageNet
    weights by default). ``image_size_error(side)`` says why a side does not fit, or None.
    ``imagenet_image_size``: the side the network was trained at on ImageNet, where the public
    fc6 fits (224 for VGG, 227 for AlexNet).
    """
    name: str
    build: Callable
    layers: Tuple[str, ...]
    default_image_size: int
    image_size_error: Callable[[int], Optional[str]]
    preprocess: str = "vgg"
    head: str = "fc8"
    keras_application: Optional[str] = None  # keras.applications model with the same weights
    imagenet_image_size: int = 224

    def trainable_layers(self, trainable):
        """The layers that train under ``--trainable``: ``all``; ``fc`` (the fully connected
        layers: the rest is a fixed feature extractor); or a layer name (it and all after it)."""
        if trainable == "all":
            return list(self.layers)
        if trainable == "fc":
            return [layer for layer in self.layers if layer.startswith("fc")]
        if trainable in self.layers:
            return list(self.layers[self.layers.index(trainable):])
        raise ValueError(f"{trainable!r} is not 'all', 'fc' or a layer of {self.name} "
                         f"({', '.join(self.layers)})")


def _vgg(arch):
    return Network(name=arch, build=functools.partial(vgg16.build, arch=arch),
                   layers=tuple(vgg16.layer_names(arch)), default_image_size=32,
                   image_size_error=vgg16.image_size_error,
                   keras_application={"vgg16": "VGG16", "vgg19": "VGG19"}.get(arch))


NETWORKS = {arch: _vgg(arch) for arch in vgg16.ARCHS}
NETWORKS["alexnet"] = Network(name="alexnet", build=alexnet.build, layers=alexnet.LAYERS,
                              default_image_size=alexnet.DEFAULT_IMAGE_SIZE,
                              image_size_error=alexnet.image_size_error, preprocess="vgg",
                              head="fc8", keras_application=None,
                              imagenet_image_size=alexnet.DEFAULT_IMAGE_SIZE)
NAMES = tuple(NETWORKS)


def get(name):
    """The table entry of ``name``; ValueError naming the choices for an unknown one."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NAMES)}") from None

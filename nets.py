"""The network table: every network the programs can train, evaluate and benchmark, by name.

A network is one module with a ``build`` function; it becomes usable everywhere (``--arch NAME``)
with one entry in ``NETWORKS`` below saying how to build it, which layers own variables, which
give codes, which ``--trainable fc`` means, its last convolution, which image sizes it takes,
how its inputs are preprocessed and where its ImageNet weights come from.
Programs never name a particular network: they call ``nets.get(cfg.arch)``.

    network = nets.get("vgg16")
    logits, end_points = network.build(images, num_classes=10, is_training=True)
    features, end_points = network.build(images, num_classes=None)   # fc7, no fc8
"""

import dataclasses
import functools
from typing import Callable
from typing import Optional
from typing import Tuple

import alexnet
import vgg16


@dataclasses.dataclass(frozen=True)
class Network:
    """One entry of the table: everything the programs need to know of a network, so that
    nothing outside its module matches its layer names.

    ``build(images, num_classes, is_training=False, until=None, **options)`` returns
    ``(logits, end_points)``: ``end_points`` maps the name of each layer (in graph order) to its
    output, ending with ``logits``; ``num_classes`` None or 0 returns the features the last
    layer would read instead of logits; ``until`` (a key of ``end_points``) stops there and
    returns that layer's output. ``build_args`` are the ``options`` it takes, among
    ``batch_norm``, ``fc_size`` (the width of hidden fully connected layers, 0 for none) and
    ``dropout_keep_prob``: the programs pass only those (``make``).

    ``layers`` are the layers that own variables (``LAYER/...``, any leaf names), in graph order,
    named like the keys of its weights file, so a file maps onto the graph by name. ``head`` is
    the layer a new task replaces (not loaded from ImageNet weights by default); ``fc_layers``
    what ``--trainable fc`` trains (the rest is then a fixed feature extractor);
    ``code_layers`` the end points ``extract_codes.py`` can cache (``default_code_layer`` its
    default); ``last_conv`` its last convolutional layer. ``image_size_error(side)`` says why a
    side does not fit, or None. ``imagenet_image_size``: the side it was trained at on ImageNet,
    where the public fc6 fits (224 for VGG, 227 for AlexNet; None for a network without
    ImageNet weights).
    """
    name: str
    build: Callable
    layers: Tuple[str, ...]
    default_image_size: int
    image_size_error: Callable[[int], Optional[str]]
    last_conv: str
    code_layers: Tuple[str, ...]
    fc_layers: Tuple[str, ...]
    default_code_layer: Optional[str] = None  # (None: the first of code_layers)
    build_args: Tuple[str, ...] = ("batch_norm", "fc_size", "dropout_keep_prob", "dense")
    preprocess: str = "vgg"
    head: str = "fc8"
    keras_application: Optional[str] = None  # keras.applications model with the same weights
    imagenet_image_size: Optional[int] = 224

    def make(self, images, num_classes, is_training=False, until=None, **options):
        """``build`` with the options it takes: the others (``fc_size`` for a network without
        hidden fully connected layers, say) are left out."""
        return self.build(images, num_classes, is_training=is_training, until=until,
                          **{k: v for k, v in options.items() if k in self.build_args})

    @property
    def dense(self):
        """Whether it can be applied densely (takes ``dense``)."""
        return "dense" in self.build_args

    @property
    def codes_default(self):
        return self.default_code_layer or self.code_layers[0]

    @property
    def conv_layers(self):
        """The convolutional layers, in graph order: ``layers`` up to ``last_conv``."""
        return self.layers[:self.layers.index(self.last_conv) + 1]

    def trainable_layers(self, trainable):
        """The layers that train under ``--trainable``: ``all``; ``fc`` (``fc_layers``: the rest
        is a fixed feature extractor); or a layer name (it and all after it)."""
        if trainable == "all":
            return list(self.layers)
        if trainable == "fc":
            return list(self.fc_layers)
        if trainable in self.layers:
            return list(self.layers[self.layers.index(trainable):])
        raise ValueError(f"{trainable!r} is not 'all', 'fc' or a layer of {self.name} "
                         f"({', '.join(self.layers)})")


def _vgg(arch):
    return Network(name=arch, build=functools.partial(vgg16.build, arch=arch),
                   layers=tuple(vgg16.layer_names(arch)), default_image_size=32,
                   image_size_error=vgg16.image_size_error,
                   last_conv=vgg16.conv_layer_names(arch)[-1],
                   code_layers=("pool5", "fc6", "fc7"), default_code_layer="fc6",
                   fc_layers=("fc6", "fc7", "fc8"),
                   keras_application={"vgg16": "VGG16", "vgg19": "VGG19"}.get(arch))


NETWORKS = {arch: _vgg(arch) for arch in vgg16.ARCHS}
NETWORKS["alexnet"] = Network(name="alexnet", build=alexnet.build, layers=alexnet.LAYERS,
                              default_image_size=alexnet.DEFAULT_IMAGE_SIZE,
                              image_size_error=alexnet.image_size_error, last_conv="conv5",
                              code_layers=("pool5", "fc6", "fc7"), default_code_layer="fc6",
                              fc_layers=("fc6", "fc7", "fc8"), preprocess="vgg", head="fc8",
                              keras_application=None,
                              imagenet_image_size=alexnet.DEFAULT_IMAGE_SIZE)
NAMES = tuple(NETWORKS)  # the --arch choices


def register(network):
    """Add ``network`` to the table (or replace the entry of its name): every program then
    takes ``--arch NAME``. The table's own entries are above; tests register networks of
    their own."""
    global NAMES
    NETWORKS[network.name] = network
    NAMES = tuple(NETWORKS)
    return network


def unregister(name):
    global NAMES
    NETWORKS.pop(name, None)
    NAMES = tuple(NETWORKS)


def check_image_size(parser, arch, image_size):
    """``(network, side)``: the table entry of ``arch`` and ``image_size``, or the network's own
    side when that is None; a side the network cannot take is a flag error of ``parser``."""
    network = get(arch)
    side = image_size or network.default_image_size
    problem = network.image_size_error(side)
    if problem:
        parser.error(f"--image-size {problem} for {arch}")
    return network, side


def get(name):
    """The table entry of ``name``; ValueError naming the choices for an unknown one."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NAMES)}") from None

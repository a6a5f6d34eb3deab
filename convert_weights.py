"""Write VGG16/VGG19 ImageNet weights in the layout of the public ``vgg16.npy`` from Keras's copy.

The public ``vgg16.npy`` / ``vgg19.npy`` live on file hosts that are often unreachable; Keras's
ImageNet weights for the same networks (the original Caffe weights, same BGR-minus-mean input)
are usually reachable. This program fetches them through ``keras.applications`` and writes
``{layer: [weights, biases]}`` under the public names::

    python convert_weights.py --arch vgg16 --out pretrained/vgg16.npy           # 528 MB download
    python convert_weights.py --arch vgg16 --no-top --out pretrained/vgg16.npy  # convolutions only, 56 MB
    python convert_weights.py --arch vgg19 --keras-weights vgg19_weights.h5     # a file you already have

Keras names map as ``block{b}_conv{i}`` -> ``conv{b}_{i}``, ``fc1`` -> ``fc6``, ``fc2`` -> ``fc7``,
``predictions`` -> ``fc8``. An existing output file is never overwritten.
"""

import argparse
import os
import re
import sys
import tempfile

import numpy as np

KERAS_MODELS = {"vgg16": "VGG16", "vgg19": "VGG19"}
_KERAS_TO_PUBLIC = {"fc1": "fc6", "fc2": "fc7", "predictions": "fc8"}


class ConversionError(RuntimeError):
    """The weights could not be fetched or written; the message says what to do instead."""


def public_name(keras_name):
    """The public weights-file name of a Keras VGG layer, or None for layers without weights."""
    match = re.fullmatch(r"block(\d)_conv(\d)", keras_name)
    if match:
        return f"conv{match.group(1)}_{match.group(2)}"
    return _KERAS_TO_PUBLIC.get(keras_name)


def keras_layers(model):
    """``{public_name: [weights, biases]}`` (float32) from a Keras VGG16/VGG19 model."""
    layers = {}
    for layer in model.layers:
        name = public_name(layer.name)
        if name is not None:
            weights, biases = layer.get_weights()
            layers[name] = [np.asarray(weights, np.float32), np.asarray(biases, np.float32)]
    return layers


def write_weights(path, layers):
    """Save ``{layer: [weights, biases]}`` as a 0-d object array in an .npy, like the public
    file. Written to a temporary file first, so an interrupted run leaves nothing half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    array = np.empty((), dtype=object)
    array[()] = layers
    fd, tmp = tempfile.mkstemp(suffix=".npy.part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def keras_model(arch, include_top=True, keras_weights=None):
    """Keras's ImageNet VGG model, from ``keras_weights`` (a file) or downloaded by Keras."""
    import keras  # Imported here: building the graph programs does not need Keras.

    constructor = getattr(keras.applications, KERAS_MODELS[arch])
    try:
        return constructor(weights=keras_weights or "imagenet", include_top=include_top,
                           classifier_activation=None)
    except Exception as e:  # Keras reports a failed download as a bare Exception.
        if keras_weights:
            raise ConversionError(f"could not read {arch} weights from {keras_weights}: {e}") \
                from None
        raise ConversionError(f"could not download Keras's {arch} ImageNet weights ({e}); on a "
                              "machine with a network, fetch them and pass --keras-weights FILE, "
                              f"or put the public {arch}.npy in place yourself") from None


def convert(arch, out, include_top=True, keras_weights=None):
    """Write ``arch``'s ImageNet weights to ``out`` in the public layout; returns the layers."""
    if arch not in KERAS_MODELS:
        raise ConversionError(f"Keras has no ImageNet weights for {arch}; "
                              f"choose one of {', '.join(KERAS_MODELS)}")
    if os.path.exists(out):
        raise ConversionError(f"{out} exists already; it is left as it is "
                              "(remove it yourself or choose another --out)")
    layers = keras_layers(keras_model(arch, include_top, keras_weights))
    write_weights(out, layers)
    return layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(KERAS_MODELS), default="vgg16",
                        help="which network's weights to write")
    parser.add_argument("--out", help="output .npy (default: pretrained/ARCH.npy)")
    parser.add_argument("--no-top", action="store_true",
                        help="convolutions only (fc6-fc8 left out): a much smaller download, "
                             "enough when fc6 cannot be used anyway (inputs other than 224x224)")
    parser.add_argument("--keras-weights",
                        help="read Keras's weights from this .h5 file instead of downloading")
    args = parser.parse_args(argv)
    out = args.out or os.path.join("pretrained", f"{args.arch}.npy")
    try:
        layers = convert(args.arch, out, not args.no_top, args.keras_weights)
    except ConversionError as e:
        print(f"convert_weights.py: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {len(layers)} layers ({', '.join(layers)}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

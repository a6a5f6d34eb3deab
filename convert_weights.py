"""Write VGG16/VGG19 ImageNet weights in the layout of the public ``vgg16.npy`` from Keras's copy.

The public ``vgg16.npy`` / ``vgg19.npy`` live on file hosts that are often unreachable; Keras's
ImageNet weights for the same networks (the original Caffe weights, same BGR-minus-mean input)
are usually reachable. This program fetches them through ``keras.applications`` and writes
``{layer: [weights, biases]}`` under the public names (``weights.convert`` does the work)::

    python convert_weights.py --arch vgg16 --out pretrained/vgg16.npy   # a 528 MB download
    python convert_weights.py --arch vgg16 --no-top --out pretrained/vgg16.npy  # conv: 56 MB
    python convert_weights.py --arch vgg19 --keras-weights vgg19_weights.h5   # a file you have

Keras names map as ``block{b}_conv{i}`` -> ``conv{b}_{i}``, ``fc1`` -> ``fc6``, ``fc2`` -> ``fc7``,
``predictions`` -> ``fc8``. An existing output file is never overwritten.
"""

import os
import sys

from common import cli
import nets
import weights


def parse_args(argv=None):
    """The command line, frozen, with --out resolved (pretrained/ARCH.npy when not given)."""
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="vgg16", help="which network's weights to write",
                        choices=[n for n, net in nets.NETWORKS.items() if net.keras_application])
    parser.add_argument("--out", help="output .npy (default: pretrained/ARCH.npy)")
    parser.add_argument("--no-top", action="store_true",
                        help="convolutions only (fc6-fc8 left out): a much smaller download, "
                             "enough when fc6 cannot be used anyway (inputs other than 224x224)")
    parser.add_argument("--keras-weights",
                        help="read Keras's weights from this .h5 file instead of downloading")
    args = parser.parse_args(argv)
    return cli.freeze(args, out=args.out or os.path.join("pretrained", f"{args.arch}.npy"))


def main(argv=None):
    cfg = parse_args(argv)
    try:
        layers = weights.convert(nets.get(cfg.arch), cfg.out, not cfg.no_top, cfg.keras_weights)
    except weights.ConversionError as e:
        print(f"convert_weights.py: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {len(layers)} layers ({', '.join(layers)}) to {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

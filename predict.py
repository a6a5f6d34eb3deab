"""Classify image files with a trained network, or straight from an ImageNet weights file.

    python predict.py cat.jpg photos/            # the latest checkpoint of logs/train
    python predict.py --best --top 3 photos/     # the best checkpoint by validation accuracy
    python predict.py --json img.png > out.json  # one JSON document
    python predict.py --weights pretrained/vgg16.npy --arch vgg16 cat.jpg   # ImageNet's classes
    python predict.py --dense --scales 256,384,512 photos/   # the whole image, at three scales
    python predict.py --model exported/cifar10/3/model.tflite photos/   # a TFLite export

Takes image files of any size in the formats the folder reader takes (JPEG, PNG, BMP, GIF,
PPM/PGM) and folders (every image under them, in sorted order). Each image is decoded, resized
and preprocessed as evaluation does it; the network runs without dropout and with batch norm's
moving statistics, so an image gets the same answer alone as in a batch. A run's checkpoint is
read with the moving averages of its weights when it has them, as evaluate.py does. Prints, per
image, its top classes with their probabilities. Nothing is written.
"""

import contextlib
import json
import sys

from common import cli
from common.progress import Progress

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("predict.py")

# (the heavy imports come after that)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import devices  # noqa: E402
from inference import serving  # noqa: E402
from inference import tflite  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402

tf1 = tf.compat.v1


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files, and folders of them")
    cli.add_flags(p, "log-dir")
    which = p.add_mutually_exclusive_group()
    cli.add_flags(which, "checkpoint", "best")
    which.add_argument("--weights", help="a weights file with fc6-fc8 (e.g. the public "
                                         "vgg16.npy): ImageNet's 1000 classes at 224x224")
    which.add_argument("--model", type=cli.path,
                       help="a TensorFlow Lite model of export.py (FILE.tflite or its version "
                            "folder), its class names from the class_names.txt beside it")
    cli.add_flags(p, "arch", "resize", "batch-size", "precision", "verbose", batch_size=32,
                  choices={"arch": nets.NAMES})
    cli.add_flags(p, "dense", "scales")
    p.add_argument("--top", type=cli.at_least(1), default=5, help="classes shown per image")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document: [{file, top: [{class, index, probability}]}]")
    p.add_argument("--no-ema", action="store_true",
                   help="use a run's trained weights even when its checkpoint holds their "
                        "moving averages")
    args = p.parse_args(argv)
    if args.scales and not args.dense:
        p.error("--scales goes with --dense")
    if args.dense and args.resize:
        p.error("--dense reads each whole image, its aspect kept; --resize does not go with it")
    if args.model and (args.dense or args.no_ema or args.precision != "fp32"):
        p.error("--model runs a TFLite model as it is; --dense, --no-ema and --precision do "
                "not go with it")
    return cli.freeze(args)


image_files = input_data.image_files  # (its home is pipeline.py)


def predict(config, files, load, batch_size, precision="fp32", stream=sys.stderr,
            dense_scales=None):
    """``(probabilities, logits)``, each [len(files), classes], of every file, in order; with
    ``dense_scales`` the network applied densely at those shorter sides, one image a batch
    (``model.dense_logits``)."""
    with tf.Graph().as_default():
        images, _, iterator = model.inputs(lambda: input_data.read_files(
            files, batch_size, config["image_size"], nets.get(config["arch"]).preprocess,
            input_data.KEEP if dense_scales else config.get("resize", "squash")).map(
                lambda batch: (batch, tf.zeros([tf.shape(batch)[0]], tf.int32))),
            initializable=True)
        probabilities, _, logits = model.classify(config, images, dense_scales)
        with tf1.Session(config=devices.session_config(precision)) as session:
            load(session)
            session.run(iterator.initializer)
            batches = []
            with Progress("predict", len(files), stream) if len(files) > batch_size \
                    else contextlib.nullcontext() as progress:
                for batch in model.each_batch(session, [probabilities, logits]):
                    batches.append(batch)
                    if progress:
                        progress.update(sum(len(b[0]) for b in batches))
    return tuple(np.concatenate(column) for column in zip(*batches))


def top_classes(probabilities, logits, names, top):
    """``[{"class", "index", "probability"}]`` of the ``top`` classes with the highest logits
    (the order of the probabilities, also where they round to the same value)."""
    order = np.argsort(-logits, kind="stable")[:top]
    return [{"class": names[i], "index": int(i), "probability": float(probabilities[i])}
            for i in order]


def run(cfg):
    files = image_files(cfg.images)
    if cfg.model:
        lite = tflite.load(cfg.model)
        return show(cfg, files, lite.class_names,
                    *tflite.predict_files(lite, files, cfg.batch_size, cfg.resize, sys.stderr))
    classifier = serving.from_weights(cfg.weights, cfg.arch) if cfg.weights else \
        serving.from_run(cfg.log_dir, cfg.checkpoint, cfg.best, not cfg.no_ema)
    if cfg.resize:
        classifier.config["resize"] = cfg.resize
    scales = None
    if cfg.dense:
        scales = cfg.scales or [classifier.config["image_size"]]
        try:
            model.check_dense(classifier.config, scales)
        except ValueError as e:
            raise cli.UsageError(f"--dense: {e}") from None
    probabilities, logits = predict(classifier.config, files, classifier.load,
                                    cfg.batch_size, cfg.precision, dense_scales=scales)
    return show(cfg, files, classifier.class_names, probabilities, logits)


def show(cfg, files, names, probabilities, logits):
    """Print each file's top classes (or, with --json, one document of them)."""
    results = [{"file": path, "top": top_classes(p, l, names, cfg.top)}
               for path, p, l in zip(files, probabilities, logits)]
    if cfg.json:
        print(json.dumps(results, indent=1))
        return 0
    for result in results:
        print(result["file"])
        for entry in result["top"]:
            print(f"  {entry['probability']:.4f}  {entry['class']} ({entry['index']})")
    return 0


def main(argv=None):
    return cli.run_main("predict.py", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Export a trained network as a SavedModel for TensorFlow Serving (or any TensorFlow program).

    python export.py --out exported/cifar10                # the latest checkpoint of logs/train
    python export.py --best --log-dir logs/flowers --out exported/flowers
    python export.py --weights pretrained/vgg16.npy --arch vgg16 --out exported/imagenet
    python export.py --log-dir logs/vgg11 --npy shared/vgg11-cifar10.npy  # the public layout
    python export.py --out exported/cifar10 --format tflite       # TensorFlow Lite, float32
    python export.py --out exported/cifar10 --format tflite-int8  # int8, calibrated
    saved_model_cli show --dir exported/cifar10/1 --all

Each export goes into a new version folder, OUT/1, then OUT/2 ... (the layout TensorFlow Serving
watches); nothing is overwritten. The signature ``serving_default`` takes ``images``: uint8 RGB
[batch, height, width, 3] of any size, resized and preprocessed inside the graph as evaluation
does; it returns ``probabilities`` (float32 [batch, classes]), ``classes`` (int64 [batch]) and
``class_names`` (string [batch]). The class list is also an asset, ``assets/class_names.txt``.
The graph holds the network for inference only: no input pipeline, no training ops, no dropout,
batch norm from its moving statistics, and a run's moving averages of its weights when it has
them.

``--format tflite`` writes OUT/N/model.tflite (float32) and class_names.txt instead;
``--format tflite-int8`` a full-integer model (int8 weights and activations) calibrated on
``--calibration-images`` of the run's training images. A TFLite model takes uint8 RGB
[1, S, S, 3] at the network's side S: images are resized before it (see inference/tflite.py).
"""

import contextlib
import errno
import os
import shutil
import sys
import tempfile

from common import cli
from common import files

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("export.py")

# (the heavy imports come after that)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from inference import serving  # noqa: E402
from inference import tflite  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402
import tools  # noqa: E402
from training import runs  # noqa: E402
import weights  # noqa: E402

tf1 = tf.compat.v1
CLASS_NAMES_FILE = "class_names.txt"


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "log-dir")
    which = p.add_mutually_exclusive_group()
    cli.add_flags(which, "checkpoint", "best")
    which.add_argument("--weights", help="export a weights file with fc6-fc8 (e.g. the public "
                                         "vgg16.npy) with ImageNet's 1000 classes instead")
    cli.add_flags(p, "arch", "resize", "verbose", choices={"arch": nets.NAMES})
    p.add_argument("--out", type=cli.path,
                   help="the model's folder; this export becomes its next version, OUT/N")
    p.add_argument("--npy", type=cli.path,
                   help="write the weights instead, in the layout of the public vgg16.npy (a "
                        "0-d object array of {layer: [weights, biases]}; batch norm folded "
                        "into them); an existing file is never overwritten")
    p.add_argument("--no-ema", action="store_true",
                   help="export a run's trained weights even when its checkpoint holds their "
                        "moving averages")
    p.add_argument("--format", choices=("savedmodel",) + tflite.FORMATS, default="savedmodel",
                   help="what --out's new version holds: a SavedModel (the default), a "
                        "TensorFlow Lite model in float32 (tflite) or full-integer int8 "
                        "(tflite-int8), each with class_names.txt")
    p.add_argument("--calibration-images", type=cli.at_least(1), default=200, metavar="N",
                   help="tflite-int8: the run's first N training images (read as evaluation "
                        "reads them) that set the ranges of its activations")
    p.add_argument("--data-dir", type=cli.path,
                   help="tflite-int8: where the run's training images are now (default: the "
                        "data dir its config.json records)")
    p.add_argument("--layer-errors", action="store_true",
                   help="tflite-int8: also print the error of each quantized tensor against "
                        "the float model on the calibration images, in steps of its int8 "
                        "scale (TensorFlow Lite's QuantizationDebugger; rounding alone is "
                        "about 0.3)")
    args = p.parse_args(argv)
    if args.layer_errors and args.format != "tflite-int8":
        p.error("--layer-errors goes with --format tflite-int8")
    if (args.out is None) == (args.npy is None):
        p.error("give --out (a SavedModel) or --npy (a weights file), one of them")
    if args.npy and args.format != "savedmodel":
        p.error("--format goes with --out; --npy writes the weights alone")
    if args.format == "tflite-int8" and args.weights:
        p.error("--format tflite-int8 calibrates on a run's training images; --weights has "
                "none (use --format tflite)")
    return cli.freeze(args)


def next_version(out):
    """1 + the highest version folder in ``out`` (1 for a new or empty one)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise cli.UsageError(f"--out {out} is a file; give a folder for the model's versions")
    versions = [int(name) for name in (os.listdir(out) if os.path.isdir(out) else [])
                if name.isdigit()]
    return max(versions, default=0) + 1


def build(classifier, session):
    """The serving graph of ``classifier`` in the session's graph, its variables loaded;
    ``(inputs, outputs)`` tensors of the signature."""
    images = tf1.placeholder(tf.uint8, [None, None, None, 3], name="images")
    probabilities, classes, _ = model.classify(
        classifier.config, model.serving_inputs(classifier.config, images))
    names = tf.gather(tf.constant(classifier.class_names), classes, name="class_names")
    classifier.load(session)
    return ({"images": images}, {"probabilities": tf.identity(probabilities, "probabilities"),
                                 "classes": tf.identity(classes, "classes"),
                                 "class_names": names})


def layer_arrays(session):
    """``{layer: [weights, biases]}`` of the session's graph as the public file holds them:
    batch norm (inference: its moving statistics) folded into the convolution before it, so
    that the same layers without batch norm compute the same."""
    layers = {}
    for layer, (w, b) in weights.graph_layers(session.graph).items():
        kernel, bias = session.run([w, b])
        scope = f"{layer}/batch_norm/"
        norm = [v for v in tf1.global_variables() if v.op.name.startswith(scope)]
        if norm:
            values = {v.op.name[len(scope):]: session.run(v) for v in norm}
            scale = values["gamma"] / np.sqrt(values["moving_variance"] +
                                              tools.BATCH_NORM_EPSILON)
            kernel = kernel * scale
            bias = (bias - values["moving_mean"]) * scale + values["beta"]
        layers[layer] = [np.asarray(kernel, np.float32), np.asarray(bias, np.float32)]
    return layers


def write_npy(classifier, path):
    if os.path.exists(path):
        raise cli.UsageError(f"--npy {path} exists already; give another path (nothing is "
                             "overwritten)")
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
        build(classifier, session)
        layers = layer_arrays(session)
    try:
        weights.write_weights(path, layers)
    except OSError as e:
        raise cli.UsageError(f"--npy {path}: cannot write it ({e.strerror or e})") from None
    folded = " (batch norm folded in)" if classifier.config.get("batch_norm") else ""
    print(f"Wrote the {len(layers)} layers of {classifier.source} ({', '.join(layers)}) to "
          f"{path}{folded}")
    return 0


def export(cfg):
    classifier = serving.from_weights(cfg.weights, cfg.arch) if cfg.weights else \
        serving.from_run(cfg.log_dir, cfg.checkpoint, cfg.best, not cfg.no_ema)
    if cfg.resize:
        classifier.config["resize"] = cfg.resize
    if cfg.npy:
        return write_npy(classifier, cfg.npy)
    version = next_version(cfg.out)
    if cfg.format != "savedmodel":
        return write_tflite(cfg, classifier, version)
    final = publish(cfg.out, version, lambda folder: write_savedmodel(classifier, folder))
    print(f"Exported {classifier.source} ({classifier.config['arch']}, "
          f"{len(classifier.class_names)} classes) to {final}")
    print(f"  saved_model_cli show --dir {final} --all")
    return 0


def write_savedmodel(classifier, folder):
    """The SavedModel of ``classifier`` in ``folder`` (not there yet), its class names an
    asset."""
    class_file = os.path.join(os.path.dirname(folder), CLASS_NAMES_FILE)
    with open(class_file, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classifier.class_names))
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
        inputs, outputs = build(classifier, session)
        asset = tf.constant(class_file, name="class_names_file")
        tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, asset)
        builder = tf1.saved_model.Builder(folder)
        builder.add_meta_graph_and_variables(
            session, [tf1.saved_model.tag_constants.SERVING],
            signature_def_map={"serving_default": tf1.saved_model.predict_signature_def(
                inputs, outputs)},
            assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
            strip_default_attrs=True)
        builder.save()


def publish(out, version, write):
    """Make a version of the model in OUT: ``write(folder)`` writes it in a folder of a
    temporary folder inside OUT, which is then renamed OUT/VERSION (or the next free version,
    when another export took that one meanwhile: no version is replaced). Nothing of it stays
    when writing fails, and an error that names no file names OUT/VERSION. Returns the
    version's folder."""
    made = not os.path.isdir(out)
    with files.naming(os.path.join(out, str(version))):
        os.makedirs(out, exist_ok=True)
        work = None
        try:
            work = tempfile.mkdtemp(prefix=f".{version}-", dir=out)
            folder = os.path.join(work, "model")  # (mkdtemp's own folder is private, 0700)
            write(folder)
            while True:
                final = os.path.join(out, str(version))
                try:
                    os.rename(folder, final)  # fails rather than replace a version
                    return final
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    version += 1
        except OSError as e:
            if work is None:  # (name the folder, not the temporary name it could not make)
                e.filename = out
            raise
        finally:
            if work:
                shutil.rmtree(work, ignore_errors=True)
            if made and not os.path.exists(os.path.join(out, str(version))):
                with contextlib.suppress(OSError):  # (a folder of this export's own, empty)
                    os.rmdir(out)


def write_tflite(cfg, classifier, version):
    """OUT/VERSION/model.tflite and class_names.txt (and model.json: what it is)."""
    run_config = None if cfg.weights else runs.config_for(classifier.source, cfg.log_dir)
    calibration = tflite.calibration_images(
        run_config, classifier, cfg.calibration_images, cfg.data_dir) \
        if cfg.format == "tflite-int8" else None
    content = tflite.convert(classifier, calibration)

    def write(folder):
        os.mkdir(folder)
        tflite.write(folder, content, classifier, cfg.format, run_config)

    final = publish(cfg.out, version, write)
    side = classifier.config["image_size"]
    calibrated = f", calibrated on {len(calibration)} training images" if calibration is not \
        None else ""
    print(f"Exported {classifier.source} ({classifier.config['arch']}, "
          f"{len(classifier.class_names)} classes) as {cfg.format}{calibrated} to "
          f"{os.path.join(final, tflite.MODEL_FILE)}: {len(content):,} bytes "
          f"({len(content) / 2**20:.1f} MiB); it takes uint8 RGB [1, {side}, {side}, 3]")
    if cfg.layer_errors:
        print("Each quantized tensor's RMSE against the float model on the calibration images, "
              "in steps of its scale:")
        print(f"  {'op':16} {'scale':>10} {'error':>7}  tensor")
        for op, tensor, scale, error in tflite.layer_errors(classifier, calibration):
            print(f"  {op:16} {scale:10.5f} {error:7.2f}  {tensor}")
    return 0


def main(argv=None):
    return cli.run_main("export.py", export, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

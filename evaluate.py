"""Measure a trained checkpoint on the CIFAR-10 test set: every test image exactly once.

    python evaluate.py                   # the latest checkpoint in logs/train
    python evaluate.py --best            # the best one by validation accuracy (logs/best)
    python evaluate.py --checkpoint logs/train/model.ckpt-5000
    python evaluate.py --watch           # each new checkpoint as training writes it
    python evaluate.py --codes codes/flowers --log-dir logs/flowers   # a head on cached codes
    python evaluate.py --dense --scales 32,40,48 --tta flip   # the VGG paper's dense test
    python evaluate.py --model exported/cifar10/3/model.tflite   # a TFLite export

Prints the number of images evaluated, the accuracy (and the top-5 accuracy with more than 5
classes), per-class accuracy, per-class precision, recall, F1 and support with their macro
averages, the confusion matrix (``--normalize-confusion``: also each row divided by its sum) and
the most confident mistakes; writes a confusion-matrix PNG, a sheet of the most confident
mistakes (``--errors N``, 25 by default: the wrongly classified images of highest predicted
probability, as the network saw them; none with --codes, which has no pixels) and a JSON report
to logs/eval/ (named by the checkpoint's step, so nothing is overwritten) and an accuracy
summary that TensorBoard shows at that step. The network is rebuilt from the config.json that
train_and_val.py saved next to the checkpoints.

Where a ratio is 0/0 it counts as 0: a class never predicted has precision 0, a class with no
image in the split recall 0, and a row of the normalized matrix with no image is all 0. The
macro averages are the unweighted means over the classes that occur in the split, as labels or
as predictions (scikit-learn's default), so a class the split lacks does not lower them.
"""

import os
import sys

from common import cli

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("evaluate.py")

# (the heavy imports come after that)
import tensorflow as tf  # noqa: E402

from common import devices  # noqa: E402
from inference import codes  # noqa: E402
from inference import reports  # noqa: E402
from inference import tflite  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402
from training import runs  # noqa: E402

tf1 = tf.compat.v1


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "dataset", "data-dir", "skip-bad-images", "crop-roi", "log-dir",
                  dataset=None,
                  choices={"dataset": tuple(input_data.SOURCES)})
    which = p.add_mutually_exclusive_group()
    cli.add_flags(which, "checkpoint", "best")
    which.add_argument("--model", type=cli.path,
                       help="a TensorFlow Lite model of export.py (FILE.tflite or its version "
                            "folder) instead of a checkpoint; the report is named after it")
    cli.add_flags(p, "split", "resize", "batch-size", "precision", "xla", "verbose",
                  batch_size=250)
    p.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="test-time augmentation: 'flip' averages the class probabilities of each "
                        "image and its mirror image")
    cli.add_flags(p, "dense", "scales")
    p.add_argument("--no-ema", action="store_true",
                   help="use the trained weights even when the checkpoint holds their moving "
                        "averages (a run with --ema-decay; by default those are used)")
    p.add_argument("--watch", action="store_true",
                   help="evaluate each new checkpoint in train/ as it appears, until Ctrl-C")
    p.add_argument("--codes", metavar="CODES_DIR",
                   help="evaluate a head trained with train_and_val.py --codes on the cached "
                        "codes of --split there instead of on the images")
    p.add_argument("--errors", type=cli.at_least(0), default=25, metavar="N",
                   help="the N wrongly classified images of highest predicted probability: "
                        "listed, and drawn in a sheet next to the confusion matrix (0: none)")
    p.add_argument("--normalize-confusion", action="store_true",
                   help="also show the confusion matrix with each row divided by its sum "
                        "(fractions of each true class; the JSON keeps the counts too)")
    args = p.parse_args(argv)
    if args.watch and (args.checkpoint or args.best):
        p.error("--watch follows train/; it does not go with --checkpoint or --best")
    if args.codes and (args.tta != "none" or args.skip_bad_images or args.crop_roi
                       or args.dataset or args.resize or args.dense):
        p.error("--tta, --skip-bad-images, --crop-roi, --resize, --dense and --dataset need "
                "images; they do not go with --codes")
    if args.scales and not args.dense:
        p.error("--scales goes with --dense")
    if args.dense and args.resize:
        p.error("--dense reads each whole image, its aspect kept; --resize does not go with it")
    if args.model and (args.watch or args.codes or args.dense or args.tta != "none"
                       or args.no_ema or args.precision != "fp32" or args.xla):
        p.error("--model runs a TFLite model as it is, on images; --watch, --codes, --dense, "
                "--tta, --no-ema, --precision and --xla do not go with it")
    return args


def dataset_of(args, config):
    """--dataset, or else the data set the run trained on."""
    return args.dataset or config["runs"][-1].get("dataset", "cifar10")


class Evaluator:
    """The evaluation graph of one model, reusable for several checkpoints."""

    def __init__(self, args, config, lite=None):
        self.model, self.lite = config["model"], lite
        self.graph = tf.Graph()
        if args.codes:
            self.files = self.codes_input(args, config)
        else:
            self.files = self.images_input(args, config)
        self.config = devices.session_config(args.precision, args.xla)
        self.use_averages = not args.no_ema

    def add_details(self, errors, pixels=None):
        """What the report needs beyond top-1: each image's probability and, with more than 5
        classes, its top 5 classes; the ``errors`` most confident mistakes (with ``pixels``,
        the input images as RGB 0..255, their pixels)."""
        top_k = 5 if self.model["num_classes"] > 5 else 0
        self.details = model.split_details(self.tower, top_k, errors, pixels)

    def codes_input(self, args, config):
        """The head alone, on the codes of --split; the split's file names."""
        manifest = codes.read_manifest(args.codes)
        made = {"arch": manifest["network"], "codes_layer": manifest["layer"],
                "image_size": manifest["image_size"]}
        if not self.model.get("head"):
            raise cli.UsageError(f"--codes: the run in {args.log_dir} trained a network on "
                                 "images, not a head on codes; evaluate it without --codes")
        differ = [f"{k} {v!r} (the run's: {self.model[k]!r})" for k, v in made.items()
                  if self.model[k] != v]
        trained_on = config.get("codes", {}).get("weights_sha256")
        if trained_on and trained_on != manifest.get("weights_sha256"):
            differ.append("another weights file")
        if differ or manifest["class_names"] != config.get("class_names"):
            raise cli.UsageError(f"--codes {args.codes} are not codes the head of "
                                 f"{args.log_dir} reads: {'; '.join(differ) or 'other classes'}"
                                 "; make them with extract_codes.py as for its training")
        self.class_names = manifest["class_names"]
        values, labels, files = codes.load(args.codes, args.split,
                                           num_classes=len(manifest["class_names"]))
        with self.graph.as_default():
            inputs, labels, self.iterator = model.inputs(
                lambda: codes.dataset(values, labels, args.batch_size), initializable=True)
            self.tower = model.tower(self.model, inputs, labels, codes=True)
            self.add_details(args.errors)  # (codes: no pixels)
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in files]

    def images_input(self, args, config):
        """The network on the images of --split; the split's file names."""
        dataset = dataset_of(args, config)
        source = input_data.SOURCES[dataset]
        if dataset == config["runs"][-1].get("dataset") and config["runs"][-1].get("crop_roi"):
            args.crop_roi = True  # evaluate the images as the run saw them
        if args.dense:  # the whole image at each scale
            args.scales = args.scales or [self.model["image_size"]]
            try:
                model.check_dense(self.model, args.scales)
            except ValueError as e:
                raise cli.UsageError(f"--dense: {e}") from None
        else:
            args.resize = args.resize or config["runs"][-1].get("resize") or "squash"
        options = input_data.data_options(args, dataset)
        mirrors = source.mirrors(args.data_dir, **options) if args.tta == "flip" else None
        changed = [c for c, m in enumerate(mirrors or []) if m != c]
        if changed:  # (None: every class is its own mirror)
            raise cli.UsageError(f"--tta flip averages each image with its mirror image, but a "
                                 f"mirror changes {len(changed)} of the {len(mirrors)} classes "
                                 f"of --dataset {dataset} (a mirrored 'keep left' is a 'keep "
                                 "right', a mirrored 2 no digit); evaluate without --tta flip")
        names = source.class_names(args.data_dir)
        trained = config.get("class_names") or names
        if names != trained:  # labels are positions in the sorted class folders
            raise cli.UsageError(f"{args.data_dir} has the classes {', '.join(names)}; the run "
                                 f"was trained on {', '.join(trained)}: evaluate on images of "
                                 "the same classes")
        self.class_names = trained
        source.validate(args.data_dir, args.split, **options)
        val_size = config["runs"][-1]["val_size"]
        with self.graph.as_default():
            images, labels, self.iterator = model.split_input(
                self.model, source, args.data_dir, args.split, args.batch_size, val_size,
                options, initializable=True,
                resize=input_data.KEEP if args.dense else args.resize)
            self.tower = tflite.tower(self.lite, images, labels) if self.lite else \
                model.tower(self.model, images, labels, flip_average=args.tta == "flip",
                            dense_scales=args.scales if args.dense else None)
            # the images as the network saw them, back in RGB 0..255
            pixels = input_data.unprocess_batch(images, nets.get(self.model["arch"]).preprocess)
            self.add_details(args.errors, pixels)
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in source.image_names(args.data_dir, args.split, val_size,
                                                   **options)]

    def run(self, checkpoint):
        """``(global_step, SplitResult)`` of the checkpoint over the whole split."""
        if self.lite:  # (the TFLite model: no variables in the graph)
            self.averaged = None
            with tf1.Session(graph=self.graph, config=self.config) as session:
                return tflite.source_step(self.lite), model.run_split(
                    session, self.iterator, self.tower, self.details)
        with self.graph.as_default():
            mismatch = runs.checkpoint_mismatch(checkpoint, tf1.global_variables())
        if mismatch:
            raise cli.UsageError(f"{checkpoint} does not fit a {self.model['arch']} "
                                 f"(config.json says so) graph: {mismatch}")
        with tf1.Session(graph=self.graph, config=self.config) as session:
            self.averaged = model.load_checkpoint(session, checkpoint, self.use_averages)
            if self.averaged:
                print(f"{checkpoint}: evaluating the moving averages of its weights (--no-ema "
                      "for the weights themselves)")
            result = model.run_split(session, self.iterator, self.tower, self.details)
            return int(session.run(self.global_step)), result


def watch(args):
    """Evaluate each new checkpoint of LOG_DIR/train as training writes it, until Ctrl-C."""
    train_dir = runs.RunDir(args.log_dir).train
    if not os.path.isdir(args.log_dir):
        raise cli.UsageError(f"--log-dir {args.log_dir} does not exist; give the --log-dir of "
                             "the training run to watch")
    evaluator = None
    print(f"Watching {train_dir} for new checkpoints (Ctrl-C to stop).", flush=True)
    try:
        for checkpoint in tf1.train.checkpoints_iterator(train_dir):
            evaluator = evaluator or Evaluator(args, runs.config_for(checkpoint, args.log_dir))
            reports.report(args, checkpoint, *evaluator.run(checkpoint), evaluator.class_names,
                   evaluator.files, evaluator.averaged)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("Stopped watching.")
    return 0


def evaluate(args):
    devices.session_config(args.precision, args.xla)  # fails now on a precision it cannot run
    if args.watch:
        return watch(args)
    if args.model:
        lite = tflite.load(args.model)
        evaluator = Evaluator(args, tflite.run_config(lite), lite)
        reports.report(args, lite.path, *evaluator.run(lite.path), evaluator.class_names,
               evaluator.files, evaluator.averaged)
        return 0
    checkpoint = runs.find_checkpoint(args.log_dir, args.checkpoint, args.best)
    evaluator = Evaluator(args, runs.config_for(checkpoint, args.log_dir))
    reports.report(args, checkpoint, *evaluator.run(checkpoint), evaluator.class_names,
           evaluator.files, evaluator.averaged)
    return 0


def main(argv=None):
    return cli.run_main("evaluate.py", evaluate, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

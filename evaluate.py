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

import dataclasses
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
    return cli.freeze(args)


def dataset_of(cfg, config):
    """--dataset, or else the data set the run trained on."""
    return cfg.dataset or config["runs"][-1].get("dataset", "cifar10")


def resolve(flags, config):
    """The evaluation's configuration, frozen: the checked ``flags`` (``parse_args``) completed
    from the run's ``config`` (its config.json, or a TFLite model's) where they leave a value to
    it: the images are cut to their boxes (--crop-roi) when the run's were, on its data set;
    --dense applies the network at --scales (default: its image size) and every other image is
    resized as --resize says, else as the run's were (squash for a run that does not say).
    With --codes (no images), the flags as they are."""
    if flags.codes:
        return flags
    last = config["runs"][-1]
    crop_roi = flags.crop_roi
    if dataset_of(flags, config) == last.get("dataset") and last.get("crop_roi"):
        crop_roi = True  # evaluate the images as the run saw them
    scales, resize = flags.scales, flags.resize
    if flags.dense:  # the whole image at each scale
        scales = scales or [config["model"]["image_size"]]
        try:
            model.check_dense(config["model"], scales)
        except ValueError as e:
            raise cli.UsageError(f"--dense: {e}") from None
    else:
        resize = resize or last.get("resize") or "squash"
    return dataclasses.replace(flags, crop_roi=crop_roi, scales=scales, resize=resize)


class Evaluator:
    """The evaluation graph of one model, reusable for several checkpoints; ``cfg`` is the
    evaluation's configuration (``resolve``)."""

    def __init__(self, cfg, config, lite=None):
        self.cfg, self.model, self.lite = cfg, config["model"], lite
        self.graph = tf.Graph()
        if cfg.codes:
            self.files = self.codes_input(cfg, config)
        else:
            self.files = self.images_input(cfg, config)
        self.config = devices.session_config(cfg.precision, cfg.xla)
        self.use_averages = not cfg.no_ema

    def add_details(self, errors, pixels=None):
        """What the report needs beyond top-1: each image's probability and, with more than 5
        classes, its top 5 classes; the ``errors`` most confident mistakes (with ``pixels``,
        the input images as RGB 0..255, their pixels)."""
        top_k = 5 if self.model["num_classes"] > 5 else 0
        self.details = model.split_details(self.tower, top_k, errors, pixels)

    def codes_input(self, cfg, config):
        """The head alone, on the codes of --split; the split's file names."""
        manifest = codes.read_manifest(cfg.codes)
        made = {"arch": manifest["network"], "codes_layer": manifest["layer"],
                "image_size": manifest["image_size"]}
        if not self.model.get("head"):
            raise cli.UsageError(f"--codes: the run in {cfg.log_dir} trained a network on "
                                 "images, not a head on codes; evaluate it without --codes")
        differ = [f"{k} {v!r} (the run's: {self.model[k]!r})" for k, v in made.items()
                  if self.model[k] != v]
        trained_on = config.get("codes", {}).get("weights_sha256")
        if trained_on and trained_on != manifest.get("weights_sha256"):
            differ.append("another weights file")
        if differ or manifest["class_names"] != config.get("class_names"):
            raise cli.UsageError(f"--codes {cfg.codes} are not codes the head of "
                                 f"{cfg.log_dir} reads: {'; '.join(differ) or 'other classes'}"
                                 "; make them with extract_codes.py as for its training")
        self.class_names = manifest["class_names"]
        values, labels, files = codes.load(cfg.codes, cfg.split,
                                           num_classes=len(manifest["class_names"]))
        with self.graph.as_default():
            inputs, labels, self.iterator = model.inputs(
                lambda: codes.dataset(values, labels, cfg.batch_size), initializable=True)
            self.tower = model.tower(self.model, inputs, labels, codes=True)
            self.add_details(cfg.errors)  # (codes: no pixels)
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in files]

    def images_input(self, cfg, config):
        """The network on the images of --split; the split's file names."""
        dataset = dataset_of(cfg, config)
        source = input_data.SOURCES[dataset]
        options = input_data.data_options(cfg, dataset)
        mirrors = source.mirrors(cfg.data_dir, **options) if cfg.tta == "flip" else None
        changed = [c for c, m in enumerate(mirrors or []) if m != c]
        if changed:  # (None: every class is its own mirror)
            raise cli.UsageError(f"--tta flip averages each image with its mirror image, but a "
                                 f"mirror changes {len(changed)} of the {len(mirrors)} classes "
                                 f"of --dataset {dataset} (a mirrored 'keep left' is a 'keep "
                                 "right', a mirrored 2 no digit); evaluate without --tta flip")
        names = source.class_names(cfg.data_dir)
        trained = config.get("class_names") or names
        if names != trained:  # labels are positions in the sorted class folders
            raise cli.UsageError(f"{cfg.data_dir} has the classes {', '.join(names)}; the run "
                                 f"was trained on {', '.join(trained)}: evaluate on images of "
                                 "the same classes")
        self.class_names = trained
        source.validate(cfg.data_dir, cfg.split, **options)
        val_size = config["runs"][-1]["val_size"]
        with self.graph.as_default():
            images, labels, self.iterator = model.split_input(
                self.model, source, cfg.data_dir, cfg.split, cfg.batch_size, val_size,
                options, initializable=True,
                resize=input_data.KEEP if cfg.dense else cfg.resize)
            self.tower = tflite.tower(self.lite, images, labels) if self.lite else \
                model.tower(self.model, images, labels, flip_average=cfg.tta == "flip",
                            dense_scales=cfg.scales if cfg.dense else None)
            # the images as the network saw them, back in RGB 0..255
            pixels = input_data.unprocess_batch(images, nets.get(self.model["arch"]).preprocess)
            self.add_details(cfg.errors, pixels)
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in source.image_names(cfg.data_dir, cfg.split, val_size,
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


def watch(flags):
    """Evaluate each new checkpoint of LOG_DIR/train as training writes it, until Ctrl-C."""
    train_dir = runs.RunDir(flags.log_dir).train
    if not os.path.isdir(flags.log_dir):
        raise cli.UsageError(f"--log-dir {flags.log_dir} does not exist; give the --log-dir of "
                             "the training run to watch")
    evaluator = None
    print(f"Watching {train_dir} for new checkpoints (Ctrl-C to stop).", flush=True)
    try:
        for checkpoint in tf1.train.checkpoints_iterator(train_dir):
            if evaluator is None:
                config = runs.config_for(checkpoint, flags.log_dir)
                evaluator = Evaluator(resolve(flags, config), config)
            reports.report(evaluator.cfg, checkpoint, *evaluator.run(checkpoint),
                           evaluator.class_names, evaluator.files, evaluator.averaged)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("Stopped watching.")
    return 0


def evaluate(flags):
    devices.session_config(flags.precision, flags.xla)  # fails now on a precision it cannot run
    if flags.watch:
        return watch(flags)
    if flags.model:
        lite = tflite.load(flags.model)
        config = tflite.run_config(lite)
        evaluator = Evaluator(resolve(flags, config), config, lite)
        reports.report(evaluator.cfg, lite.path, *evaluator.run(lite.path),
                       evaluator.class_names, evaluator.files, evaluator.averaged)
        return 0
    checkpoint = runs.find_checkpoint(flags.log_dir, flags.checkpoint, flags.best)
    config = runs.config_for(checkpoint, flags.log_dir)
    evaluator = Evaluator(resolve(flags, config), config)
    reports.report(evaluator.cfg, checkpoint, *evaluator.run(checkpoint), evaluator.class_names,
                   evaluator.files, evaluator.averaged)
    return 0


def main(argv=None):
    return cli.run_main("evaluate.py", evaluate, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

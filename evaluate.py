"""Measure a trained checkpoint on the CIFAR-10 test set: every test image exactly once.

    python evaluate.py                   # the latest checkpoint in logs/train
    python evaluate.py --best            # the best one by validation accuracy (logs/best)
    python evaluate.py --checkpoint logs/train/model.ckpt-5000
    python evaluate.py --watch           # each new checkpoint as training writes it
    python evaluate.py --codes codes/flowers --log-dir logs/flowers   # a head on cached codes

Prints the number of images evaluated, the accuracy, per-class accuracy and the confusion matrix;
writes a confusion-matrix PNG and a JSON report to logs/eval/ (named by the checkpoint's step, so
nothing is overwritten) and an accuracy summary that TensorBoard shows at that step. The network
is rebuilt from the config.json that train_and_val.py saved next to the checkpoints.
"""

import itertools
import os
import sys

import cli

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("evaluate.py")

# (the heavy imports come after that)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import codes  # noqa: E402
import devices  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import runs  # noqa: E402

tf1 = tf.compat.v1


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "dataset", "data-dir", "skip-bad-images", "crop-roi", "log-dir",
                  dataset=None,
                  choices={"dataset": tuple(input_data.SOURCES)})
    which = p.add_mutually_exclusive_group()
    cli.add_flags(which, "checkpoint", "best")
    cli.add_flags(p, "split", "batch-size", "precision", "xla", "verbose", batch_size=250)
    p.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="test-time augmentation: 'flip' averages the class probabilities of each "
                        "image and its mirror image")
    p.add_argument("--no-ema", action="store_true",
                   help="use the trained weights even when the checkpoint holds their moving "
                        "averages (a run with --ema-decay; by default those are used)")
    p.add_argument("--watch", action="store_true",
                   help="evaluate each new checkpoint in train/ as it appears, until Ctrl-C")
    p.add_argument("--codes", metavar="CODES_DIR",
                   help="evaluate a head trained with train_and_val.py --codes on the cached "
                        "codes of --split there instead of on the images")
    args = p.parse_args(argv)
    if args.watch and (args.checkpoint or args.best):
        p.error("--watch follows train/; it does not go with --checkpoint or --best")
    if args.codes and (args.tta != "none" or args.skip_bad_images or args.crop_roi
                       or args.dataset):
        p.error("--tta, --skip-bad-images, --crop-roi and --dataset need images; they do not "
                "go with --codes")
    return args


def dataset_of(args, config):
    """--dataset, or else the data set the run trained on."""
    return args.dataset or config["runs"][-1].get("dataset", "cifar10")


class Evaluator:
    """The evaluation graph of one model, reusable for several checkpoints."""

    def __init__(self, args, config):
        self.model = config["model"]
        self.graph = tf.Graph()
        if args.codes:
            self.files = self.codes_input(args, config)
        else:
            self.files = self.images_input(args, config)
        self.config = devices.session_config(args.precision, args.xla)
        self.use_averages = not args.no_ema

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
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in files]

    def images_input(self, args, config):
        """The network on the images of --split; the split's file names."""
        dataset = dataset_of(args, config)
        source = input_data.SOURCES[dataset]
        if dataset == config["runs"][-1].get("dataset") and config["runs"][-1].get("crop_roi"):
            args.crop_roi = True  # evaluate the images as the run saw them
        options = input_data.data_options(args, dataset)
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
                options, initializable=True)
            self.tower = model.tower(self.model, images, labels,
                                     flip_average=args.tta == "flip")
            self.global_step = tf1.train.get_or_create_global_step()
        return [str(f) for f in source.image_names(args.data_dir, args.split, val_size,
                                                   **options)]

    def run(self, checkpoint):
        """``(global_step, SplitResult)`` of the checkpoint over the whole split."""
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
            result = model.run_split(session, self.iterator, self.tower)
            return int(session.run(self.global_step)), result


def confusion_matrix(labels, predictions, num_classes):
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion(matrix, names, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
           yticklabels=names, xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    threshold = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, count, ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_stem(args, checkpoint, how, evaluation):
    """LOG_DIR/eval/SPLIT[-codes][-tta-flip][-no-ema]-model.ckpt-N, or with -2, -3, ... where
    a report of that name is of another evaluation (other data, say): a report is never
    replaced by a different one, only by the same evaluation made again."""
    eval_dir = runs.RunDir(args.log_dir).eval
    base = os.path.join(eval_dir, f"{args.split}{how}-{os.path.basename(checkpoint)}")
    for n in itertools.count(1):
        stem = base if n == 1 else f"{base}-{n}"
        try:
            earlier = cli.read_json(stem + ".json")
        except cli.UsageError:  # (unreadable: not ours to replace)
            continue
        if earlier is None and not os.path.exists(stem + ".png"):
            return stem
        if isinstance(earlier, dict) and earlier.get("evaluation", evaluation) == evaluation:
            return stem  # (a report of a version before the key: replaced, as it was then)


def report(args, checkpoint, step, result, names, files, averaged=False):
    """Print the figures of ``result``; write the confusion matrix PNG, the JSON report (with
    each image's file, label and predicted class) and the TensorBoard summaries to
    LOG_DIR/eval. ``names``: the class names, in label order; ``files``: the images'."""
    loss = result.loss
    matrix = confusion_matrix(result.labels, result.predictions, len(names))
    count = int(matrix.sum())
    accuracy = float(np.trace(matrix) / count)
    per_class = {name: float(matrix[i, i] / max(1, matrix[i].sum()))
                 for i, name in enumerate(names)}
    print(f"{checkpoint} (step {step}): evaluated {count} {args.split} images")
    print(f"accuracy {accuracy:.4f} ({int(np.trace(matrix))}/{count}), loss {loss:.4f}")
    width = max(len(n) for n in names)
    for name, value in per_class.items():
        print(f"  {name:{width}s} {value:.4f}")
    print("confusion matrix (rows: true, columns: predicted):")
    print("\n".join("  " + " ".join(f"{c:5d}" for c in row) for row in matrix))

    eval_dir = runs.RunDir(args.log_dir).eval
    os.makedirs(eval_dir, exist_ok=True)
    how = ("-codes" if args.codes else "") + ("-tta-flip" if args.tta == "flip" else "") + (
        "-no-ema" if args.no_ema else "")
    # what makes two evaluations of one checkpoint and split the same
    evaluation = {"data": os.path.abspath(args.codes or args.data_dir),
                  "dataset": getattr(args, "dataset", None), "moving_averages": averaged,
                  "crop_roi": bool(getattr(args, "crop_roi", False)), "tta": args.tta,
                  "precision": getattr(args, "precision", "fp32")}
    stem = report_stem(args, checkpoint, how, evaluation)
    plot_confusion(matrix, names, f"{args.split}: accuracy {accuracy:.4f} at step {step}",
                   stem + ".png")
    cli.write_json(stem + ".json", {
        "checkpoint": checkpoint, "global_step": step, "split": args.split, "images": count,
        "evaluation": evaluation,
        "accuracy": accuracy, "loss": loss, "per_class_accuracy": per_class,
        "class_names": names, "confusion_matrix": matrix.tolist(),
        "images_evaluated": {"files": list(files), "labels": result.labels.tolist(),
                             "predictions": result.predictions.tolist()}})
    runs.add_scalars(tf1.summary.FileWriterCache.get(eval_dir), step,
                      **{f"{args.split}/accuracy": accuracy, f"{args.split}/loss": loss})
    print(f"wrote {stem}.png and {stem}.json")
    return accuracy


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
            report(args, checkpoint, *evaluator.run(checkpoint), evaluator.class_names,
                   evaluator.files, evaluator.averaged)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("Stopped watching.")
    return 0


def evaluate(args):
    devices.session_config(args.precision, args.xla)  # fails now on a precision it cannot run
    if args.watch:
        return watch(args)
    checkpoint = runs.find_checkpoint(args.log_dir, args.checkpoint, args.best)
    evaluator = Evaluator(args, runs.config_for(checkpoint, args.log_dir))
    report(args, checkpoint, *evaluator.run(checkpoint), evaluator.class_names,
           evaluator.files, evaluator.averaged)
    return 0


def main(argv=None):
    return cli.run_main("evaluate.py", evaluate, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

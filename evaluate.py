"""Measure a trained checkpoint on the CIFAR-10 test set: every test image exactly once.

    python evaluate.py                   # the latest checkpoint in logs/train
    python evaluate.py --best            # the best one by validation accuracy (logs/best)
    python evaluate.py --checkpoint logs/train/model.ckpt-5000
    python evaluate.py --watch           # each new checkpoint as training writes it

Prints the number of images evaluated, the accuracy, per-class accuracy and the confusion matrix;
writes a confusion-matrix PNG and a JSON report to logs/eval/ (named by the checkpoint's step, so
nothing is overwritten) and an accuracy summary that TensorBoard shows at that step. The network
is rebuilt from the config.json that train_and_val.py saved next to the checkpoints.
"""

import os
import sys

import numpy as np
import tensorflow as tf

import input_data
import tools
import train_and_val
import vgg16

tf1 = tf.compat.v1


def parse_args(argv=None):
    p = tools.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data", help="folder holding cifar-10-batches-bin/")
    p.add_argument("--log-dir", default="logs",
                   help="the training run's log dir: checkpoints in train/ and best/, results "
                        "go to eval/")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="a checkpoint prefix such as "
                                            "logs/train/model.ckpt-5000 (default: the latest)")
    which.add_argument("--best", action="store_true",
                       help="the checkpoint with the best validation accuracy")
    p.add_argument("--split", choices=("test", "val", "train", "trainval"), default="test",
                   help="which images to evaluate ('val' is the training run's held-out part)")
    p.add_argument("--batch-size", type=int, default=250, help="images per evaluation batch")
    p.add_argument("--precision", choices=tools.PRECISIONS, default="fp32",
                   help="fp32, bf16 (CPUs with bfloat16 instructions) or fp16 (GPUs)")
    p.add_argument("--xla", action="store_true", help="compile the graph with XLA")
    p.add_argument("--watch", action="store_true",
                   help="evaluate each new checkpoint in train/ as it appears, until Ctrl-C")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if args.watch and (args.checkpoint or args.best):
        p.error("--watch follows train/; it does not go with --checkpoint or --best")
    return args


def find_checkpoint(args):
    if args.checkpoint:
        if not tf1.train.checkpoint_exists(args.checkpoint):
            raise tools.UsageError(f"--checkpoint {args.checkpoint}: no such checkpoint (give "
                                   "the prefix, e.g. logs/train/model.ckpt-5000)")
        return args.checkpoint
    folder = os.path.join(args.log_dir, "best" if args.best else "train")
    checkpoint = tf1.train.latest_checkpoint(folder)
    if not checkpoint:
        raise tools.UsageError(f"no checkpoint in {folder}; train first (python "
                               "train_and_val.py) or point --log-dir at a training run")
    return checkpoint


def read_config(args, checkpoint):
    """The training run's configuration: next to the checkpoint, in its run's train/ (for a
    best/ checkpoint), else in LOG_DIR/train."""
    folder = os.path.dirname(checkpoint)
    for folder in (folder, os.path.join(os.path.dirname(folder), "train"),
                   os.path.join(args.log_dir, "train")):
        config = train_and_val.read_json(os.path.join(folder, train_and_val.CONFIG_FILE))
        if config:
            return config
    raise tools.UsageError(f"no {train_and_val.CONFIG_FILE} next to {checkpoint} or in "
                           f"{os.path.join(args.log_dir, 'train')}; evaluate.py needs the "
                           "configuration train_and_val.py saved")


class Evaluator:
    """The evaluation graph of one model, reusable for several checkpoints."""

    def __init__(self, args, config):
        model = config["model"]
        self.val_size = config["runs"][-1]["val_size"]
        self.graph = tf.Graph()
        with self.graph.as_default():
            with tf.device("/cpu:0"):
                data = input_data.read_cifar10(args.data_dir, args.split, args.batch_size,
                                               image_size=model["image_size"],
                                               val_size=self.val_size)
                self.iterator = tf1.data.make_initializable_iterator(data)
                images, self.labels = self.iterator.get_next()
            logits, _ = vgg16.build(images, model["num_classes"], model["arch"],
                                    batch_norm=model["batch_norm"])
            self.predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
            self.losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=self.labels, logits=logits)
            self.global_step = tf1.train.get_or_create_global_step()
            self.saver = tf1.train.Saver()
        self.model = model
        self.config = tools.session_config(args.precision, args.xla)

    def run(self, checkpoint):
        """``(global_step, labels, predictions, mean loss)`` over the whole split."""
        with self.graph.as_default():
            mismatch = tools.checkpoint_mismatch(checkpoint, tf1.global_variables())
        if mismatch:
            raise tools.UsageError(f"{checkpoint} does not fit a {self.model['arch']} "
                                   f"(config.json says so) graph: {mismatch}")
        labels, predictions, losses = [], [], []
        with tf1.Session(graph=self.graph, config=self.config) as session:
            self.saver.restore(session, checkpoint)
            session.run(self.iterator.initializer)
            while True:
                try:
                    batch = session.run([self.labels, self.predictions, self.losses])
                except tf.errors.OutOfRangeError:
                    break
                for store, values in zip((labels, predictions, losses), batch):
                    store.append(values)
            step = int(session.run(self.global_step))
        return (step, np.concatenate(labels), np.concatenate(predictions),
                float(np.concatenate(losses).mean()))


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


def report(args, checkpoint, step, labels, predictions, loss):
    names = input_data.class_names(args.data_dir)
    matrix = confusion_matrix(labels, predictions, len(names))
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

    eval_dir = os.path.join(args.log_dir, "eval")
    os.makedirs(eval_dir, exist_ok=True)
    stem = os.path.join(eval_dir, f"{args.split}-{os.path.basename(checkpoint)}")
    plot_confusion(matrix, names, f"{args.split}: accuracy {accuracy:.4f} at step {step}",
                   stem + ".png")
    train_and_val.write_json(stem + ".json", {
        "checkpoint": checkpoint, "global_step": step, "split": args.split, "images": count,
        "accuracy": accuracy, "loss": loss, "per_class_accuracy": per_class,
        "class_names": names, "confusion_matrix": matrix.tolist()})
    writer = tf1.summary.FileWriterCache.get(eval_dir)
    writer.add_summary(tf1.Summary(value=[
        tf1.Summary.Value(tag=f"{args.split}/accuracy", simple_value=accuracy),
        tf1.Summary.Value(tag=f"{args.split}/loss", simple_value=loss)]), step)
    writer.flush()
    print(f"wrote {stem}.png and {stem}.json")
    return accuracy


def evaluate(args):
    if args.watch:
        train_dir = os.path.join(args.log_dir, "train")
        evaluator = None
        print(f"Watching {train_dir} for new checkpoints (Ctrl-C to stop).", flush=True)
        try:
            for checkpoint in tf1.train.checkpoints_iterator(train_dir):
                evaluator = evaluator or Evaluator(args, read_config(args, checkpoint))
                report(args, checkpoint, *evaluator.run(checkpoint))
                sys.stdout.flush()
        except KeyboardInterrupt:
            print("Stopped watching.")
        return 0
    checkpoint = find_checkpoint(args)
    evaluator = Evaluator(args, read_config(args, checkpoint))
    report(args, checkpoint, *evaluator.run(checkpoint))
    return 0


def main(argv=None):
    args = parse_args(argv)
    tf1.disable_eager_execution()
    try:
        tools.session_config(args.precision, args.xla)
        input_data.validate(args.data_dir, args.split)
        return evaluate(args)
    except (tools.UsageError, input_data.DataError) as e:
        print(f"evaluate.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

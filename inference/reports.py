"""evaluate.py's report of one evaluation: the figures (accuracy, top-5, per-class precision,
recall and F1 with their macro averages, the confusion matrix, the most confident mistakes),
printed, drawn (the confusion matrix and a sheet of mistakes, PNG) and written (JSON, and an
accuracy summary TensorBoard shows at the checkpoint's step) to LOG_DIR/eval/.

Where a ratio is 0/0 it counts as 0: a class never predicted has precision 0, a class with no
image in the split recall 0, and a row of the normalized matrix with no image is all 0. The
macro averages are the unweighted means over the classes that occur in the split, as labels or
as predictions (scikit-learn's default), so a class the split lacks does not lower them.
"""

import itertools
import os

import numpy as np
import tensorflow as tf

from common import cli
from common import json_files
from inference import tflite
from training import runs

tf1 = tf.compat.v1


def confusion_matrix(labels, predictions, num_classes):
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def ratio(numerator, denominator):
    """numerator / denominator element by element, 0 where the denominator is 0."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator != 0)


def normalized(matrix):
    """Each row of the confusion matrix divided by its sum (a row of no image: all 0)."""
    return ratio(matrix, matrix.sum(axis=1, keepdims=True))


def class_metrics(matrix):
    """``(precision, recall, f1, support, macro)`` of each class from the confusion matrix,
    0 for 0/0; ``macro``: the unweighted means of the three over the classes that occur in the
    split, as labels or as predictions."""
    right, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = ratio(right, predicted), ratio(right, support)
    f1 = ratio(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted > 0)
    macro = {name: float(values[present].mean()) if present.any() else 0.0
             for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
    return precision, recall, f1, support, macro


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion(matrix, names, title, path, fractions=False):
    """The matrix as a picture, its counts (``fractions``: values 0..1) written in the cells."""
    plt = pyplot()
    many = len(names) >= 20  # (43 traffic signs: small cells, only the non-zero ones written)
    side = max(8, 0.36 * len(names))
    fig, ax = plt.subplots(figsize=(side, side * 7 / 8))
    image = ax.imshow(matrix, cmap="Blues", **(dict(vmin=0, vmax=1) if fractions else {}))
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names,
           yticklabels=names, xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    threshold = matrix.max() / 2
    for (i, j), value in np.ndenumerate(matrix):
        if many and not value:
            continue
        text = str(value)
        if fractions:  # (0.25, or .25 in a small cell; 0 and 1 as they are)
            text = f"{value:.2f}".lstrip("0" if many else "") if 0 < value < 1 else f"{value:g}"
        ax.text(j, i, text, ha="center", va="center", fontsize=6 if many else 8,
                color="white" if value > threshold else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mistakes(mistakes, names, title, path):
    """A grid of the mistakes' images, each titled ``true -> predicted`` and the probability."""
    import math
    import textwrap

    plt = pyplot()
    columns = math.ceil(math.sqrt(len(mistakes)))
    rows = math.ceil(len(mistakes) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.6 * rows + 0.4),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, mistake in zip(axes.flat, mistakes):
        ax.imshow(mistake.pixels, interpolation="nearest")
        label = f"{names[mistake.label]} -> {names[mistake.prediction]}"
        if len(label) > 28:  # (long names: one a line, and cut only when longer than a line)
            label = "\n".join(textwrap.wrap(f"{names[mistake.label]} ->", 36)
                              + textwrap.wrap(names[mistake.prediction], 36))
        ax.set_title(f"{label}\np = {mistake.probability:.4f}", fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_stem(cfg, checkpoint, how, evaluation):
    """LOG_DIR/eval/SPLIT[-codes][-tta-flip][-no-ema]-model.ckpt-N, or with -2, -3, ... where
    a report of that name is of another evaluation (other data, say): a report is never
    replaced by a different one, only by the same evaluation made again."""
    eval_dir = runs.RunDir(cfg.log_dir).eval
    name = tflite.report_name(checkpoint) if cfg.model else os.path.basename(checkpoint)
    base = os.path.join(eval_dir, f"{cfg.split}{how}-{name}")
    for n in itertools.count(1):
        stem = base if n == 1 else f"{base}-{n}"
        try:
            earlier = json_files.read_json(stem + ".json")
        except cli.UsageError:  # (unreadable: not ours to replace)
            continue
        if earlier is None and not os.path.exists(stem + ".png"):
            return stem
        if isinstance(earlier, dict) and earlier.get("evaluation", evaluation) == evaluation:
            return stem  # (a report of a version before the key: replaced, as it was then)


def figures(result, names, files, normalize=False, errors=0):
    """The report's figures of ``result`` in the JSON's order: accuracy, loss, per-class
    accuracy, top-5 accuracy (when ``result`` has top classes), per-class precision, recall,
    F1 and support with their macro averages, the confusion matrix (``normalize``: also with
    each row divided by its sum), the ``errors`` most confident mistakes (when asked) and each
    image's file, label, prediction, its probability and top 5."""
    matrix = confusion_matrix(result.labels, result.predictions, len(names))
    count = int(matrix.sum())
    precision, recall, f1, support, macro = class_metrics(matrix)
    found = {"accuracy": float(np.trace(matrix) / count), "loss": result.loss,
             "per_class_accuracy": dict(zip(names, map(float, recall)))}  # (= each recall)
    seen = {"files": list(files), "labels": result.labels.tolist(),
            "predictions": result.predictions.tolist()}
    if result.probabilities is not None:
        seen["probabilities"] = result.probabilities.tolist()
    if result.top_k is not None and result.top_k.shape[-1]:
        found["top5_accuracy"] = float((result.top_k == result.labels[:, None]).any(1).mean())
        seen["top5"] = result.top_k.tolist()
    found["per_class"] = [{"class": name, "precision": float(precision[i]),
                           "recall": float(recall[i]), "f1": float(f1[i]),
                           "support": int(support[i])} for i, name in enumerate(names)]
    found.update(macro_avg=macro, class_names=names, confusion_matrix=matrix.tolist())
    if normalize:
        found["confusion_matrix_normalized"] = normalized(matrix).tolist()
    if errors:
        found["errors"] = [{"index": m.index, "file": files[m.index], "label": m.label,
                            "prediction": m.prediction, "probability": m.probability}
                           for m in result.mistakes]
    found["images_evaluated"] = seen
    return found


def print_figures(found, heading):
    """The figures as the report prints them, under ``heading``."""
    names, matrix, count = found["class_names"], found["confusion_matrix"], found["images"]
    right = sum(matrix[i][i] for i in range(len(names)))
    print(heading)
    print(f"accuracy {found['accuracy']:.4f} ({right}/{count}), loss {found['loss']:.4f}")
    if "top5_accuracy" in found:
        print(f"top-5 accuracy {found['top5_accuracy']:.4f} "
              f"({round(found['top5_accuracy'] * count)}/{count})")
    width = max(len(n) for n in names)
    for name, value in found["per_class_accuracy"].items():
        print(f"  {name:{width}s} {value:.4f}")
    width = max(width, len("macro avg"))
    print("precision, recall, F1 and support of each class (0 where 0/0), macro averages:")
    print(f"  {'class':{width}s} precision recall     f1 support")
    for row in found["per_class"] + [{"class": "macro avg", **found["macro_avg"],
                                      "support": count}]:
        print(f"  {row['class']:{width}s} {row['precision']:9.4f} {row['recall']:6.4f} "
              f"{row['f1']:6.4f} {row['support']:7d}")
    print("confusion matrix (rows: true, columns: predicted):")
    print("\n".join("  " + " ".join(f"{c:5d}" for c in row) for row in matrix))
    if "confusion_matrix_normalized" in found:
        print("confusion matrix, each row divided by its sum:")
        print("\n".join("  " + " ".join(f"{c:5.3f}" for c in row)
                        for row in found["confusion_matrix_normalized"]))
    if found.get("errors"):
        print(f"{which_mistakes(len(found['errors']), count - right)} (probability, true -> "
              "predicted, file):")
        for error in found["errors"]:
            print(f"  {error['probability']:.4f}  {names[error['label']]} -> "
                  f"{names[error['prediction']]}  {error['file']}")


def report(cfg, checkpoint, step, result, names, files, averaged=False):
    """Print the figures of ``result``; write the confusion matrix PNG, the sheet of the most
    confident mistakes (STEM-errors.png), the JSON report (with each image's file, label,
    predicted class, its probability and, with more than 5 classes, its top 5) and the
    TensorBoard summaries to LOG_DIR/eval. ``cfg``: the evaluation's configuration
    (evaluate.py's); ``names``: the class names, in label order; ``files``: the images'."""
    found = {"images": result.count, **figures(result, names, files, cfg.normalize_confusion,
                                               cfg.errors)}
    print_figures(found, f"{checkpoint} (step {step}): evaluated {result.count} {cfg.split} "
                  "images")

    eval_dir = runs.RunDir(cfg.log_dir).eval
    os.makedirs(eval_dir, exist_ok=True)
    how = ("-codes" if cfg.codes else "") + ("-dense" if getattr(cfg, "dense", False) else "") \
        + ("-tta-flip" if cfg.tta == "flip" else "") + (
        "-no-ema" if cfg.no_ema else "")
    # what makes two evaluations of one checkpoint and split the same
    evaluation = {"data": os.path.abspath(cfg.codes or cfg.data_dir),
                  "dataset": getattr(cfg, "dataset", None), "moving_averages": averaged,
                  "crop_roi": bool(getattr(cfg, "crop_roi", False)), "tta": cfg.tta,
                  "resize": getattr(cfg, "resize", None),
                  "dense": cfg.scales if getattr(cfg, "dense", False) else None,
                  "precision": getattr(cfg, "precision", "fp32")}
    if getattr(cfg, "model", None):
        evaluation["tflite"] = os.path.abspath(checkpoint)
    stem = report_stem(cfg, checkpoint, how, evaluation)
    accuracy, loss = found["accuracy"], found["loss"]
    title = f"{cfg.split}: accuracy {accuracy:.4f} at step {step}"
    if cfg.normalize_confusion:
        plot_confusion(np.array(found["confusion_matrix_normalized"]), names,
                       title + " (rows normalized)", stem + ".png", fractions=True)
    else:
        plot_confusion(np.array(found["confusion_matrix"]), names, title, stem + ".png")
    write_mistakes(cfg, stem, step, result.mistakes, names,
                   int(np.sum(result.labels != result.predictions)))
    json_files.write_json(stem + ".json", {
        "checkpoint": checkpoint, "global_step": step, "split": cfg.split,
        "images": found.pop("images"), "evaluation": evaluation, **found})
    if not getattr(cfg, "model", None):  # (a TFLite model's figures: not the run's curve)
        runs.add_scalars(tf1.summary.FileWriterCache.get(eval_dir), step,
                         **{f"{cfg.split}/accuracy": accuracy, f"{cfg.split}/loss": loss})
    print(f"wrote {stem}.png and {stem}.json")
    return accuracy


def which_mistakes(shown, wrong):
    """'the 25 most confident of 40 mistakes', or 'all 3 mistakes'."""
    if shown == wrong:
        return f"all {wrong} mistakes" if wrong > 1 else "the one mistake"
    return f"the {shown} most confident of {wrong} mistakes"


def write_mistakes(cfg, stem, step, mistakes, names, wrong):
    """STEM-errors.png, the sheet of the most confident mistakes, when there are some to draw;
    one line on what was done. A sheet left by the report this one replaces (the same
    evaluation) goes when this one has none."""
    path = stem + "-errors.png"
    if mistakes and mistakes[0].pixels is not None:
        plot_mistakes(mistakes, names, f"{cfg.split}: {which_mistakes(len(mistakes), wrong)} "
                      f"at step {step}", path)
        print(f"wrote {path}: {which_mistakes(len(mistakes), wrong)}")
        return
    if os.path.exists(path):
        os.remove(path)
    if not cfg.errors:
        return
    if cfg.codes:
        print("no sheet of mistakes: --codes evaluates cached codes, which have no pixels")
    elif not wrong:
        print(f"no sheet of mistakes: every {cfg.split} image is classified right")

"""evaluate.py's report beyond accuracy: top-5 accuracy, precision, recall, F1 and support per
class with their macro averages, the most confident mistakes (listed, and drawn as the network
saw them), the normalized confusion matrix. Each figure of the report is checked against the
report's own per-image labels and predictions, computed here with NumPy.

tests/tiny_net.py trained for a few steps on 7 classes of small PNGs, two of them of one colour
(so that mistakes are certain), so the run and the evaluations take a few seconds.
"""

import json
import re
import types

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

import evaluate
import helpers
from helpers import call
from inference import reports
import input_data
import model
import nets
import tiny_net

tf1 = tf.compat.v1
CLASSES = ["a", "b", "c", "d", "e", "f"]
TWIN = "g"  # of the colour of "a"


@pytest.fixture(scope="module")
def tinynet():
    nets.register(tiny_net.NETWORK)  # (conftest.py keeps it registered for the session)


@pytest.fixture(scope="module")
def tiny_run(tinynet, tmp_path_factory):
    """(images, log dir): tinynet trained from scratch for 12 steps on 7 classes."""
    root = tmp_path_factory.mktemp("report")
    helpers.write_folder(root / "images", CLASSES, per_class=10)
    helpers.write_folder(root / "images", [TWIN], per_class=10, seed=1)  # colour of class 0
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", root / "images",
                  "--arch", "tinynet", "--pretrained", "none", "--max-steps", 12,
                  "--batch-size", 8, "--val-size", 5, "--learning-rate", 0.05,
                  "--log-every", 100, "--val-every", 100, "--log-dir", root / "logs", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "images", root / "logs"


def figures(labels, predictions, num_classes):
    """precision, recall, F1, support of each class and their macro averages over the classes
    that occur (as labels or predictions), 0 for 0/0: computed here, not by evaluate.py."""
    rows = []
    for k in range(num_classes):
        hits = int(np.sum((labels == k) & (predictions == k)))
        predicted, support = int(np.sum(predictions == k)), int(np.sum(labels == k))
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1, support, bool(predicted or support)))
    present = [r for r in rows if r[4]]
    macro = {name: float(np.mean([r[i] for r in present]))
             for i, name in enumerate(("precision", "recall", "f1"))}
    return rows, macro


def test_the_report_agrees_with_its_own_per_image_predictions(tiny_run, tmp_path):
    images, logs = tiny_run
    result = call("evaluate.py", "--data-dir", images, "--log-dir", logs, "--split", "train",
                  "--errors", 10, "--normalize-confusion", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stem = logs / "eval" / "train-model.ckpt-12"
    report = json.loads(open(f"{stem}.json").read())
    seen = report["images_evaluated"]
    labels, predictions = np.array(seen["labels"]), np.array(seen["predictions"])
    names = CLASSES + [TWIN]
    assert report["class_names"] == names and len(labels) == report["images"] > 40

    # precision, recall, F1, support: as computed here from the per-image lists
    rows, macro = figures(labels, predictions, len(names))
    assert [entry["class"] for entry in report["per_class"]] == names
    for entry, (precision, recall, f1, support, _) in zip(report["per_class"], rows):
        assert entry["support"] == support
        assert entry["precision"] == pytest.approx(precision, abs=1e-12)
        assert entry["recall"] == pytest.approx(recall, abs=1e-12)
        assert entry["f1"] == pytest.approx(f1, abs=1e-12)
    assert report["macro_avg"] == pytest.approx(macro, abs=1e-12)
    for name, entry in zip(names, report["per_class"]):
        assert re.search(rf"^  {name}\s+{entry['precision']:.4f} {entry['recall']:.4f} "
                         rf"{entry['f1']:.4f}\s+{entry['support']}$", result.stdout, re.M)
    assert re.search(rf"^  macro avg\s+{macro['precision']:.4f} {macro['recall']:.4f} "
                     rf"{macro['f1']:.4f}\s+{len(labels)}$", result.stdout, re.M)
    # (the existing per-class accuracy stays)
    assert report["per_class_accuracy"]["a"] == pytest.approx(rows[0][1])

    # top 5 of 7 classes: five distinct classes, the prediction first
    top5 = np.array(seen["top5"])
    assert top5.shape == (len(labels), 5)
    assert all(len(set(row)) == 5 for row in top5.tolist())
    np.testing.assert_array_equal(top5[:, 0], predictions)
    in_top5 = (top5 == labels[:, None]).any(axis=1)
    assert report["top5_accuracy"] == pytest.approx(in_top5.mean(), abs=1e-12)
    assert report["top5_accuracy"] >= report["accuracy"]
    assert f"top-5 accuracy {in_top5.mean():.4f} ({in_top5.sum()}/{len(labels)})" \
        in result.stdout

    # the mistakes: wrong ones only, most probable first, the 10 most probable of all
    wrong = np.flatnonzero(labels != predictions)
    assert len(wrong) > 0  # (the twin classes see to it)
    errors = report["errors"]
    assert len(errors) == min(10, len(wrong))
    probabilities = np.array(seen["probabilities"])
    assert np.all((probabilities > 1 / len(names) - 1e-6) & (probabilities <= 1 + 1e-6))
    for error in errors:
        i = error["index"]
        assert error["label"] == labels[i] != error["prediction"] == predictions[i]
        assert error["file"] == seen["files"][i]
        assert error["probability"] == pytest.approx(probabilities[i], rel=1e-6)
    shown = [e["probability"] for e in errors]
    assert shown == sorted(shown, reverse=True)
    left_out = np.setdiff1d(wrong, [e["index"] for e in errors])
    assert np.all(probabilities[left_out] <= shown[-1] + 1e-7)
    for error in errors[:3]:
        assert (f"  {error['probability']:.4f}  {names[error['label']]} -> "
                f"{names[error['prediction']]}  {error['file']}") in result.stdout

    # the sheet: a readable PNG beside the confusion matrix
    sheet = matplotlib.image.imread(str(stem) + "-errors.png")
    assert sheet.ndim == 3 and sheet.shape[0] > 200 and sheet.shape[1] > 200
    assert f"wrote {stem}-errors.png" in result.stdout
    assert f"wrote {stem}.png and {stem}.json" in result.stdout

    # the normalized matrix: each row of an image or more sums to 1; the counts stay
    counts = np.array(report["confusion_matrix"])
    assert counts.dtype.kind == "i" and counts.sum() == len(labels)
    fractions = np.array(report["confusion_matrix_normalized"])
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(fractions, counts / counts.sum(axis=1, keepdims=True))
    assert "confusion matrix, each row divided by its sum:" in result.stdout


def test_mistakes_keep_the_pixels_the_network_saw_across_batches(tinynet):
    """run_split's running choice of the most confident mistakes equals a sort of the whole
    split, and each keeps its image's pixels, unprocessed from the network's input."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (23, 16, 16, 3)).astype(np.uint8)
    labels = rng.integers(0, 7, 23).astype(np.int32)
    config = {"arch": "tinynet", "batch_norm": False, "image_size": 16, "num_classes": 7}
    preprocess = nets.get("tinynet").preprocess
    with tf.Graph().as_default():
        images, batch_labels, iterator = model.inputs(
            lambda: tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(5).map(
                lambda x, y: (input_data.preprocess_batch(tf.cast(x, tf.float32), preprocess),
                              y)), initializable=True)
        tower = model.tower(config, images, batch_labels)
        details = model.split_details(tower, 5, 4, input_data.unprocess_batch(images,
                                                                              preprocess))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            result = model.run_split(session, iterator, tower, details)
            session.run(iterator.initializer)
            logits = np.concatenate(list(model.each_batch(session, tower.logits)))
    assert result.count == 23
    np.testing.assert_array_equal(result.top_k, np.argsort(-logits, axis=1)[:, :5])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(result.probabilities, (shifted / shifted.sum(1, keepdims=True))
                               .max(axis=1), rtol=1e-5)
    wrong = np.flatnonzero(result.labels != result.predictions)
    expected = sorted(wrong, key=lambda i: (-result.probabilities[i], i))[:4]
    assert expected and [m.index for m in result.mistakes] == expected
    for m in result.mistakes:
        np.testing.assert_array_equal(m.pixels, pixels[m.index])
        assert (m.label, m.prediction) == (labels[m.index], result.predictions[m.index])


def report(tmp_path, flags, *result, names, files):
    """reports.report of a SplitResult made here, at step 7, in a graph of its own (for its
    summary writer)."""
    args = evaluate.parse_args(["--log-dir", str(tmp_path / "logs"), "--data-dir",
                                str(tmp_path), *flags])
    with tf.Graph().as_default():
        reports.report(args, "model.ckpt-7", 7, model.SplitResult(*result), names, files)


def test_no_sheet_without_pixels_or_without_mistakes_and_no_top5_with_5_classes(tmp_path,
                                                                                 capsys):
    names = ["a", "b", "c", "d", "e"]
    labels = np.array([0, 1, 2, 2, 4, 4], np.int32)
    wrong = np.array([0, 1, 2, 2, 0, 0], np.int32)  # "e" taken for "a"; no "d" at all
    losses, probabilities = np.full(6, 0.5, np.float32), np.full(6, 0.6, np.float32)
    stem = tmp_path / "logs" / "eval" / "test-model.ckpt-7"
    files = [f"{n}.png" for n in range(6)]

    mistake = model.Mistake(5, 4, 0, 0.6, np.zeros((16, 16, 3), np.uint8))
    report(tmp_path, [], labels, wrong, losses, probabilities, None, (mistake,), names=names,
           files=files)
    assert (tmp_path / "logs" / "eval" / "test-model.ckpt-7-errors.png").exists()
    written = json.loads(open(f"{stem}.json").read())
    assert "top5_accuracy" not in written and "top5" not in written["images_evaluated"]
    assert "confusion_matrix_normalized" not in written
    assert written["errors"] == [{"index": 5, "file": "5.png", "label": 4, "prediction": 0,
                                 "probability": pytest.approx(0.6)}]
    # "a" predicted 3 times, right once; "e" never predicted: precision 0 (0/0 is 0); "d"
    # neither a label nor a prediction: out of the macro averages
    assert written["per_class"][0]["precision"] == pytest.approx(1 / 3)
    assert written["per_class"][4] == {"class": "e", "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                      "support": 2}
    assert written["per_class"][3]["support"] == 0
    assert written["macro_avg"] == pytest.approx({"precision": (1 / 3 + 2) / 4,
                                                  "recall": 0.75, "f1": 0.625})
    capsys.readouterr()

    # the same evaluation again, now right on every image: no sheet (the old one goes)
    report(tmp_path, [], labels, labels, losses, probabilities, names=names, files=files)
    assert "no sheet of mistakes: every test image is classified right" in capsys.readouterr().out
    assert not (tmp_path / "logs" / "eval" / "test-model.ckpt-7-errors.png").exists()
    assert json.loads(open(f"{stem}.json").read())["errors"] == []

    # --errors 0: no list, no sheet, nothing said
    report(tmp_path, ["--errors", "0", "--split", "val"], labels, wrong, losses, probabilities,
           names=names, files=files)
    assert "mistake" not in capsys.readouterr().out
    val_stem = tmp_path / "logs" / "eval" / "val-model.ckpt-7"
    assert "errors" not in json.loads(open(f"{val_stem}.json").read())
    assert not (tmp_path / "logs" / "eval" / "val-model.ckpt-7-errors.png").exists()

    # cached codes: mistakes listed, but no pixels to draw
    (tmp_path / "codes").mkdir()
    report(tmp_path, ["--codes", str(tmp_path / "codes")], labels, wrong, losses, probabilities,
           None, (mistake._replace(pixels=None),), names=names, files=files)
    out = capsys.readouterr().out
    assert "no sheet of mistakes: --codes evaluates cached codes" in out
    codes_stem = tmp_path / "logs" / "eval" / "test-codes-model.ckpt-7"
    assert not (tmp_path / "logs" / "eval" / "test-codes-model.ckpt-7-errors.png").exists()
    assert len(json.loads(open(f"{codes_stem}.json").read())["errors"]) == 1


@pytest.mark.parametrize("num_classes", [5, 6])
def test_top5_only_beyond_5_classes(tinynet, num_classes):
    config = {"arch": "tinynet", "batch_norm": False, "image_size": 16,
              "num_classes": num_classes}
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 16, 16, 3])
        evaluator = types.SimpleNamespace(model=config, tower=model.tower(
            config, images, tf1.placeholder(tf.int32, [None])))
        evaluate.Evaluator.add_details(evaluator, 3)
    assert (evaluator.details.top_k is None) == (num_classes == 5)
    assert evaluator.details.mistakes == 3 and evaluator.details.mistake_pixels is None

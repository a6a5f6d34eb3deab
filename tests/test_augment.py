"""Augmentation that keeps the labels true: each source says which augmentations keep its
classes (AUGMENT) and what a mirror does to each class (mirrors); flips follow it, swapping the
labels of GTSRB's mirror pairs and never flipping a sign a mirror makes into no sign;
--augment and --no-augment choose; evaluate.py --tta flip is refused where mirrors change
classes."""

import json

import numpy as np
import pytest
import tensorflow as tf

from datasets import cifar10
from datasets import gtsrb
from datasets import pipeline
import helpers
import input_data

tf1 = tf.compat.v1


def test_the_gtsrb_mirror_table_by_the_official_names():
    names, mirror = gtsrb.sign_names(), gtsrb.mirror_ids()
    assert all(mirror[mirror[c]] == c for c in range(43) if mirror[c] >= 0)  # an involution
    pairs = {(names[c], names[m]) for c, m in enumerate(mirror) if m >= 0 and m != c}
    assert pairs == {(a, b) for a, b in [
        ("Dangerous curve to the left", "Dangerous curve to the right"),
        ("Turn right ahead", "Turn left ahead"), ("Go straight or right", "Go straight or left"),
        ("Keep right", "Keep left")] for a, b in ((a, b), (b, a))}
    kept = {names[c] for c, m in enumerate(mirror) if m == c}
    assert {"Stop", "Speed limit (30km/h)", "Roundabout mandatory", "No passing",
            "Double curve"}.isdisjoint(kept)  # text, digits, a direction: no sign mirrored
    assert {"Yield", "No entry", "Priority road", "Ahead only", "General caution"} <= kept


def test_class_names_of_each_gtsrb_layout_find_their_mirrors(tmp_path):
    for names, ids in ((["vorbeifahren_links", "vorbeifahren_rechts", "stopp", "ampel"],
                        [39, 38, 14, 26]),
                       (["00038", "00039", "00014", "00026"], [38, 39, 14, 26]),
                       (["Keep left", "Stop", "unknown sign", "Keep right"],
                        [39, 14, None, 38])):
        assert [gtsrb.class_id(n) for n in names] == ids
    root = tmp_path / "signs"
    helpers.write_folder(root, ["ampel", "kreisverkehr", "vorbeifahren_links",
                                "vorbeifahren_rechts", "zz_unknown"], per_class=2)
    # sorted: ampel (its own mirror), kreisverkehr (none), keep left <-> keep right, unknown
    assert gtsrb.mirrors(str(root)) == [0, -1, 3, 2, -1]
    del_right = tmp_path / "half"
    helpers.write_folder(del_right, ["vorbeifahren_links", "stopp"], per_class=2)
    assert gtsrb.mirrors(str(del_right)) == [-1, -1]  # its partner is not a class here


def test_flips_follow_the_mirror_table():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 3)).astype(np.float32)
    mirrors = [0, -1, 3, 2]  # class 0 its own mirror, 1 none, 2 and 3 a pair
    labels = np.arange(64) % 4
    seen = {c: set() for c in range(4)}
    for seed in range(4):
        out, out_labels = pipeline.augment_batch(
            tf.constant(images), tf.constant([seed, 1], tf.int64), tf.constant(labels),
            crop=False, mirrors=mirrors)
        for image, out_image, label, out_label in zip(images, out.numpy(), labels,
                                                      out_labels.numpy()):
            mirrored = np.array_equal(out_image, image[:, ::-1])
            assert mirrored or np.array_equal(out_image, image)
            assert out_label == (mirrors[label] if mirrored else label)
            seen[label].add(mirrored)
    assert seen == {0: {True, False}, 1: {False}, 2: {True, False}, 3: {True, False}}


def test_crop_alone_never_mirrors_and_flip_alone_never_shifts(tmp_path):
    helpers.write_dataset(str(tmp_path), per_file=8, test_count=8)

    def batch(augment):
        data = cifar10.read(str(tmp_path), "trainval", 40, augment=augment,
                                 preprocess="none", seed=3)
        return next(iter(data))[0].numpy()

    plain = batch(False)
    padded = np.pad(plain, [[0, 0], [4, 4], [4, 4], [0, 0]])
    crops = batch("crop")
    for image, out in zip(padded, crops):
        assert any(np.array_equal(out, image[i:i + 32, j:j + 32])
                   for i in range(9) for j in range(9))
    flips = batch("flip")
    mirrored = [np.array_equal(out, image[:, ::-1]) for image, out in zip(plain, flips)]
    assert all(m or np.array_equal(out, image) for m, out, image in zip(mirrored, flips, plain))
    assert 0 < sum(mirrored) < len(plain)
    assert pipeline.augmentations(True, cifar10.AUGMENT) == ("crop", "flip")
    with pytest.raises(ValueError, match="give 'none' or some of crop, flip"):
        pipeline.augmentations("rotate", ())


def test_augment_flags_are_recorded_and_checked(workspace, tmp_path):
    root, _ = workspace
    common = helpers.train_args(root, tmp_path, "--max-steps", 1, "--val-size", 16)
    result = helpers.call("train_and_val.py", *common, "--augment", "flip,crop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = json.loads((tmp_path / "logs" / "train" / "config.json").read_text())["runs"]
    assert runs[-1]["augment"] == "crop,flip"
    for flags, words in ((["--augment", "rotate"], "give crop,flip, crop, flip or none"),
                         (["--augment", "crop", "--no-augment"], "say different things"),
                         (["--augment", "none", "--scale-jitter", "32,40"],
                          "does not go with --no-augment or --augment none")):
        line = helpers.one_line_error(helpers.call("train_and_val.py", *common, *flags,
                                                   "--log-dir", tmp_path / "other",
                                                   cwd=tmp_path))
        assert words in line
    assert not (tmp_path / "other").exists()


def test_tta_flip_is_refused_where_a_mirror_changes_classes(workspace, tmp_path):
    root, _ = workspace
    signs = tmp_path / "signs"
    helpers.write_folder(signs, ["vorbeifahren_links", "vorbeifahren_rechts"], per_class=10)
    logs = tmp_path / "logs"
    trained = helpers.call("train_and_val.py", "--dataset", "gtsrb", "--data-dir", signs,
                           "--arch", "vgg11", "--pretrained", "none", "--fc-size", 0,
                           "--max-steps", 1, "--batch-size", 4, "--log-dir", logs, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    config = json.loads((logs / "train" / "config.json").read_text())
    assert config["runs"][-1]["augment"] == "flip"  # GTSRB's own: flips that keep labels
    line = helpers.one_line_error(helpers.call(
        "evaluate.py", "--log-dir", logs, "--data-dir", signs, "--split", "val", "--tta",
        "flip", cwd=tmp_path), "evaluate.py")
    assert "a mirror changes 2 of the 2 classes of --dataset gtsrb" in line
    assert input_data.SOURCES["cifar10"].mirrors(str(root / "data")) is None

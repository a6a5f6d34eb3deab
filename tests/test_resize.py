"""Scale jittering and --resize crop keep each image's proportions; squash stretches them. The
images are ramps (red grows by 2 a pixel to the right, green by 2 a pixel down), so the slopes
of a resized image tell how much it was scaled along each axis, and its values where it was
cut."""

import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from datasets import cifar10
from datasets import image_folder
from datasets import pipeline
import helpers
import model

tf1 = tf.compat.v1
SLOPE = 2


def ramp(height, width):
    y, x = np.mgrid[:height, :width]
    return np.stack([x * SLOPE, y * SLOPE, np.full_like(x, 128)], -1).astype(np.uint8)


def slopes(image):
    """The mean change of red a pixel to the right and of green a pixel down, inside."""
    inner = np.asarray(image, np.float64)[3:-3, 3:-3]
    return np.diff(inner[..., 0], axis=1).mean(), np.diff(inner[..., 1], axis=0).mean()


def write_ramps(root, sizes, per_class=6):
    """ROOT/<class k>/<n>.png: ramps of sizes[k] (height, width)."""
    for k, size in enumerate(sizes):
        (root / f"c{k}").mkdir(parents=True)
        for n in range(per_class):
            Image.fromarray(ramp(*size)).save(root / f"c{k}" / f"{n}.png")


def test_scale_jitter_keeps_the_aspect_and_draws_the_side_in_its_range(tmp_path):
    sizes = ((40, 80), (60, 45))  # class 0 wide, class 1 tall
    write_ramps(tmp_path, sizes)
    low, high = 40, 56
    data = image_folder.read(str(tmp_path), "trainval", 4, shuffle=True, augment=True,
                            preprocess="none", image_size=32, seed=3,
                            scale_jitter=(low, high))
    sides, signs = [], set()
    for _ in range(4):  # four passes over the 10 trainval images (2 are test)
        for images, labels in data:
            assert images.shape[1:] == (32, 32, 3)
            for image, label in zip(images.numpy(), labels.numpy()):
                dx, dy = slopes(image)
                assert abs(abs(dx) - dy) < 0.02 * dy, (dx, dy)  # the same scale both ways
                side = SLOPE * min(sizes[label]) / dy  # the shorter side's new length
                assert low - 0.5 <= side <= high + 0.5
                sides.append(round(side))
                signs.add(np.sign(dx))  # mirrored or not
    assert len(set(sides)) > 5 and signs == {-1.0, 1.0}


def test_crop_resizes_the_shorter_side_and_takes_the_centre_where_squash_stretches(tmp_path):
    wide = tmp_path / "wide.png"
    Image.fromarray(ramp(40, 80)).save(wide)
    with tf.Graph().as_default():
        crop = tf1.data.make_one_shot_iterator(pipeline.read_files(
            [str(wide)], 1, 32, "none", "crop")).get_next()
        squash = tf1.data.make_one_shot_iterator(pipeline.read_files(
            [str(wide)], 1, 32, "none")).get_next()
        # the exported model's resizing, on the same pixels
        pixels = tf.constant(ramp(40, 80)[None])
        served = model.serving_inputs({"arch": "vgg11", "image_size": 32, "resize": "crop"},
                                      pixels)
        with tf1.Session() as session:
            crop, squash, served = session.run([crop, squash, served])
    dx, dy = slopes(crop[0])
    assert dx == pytest.approx(SLOPE * 40 / 32, rel=1e-3) == dy
    # the central square: red's mean is the centre column's, 2 * 39.5
    assert crop[0][..., 0].mean() == pytest.approx(SLOPE * 39.5, abs=0.05)
    dx, dy = slopes(squash[0])
    assert dx == pytest.approx(SLOPE * 80 / 32, rel=1e-3)
    assert dy == pytest.approx(SLOPE * 40 / 32, rel=1e-3)
    # serving_inputs is resize + vgg preprocessing (BGR minus the mean): undo the preprocessing
    rgb = served[0][..., ::-1] + np.array([123.68, 116.779, 103.939])
    np.testing.assert_allclose(rgb, crop[0], atol=1e-3)


def test_cifar_scale_jitter_is_a_random_resized_crop(tmp_path):
    helpers.write_dataset(str(tmp_path), per_file=8, test_count=8)

    def first_batch(**reading):
        data = cifar10.read(str(tmp_path), "trainval", 40, preprocess="none", seed=5,
                                 **reading)
        return next(iter(data))[0].numpy()

    plain = first_batch()
    same_side = first_batch(augment=True, scale_jitter=(32, 32))  # no rescaling: crop = image
    mirrored = [np.array_equal(a, b[:, ::-1]) for a, b in zip(same_side, plain)]
    assert all(np.array_equal(a, b) or m for a, b, m in zip(same_side, plain, mirrored))
    assert 0 < sum(mirrored) < len(plain)
    jittered = first_batch(augment=True, scale_jitter=(32, 40))
    assert jittered.shape == plain.shape
    changed = [not (np.allclose(a, b) or np.allclose(a, b[:, ::-1]))
               for a, b in zip(jittered, plain)]
    assert sum(changed) > len(plain) // 2


def test_scale_jitter_flags_that_cannot_work_are_one_line(tmp_path):
    for flags, words in ((["--scale-jitter", "24,40"], "MIN must be at least --image-size (32)"),
                         (["--scale-jitter", "32,40", "--no-augment"], "--no-augment"),
                         (["--scale-jitter", "40"], "is not MIN,MAX"),
                         (["--scale-jitter", "48,40"], "is not MIN,MAX")):
        result = helpers.call("train_and_val.py", *flags, "--data-dir", tmp_path / "none",
                              "--log-dir", tmp_path / "logs", cwd=tmp_path)
        assert words in helpers.one_line_error(result)
    assert not (tmp_path / "logs").exists()


def test_a_run_keeps_its_resize_when_resumed_and_evaluate_reads_it(tmp_path):
    write_ramps(tmp_path / "images", ((40, 80), (60, 45)), per_class=8)
    logs = tmp_path / "logs"
    common = ["--dataset", "folder", "--data-dir", tmp_path / "images", "--arch", "tinynet",
              "--pretrained", "none", "--batch-size", 4, "--val-size", 2, "--log-dir", logs]
    first = helpers.call("train_and_val.py", *common, "--max-steps", 2, "--resize", "crop",
                         "--scale-jitter", "32,48", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    again = helpers.call("train_and_val.py", *common, "--max-steps", 3, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    runs = json.loads((logs / "train" / "config.json").read_text())["runs"]
    assert [(r["resize"], r["scale_jitter"]) for r in runs] == [("crop", [32, 48]),
                                                               ("crop", None)]
    evaluated = helpers.call("evaluate.py", "--data-dir", tmp_path / "images", "--log-dir", logs,
                             "--split", "val", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((logs / "eval" / "val-model.ckpt-3.json").read_text())
    assert report["evaluation"]["resize"] == "crop"

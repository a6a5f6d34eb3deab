"""extract_codes.py --projector: TensorBoard's projector plugin reads back what it writes (its own
config parser, the checkpoint it finds), the embedding holds the codes of exactly the sampled
files, metadata.tsv and the sprite follow them row by row, the sample is stable, up-to-date codes
stay untouched, and flags that cannot work are one line with nothing written."""

import os

from google.protobuf import text_format
import numpy as np
from PIL import Image
import pytest
from tensorboard.plugins import projector as tb_projector
import tensorflow as tf

import helpers
from helpers import call
from inference import projector
import py2_npy
import vgg16

tf1 = tf.compat.v1
# Class folders whose names would break a TSV row if they went in as they are
CLASSES = ["red", "green\tleaf", "blue\nsky"]
CLASSES_SORTED = sorted(CLASSES)  # (labels are the sorted folder names)


def clean(text):
    return text.replace("\t", " ").replace("\n", " ")


def extract(folder, out, *flags, dataset="folder"):
    data, weights = folder
    return call("extract_codes.py", "--arch", "vgg11", "--weights", weights, "--layer", "pool5",
                "--dataset", dataset, "--data-dir", data, "--batch-size", 16, "--out", out,
                *flags, cwd=data.parent)


@pytest.fixture(scope="module")
def folder(workspace, tmp_path_factory):
    """(data, weights): a folder data set of 3 classes of 12 images (8x8, one colour a class
    plus noise), and the workspace's VGG11 weights of the conv layers alone (pool5 codes need
    no more; a third of the file to read each run)."""
    root = tmp_path_factory.mktemp("projector")
    helpers.write_folder(root / "images", CLASSES, per_class=12)
    py2_npy.write(str(root / "conv.npy"), {layer: workspace[1][layer]
                                           for layer in vgg16.conv_layer_names("vgg11")})
    return root / "images", root / "conv.npy"


def read_projector(out):
    """(config's embedding, embedding values, metadata rows, sprite pixels) as TensorBoard's
    projector plugin finds them: its config parser, the latest checkpoint of the folder."""
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(),
                               tb_projector.ProjectorConfig())
    assert len(config.embeddings) == 1 and not config.model_checkpoint_path
    embedding = config.embeddings[0]
    for path in (embedding.metadata_path, embedding.sprite.image_path):
        assert not os.path.isabs(path) and (out / path).is_file()
    reader = tf1.train.NewCheckpointReader(tf1.train.latest_checkpoint(str(out)))
    assert list(reader.get_variable_to_shape_map()) == [embedding.tensor_name]
    values = reader.get_tensor(embedding.tensor_name)
    lines = (out / embedding.metadata_path).read_text(encoding="utf-8").split("\n")
    assert lines[0] == "file\tclass" and lines[-1] == ""
    rows = [line.split("\t") for line in lines[1:-1]]
    assert all(len(row) == 2 for row in rows)
    with Image.open(out / embedding.sprite.image_path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return embedding, values, rows, pixels


def test_the_projector_holds_the_sampled_codes_files_classes_and_thumbnails(folder, tmp_path):
    out, images = tmp_path / "codes", folder[0]
    first = extract(folder, out, "--projector", "--projector-split", "train",
                    "--projector-max", 20)
    assert first.returncode == 0, first.stderr
    assert "Wrote the projector of 20 of the 28 train images" in first.stdout
    embedding, values, rows, pixels = read_projector(out)
    assert embedding.tensor_name == "pool5_train" and values.shape == (20, 512)

    # exactly the codes of the files in metadata.tsv, in the split's order, with their classes
    with np.load(out / "train.npz") as train:
        codes, labels, files = train["codes"], train["labels"], list(train["files"])
    where = {clean(f): i for i, f in enumerate(files)}
    positions = [where[file] for file, _ in rows]
    assert positions == sorted(positions) and positions != list(range(20))  # (not the first 20)
    np.testing.assert_array_equal(values, codes[positions])
    assert [name for _, name in rows] == [clean(CLASSES_SORTED[labels[i]]) for i in positions]

    # the sprite: a grid of 5 x 4 thumbnails of single_image_dim, each the image it stands for
    side = embedding.sprite.single_image_dim
    assert side[0] == side[1] and pixels.shape == (4 * side[1], 5 * side[0], 3)
    for k, i in enumerate(positions):
        row, column = divmod(k, 5)
        thumbnail = pixels[row * side[1]:(row + 1) * side[1],
                           column * side[0]:(column + 1) * side[0]]
        with Image.open(images / files[i]) as image:
            original = np.asarray(image.convert("RGB"), np.float64)
        np.testing.assert_allclose(thumbnail.mean(axis=(0, 1)), original.mean(axis=(0, 1)),
                                   atol=0.5)
    assert not [p for p in out.iterdir() if "part" in p.name]

    # again: nothing is touched; another maximum rewrites the projector alone, a part of the 20
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = extract(folder, out, "--projector", "--projector-split", "train",
                    "--projector-max", 20)
    assert "nothing was written to them" in again.stdout and "projector in" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    fewer = extract(folder, out, "--projector", "--projector-split", "train",
                    "--projector-max", 10)
    assert "Wrote the projector of 10 of the 28" in fewer.stdout, fewer.stderr
    codes_files = ("manifest.json", "train.npz", "val.npz", "test.npz")
    assert {n: (out / n).stat().st_mtime_ns for n in codes_files} == {
        n: stamps[n] for n in codes_files}
    _, _, small_rows, small_pixels = read_projector(out)
    assert len(small_rows) == 10 and set(map(tuple, small_rows)) < set(map(tuple, rows))
    assert small_pixels.shape[1] == 4 * side[0]  # 4 columns of 10
    same = extract(folder, out, "--projector", "--projector-split", "train",
                   "--projector-max", 20)
    assert "Wrote the projector of 20" in same.stdout
    _, values_again, rows_again, _ = read_projector(out)
    assert rows_again == rows
    np.testing.assert_array_equal(values_again, values)

    # by default the test split; a missing file is made again; changed codes take it away
    default = extract(folder, out, "--projector")
    assert "Wrote the projector of 6 of the 6 test images" in default.stdout
    assert read_projector(out)[0].tensor_name == "pool5_test"
    (out / "sprite.png").unlink()
    remade = extract(folder, out, "--projector")
    assert "Wrote the projector of 6" in remade.stdout and (out / "sprite.png").is_file()
    image = images / "red" / "0.png"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    changed = extract(folder, out)
    assert "Removed the projector of the old codes" in changed.stdout, changed.stderr
    left = {p.name for p in out.iterdir()}
    assert left == {"manifest.json", "train.npz", "val.npz", "test.npz"}


def test_projector_flags_that_cannot_work_are_one_line_and_write_nothing(folder, tmp_path):
    out = tmp_path / "codes"
    cases = [(["--projector", "--projector-max", 0], "--projector-max: must be at least 1"),
             (["--projector-split", "val"], "go with --projector"),
             (["--projector", "--projector-split", "test"], "has no test split")]
    for flags, words in cases:
        # gtsrb's class folders without test/: no test split
        result = extract(folder, out, *flags, dataset="gtsrb")
        line = helpers.one_line_error(result, "extract_codes.py")
        assert words in line, line
        assert not out.exists()


def test_the_sprite_stays_within_tensorboards_limit_whatever_the_count():
    for count in (1, 2, 20, 2000, 5000, 100_000, projector.MAX_POINTS):
        side = projector.thumbnail_side(count, image_size=224)
        columns, rows = projector.sprite_grid(count)
        assert columns * rows >= count and side >= 8
        assert max(columns, rows) * side <= 8192
    assert projector.thumbnail_side(2000, 224) == 64 and projector.thumbnail_side(20, 32) == 32

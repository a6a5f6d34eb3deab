"""input_data.py's GTSRB source on small data sets written here in its three layouts: the
official archives' folders and CSVs (labels, sign names, the ROI crop, the Final_Test split),
the lab's pickles (pixels and labels, a hostile pickle refused before it runs), the track-wise
val split (whole tracks, stable as tracks are added) and class folders named like the sample."""

import csv
import hashlib
import os
import pickle
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from datasets import gtsrb
import input_data
from input_data import DataError

tf1 = tf.compat.v1
SIDE = 8  # the side of the official layout's training and test images here
ROI = 5  # the side of their ROIs
HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
SOURCE = input_data.SOURCES["gtsrb"]


def h(text):
    """The documented split hash, computed here independently of input_data."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def collect(dataset):
    """(images, labels) of an eager dataset, concatenated."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def read(data_dir, split, image_size=SIDE, **options):
    """(names, images, labels) of a split, read in order, RGB 0..255."""
    options = dict(preprocess="none", image_size=image_size) | options
    images, labels = collect(SOURCE.read(str(data_dir), split, 7, **options))
    names = SOURCE.image_names(str(data_dir), split, options.get("val_size"),
                               **{k: v for k, v in options.items()
                                  if k in ("crop_roi", "skip_bad_images")})
    return names, images, labels


def write_ppm(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)  # binary P6 by the extension


def write_csv(path, rows, line_end="\n"):
    """A ground-truth CSV: HEADER, then one 'name;w;h;x1;y1;x2;y2;class' line per row."""
    with open(path, "w", newline="") as f:
        f.write(line_end.join([HEADER] + [";".join(map(str, row)) for row in rows]) + line_end)


def write_official(data_dir, tracks, test_labels=(), seed=0, prefix="GTSRB"):
    """The official layout under DATA_DIR/PREFIX: {class id: {track: pictures}} in
    Final_Training/Images/000NN/TTTTT_NNNNN.ppm with GT-000NN.csv, and one Final_Test image for
    each of TEST_LABELS with GT-final_test.csv. Every image SIDE x SIDE random pixels, its ROI a
    ROI x ROI square at a varying offset. Returns {path relative to DATA_DIR: (pixels, box)}."""
    rng = np.random.default_rng(seed)
    root = os.path.join(data_dir, prefix)
    written = {}

    def image(folder, name):
        pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
        x1, y1 = rng.integers(0, SIDE - ROI + 1, 2)
        box = (int(x1), int(y1), int(x1) + ROI - 1, int(y1) + ROI - 1)  # corners included
        write_ppm(os.path.join(folder, name), pixels)
        rel = os.path.relpath(os.path.join(folder, name), data_dir).replace(os.sep, "/")
        written[rel] = pixels, box
        return [name, SIDE, SIDE, *box]

    for class_id, counts in tracks.items():
        folder = os.path.join(root, "Final_Training", "Images", f"{class_id:05d}")
        rows = [image(folder, f"{track:05d}_{n:05d}.ppm") + [class_id]
                for track, pictures in counts.items() for n in range(pictures)]
        write_csv(os.path.join(folder, f"GT-{class_id:05d}.csv"), rows, line_end="\r\n")
    if test_labels:
        folder = os.path.join(root, "Final_Test", "Images")
        rows = [image(folder, f"{n:05d}.ppm") + [label] for n, label in enumerate(test_labels)]
        write_csv(os.path.join(folder, "GT-final_test.csv"), rows)
    return written


def label_of(name):
    """The class id in an official training path .../000NN/TTTTT_NNNNN.ppm."""
    return int(name.split("/")[-2])


# ----------------------------------------------------------------------------------------------
# The official layout
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def official(tmp_path):
    written = write_official(str(tmp_path), {0: {0: 3, 1: 2}, 14: {0: 4}, 42: {3: 2, 7: 3}},
                             test_labels=[14, 0, 42, 42, 7])
    return tmp_path, written


def test_official_layout_labels_names_and_pixels(official):
    data_dir, written = official
    names = SOURCE.class_names(str(data_dir))
    assert len(names) == 43 == SOURCE.num_classes(str(data_dir))
    assert names[0] == "Speed limit (20km/h)" and names[14] == "Stop"
    assert names[42] == "End of no passing by vehicles over 3.5 metric tons"
    assert SOURCE.default_val_size(str(data_dir)) is None
    found, images, labels = read(data_dir, "trainval")
    train = sorted(p for p in written if "Final_Training" in p)
    assert found == train  # every listed image once, in path order
    assert labels.tolist() == [label_of(p) for p in found]
    for name, pixels in zip(found, images):
        np.testing.assert_array_equal(pixels, written[name][0], err_msg=name)
    assert SOURCE.num_examples(str(data_dir), "trainval", None) == len(train) == 14

    found, images, labels = read(data_dir, "test")
    assert found == [f"GTSRB/Final_Test/Images/{n:05d}.ppm" for n in range(5)]
    assert labels.tolist() == [14, 0, 42, 42, 7]  # ClassId of GT-final_test.csv
    for name, pixels in zip(found, images):
        np.testing.assert_array_equal(pixels, written[name][0], err_msg=name)


def test_official_layout_directly_in_data_dir_and_unlisted_files(tmp_path):
    written = write_official(str(tmp_path), {3: {0: 2}, 5: {1: 2}}, prefix="")
    # A file the CSV does not list is not read.
    write_ppm(str(tmp_path / "Final_Training" / "Images" / "00003" / "00009_00000.ppm"),
              np.zeros((SIDE, SIDE, 3), np.uint8))
    found, _, labels = read(tmp_path, "trainval")
    assert found == sorted(written) and labels.tolist() == [3, 3, 5, 5]
    with pytest.raises(DataError, match="Final_Test/Images does not exist"):
        SOURCE.validate(str(tmp_path), "test")


def test_crop_roi_gives_exactly_the_roi_pixels(official):
    data_dir, written = official
    for split in ("trainval", "test"):
        found, images, _ = read(data_dir, split, image_size=ROI, crop_roi=True)
        assert images.shape == (len(found), ROI, ROI, 3)
        for name, pixels in zip(found, images):
            original, (x1, y1, x2, y2) = written[name]
            # Both corners belong to the sign: ROI columns x1..x2 and rows y1..y2.
            np.testing.assert_array_equal(pixels, original[y1:y2 + 1, x1:x2 + 1], err_msg=name)
    # Without crop_roi, at the same size, the images are the whole ones resized.
    _, whole, _ = read(data_dir, "test", image_size=ROI)
    assert not np.array_equal(whole, images)


def test_crop_roi_of_other_shapes_is_resized_like_any_image(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "Final_Training" / "Images" / "00001"
    boxes = {"00000_00000.ppm": (0, 0, 9, 6), "00000_00001.ppm": (3, 2, 4, 10),
             "00001_00000.ppm": (7, 7, 7, 7)}
    pictures = {}
    for name, box in boxes.items():
        pictures[name] = rng.integers(0, 256, (11, 10, 3), dtype=np.uint8)  # 10 wide
        write_ppm(str(folder / name), pictures[name])
    write_csv(str(folder / "GT-00001.csv"), [[n, 10, 11, *b, 1] for n, b in boxes.items()])
    found, images, _ = read(tmp_path, "trainval", image_size=6, crop_roi=True)
    assert [n.split("/")[-1] for n in found] == sorted(boxes) and len(images) == len(found)
    for name, image in zip(found, images):
        x1, y1, x2, y2 = boxes[name.split("/")[-1]]
        crop = pictures[name.split("/")[-1]][y1:y2 + 1, x1:x2 + 1].astype(np.float32)
        np.testing.assert_allclose(image, tf.image.resize(crop, [6, 6]).numpy(), atol=1e-3)


def test_crop_roi_checks_the_csv_against_the_images(tmp_path, capsys):
    write_official(str(tmp_path), {2: {0: 3}})
    folder = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00002"
    table = folder / "GT-00002.csv"
    rows = [line.split(";") for line in table.read_text().split()[1:]]
    rows[0][5] = str(SIDE)  # Roi.X2 one past the last column
    rows[2][1] = str(SIDE + 1)  # a Width the image does not have
    write_csv(str(table), rows)
    assert SOURCE.num_examples(str(tmp_path), "trainval", None) == 3  # no crop: no check
    with pytest.raises(DataError) as error:
        SOURCE.validate(str(tmp_path), "trainval", crop_roi=True)
    message = str(error.value)
    assert message.startswith("2 of the 3 trainval images in ") and "\n" not in message
    assert f"{folder / rows[0][0]} (its ROI" in message and "is not inside the 8x8" in message
    assert f"{folder / rows[2][0]} (8x8 pixels, but the CSV says 9x8)" in message
    found, _, _ = read(tmp_path, "trainval", image_size=ROI, crop_roi=True,
                       skip_bad_images=True)
    assert found == [f"GTSRB/Final_Training/Images/00002/{rows[1][0]}"]
    assert capsys.readouterr().out.count("--skip-bad-images: leaving out 2 of the 3") == 1


def test_bad_and_missing_image_files_are_named_or_skipped(official):
    data_dir, written = official
    folder = data_dir / "GTSRB" / "Final_Training" / "Images" / "00014"
    cut = folder / "00000_00001.ppm"
    cut.write_bytes(cut.read_bytes()[:30])
    (folder / "00000_00003.ppm").unlink()  # listed in the CSV, not there
    with pytest.raises(DataError) as error:
        SOURCE.validate(str(data_dir), "train")
    message = str(error.value)
    assert message.startswith(f"2 of the 14 trainval images in "
                              f"{data_dir / 'GTSRB' / 'Final_Training' / 'Images'} are")
    assert str(cut) in message and str(folder / "00000_00003.ppm") in message
    assert "No such file" in message and "\n" not in message
    found = SOURCE.validate(str(data_dir), "trainval", skip_bad_images=True)
    assert len(found) == 12 and SOURCE.num_examples(str(data_dir), "trainval", None,
                                                    skip_bad_images=True) == 12
    SOURCE.validate(str(data_dir), "test")  # the test images are fine


def test_official_csv_and_folder_errors(official, tmp_path_factory):
    data_dir, _ = official
    images = data_dir / "GTSRB" / "Final_Training" / "Images"
    table = images / "00042" / "GT-00042.csv"
    text = table.read_bytes().decode()  # written with CRLF line ends
    assert text.count(";42\r\n") == 5
    table.write_bytes(text.replace(";42\r\n", ";43\r\n", 1).encode())
    with pytest.raises(DataError, match=r"GT-00042.csv line 2: ClassId 43 is not one of the 43"):
        SOURCE.validate(str(data_dir), "train")
    table.write_bytes(text.replace("Roi.X2", "RoiX2").encode())
    with pytest.raises(DataError, match=r"GT-00042.csv: its header .* lacks Roi.X2"):
        SOURCE.validate(str(data_dir), "train")
    table.unlink()
    with pytest.raises(DataError, match="1 class folders of .* lack their ground-truth CSV"):
        SOURCE.validate(str(data_dir), "train")
    # The test labels: GT-final_test.csv, also where GTSRB_Final_Test_GT.zip extracts.
    test_csv = data_dir / "GTSRB" / "Final_Test" / "Images" / "GT-final_test.csv"
    moved = data_dir / "GT-final_test.csv"
    test_csv.rename(moved)
    assert len(SOURCE.validate(str(data_dir), "test")) == 5
    moved.unlink()
    with pytest.raises(DataError, match="no GT-final_test.csv in .*GTSRB_Final_Test_GT.zip"):
        SOURCE.validate(str(data_dir), "test")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DataError, match="holds no GTSRB images; put GTSRB there"):
        SOURCE.prepare(str(empty))
    with pytest.raises(DataError, match="does not exist; put GTSRB there"):
        SOURCE.class_names(str(empty / "nowhere"))


# ----------------------------------------------------------------------------------------------
# The track-wise val split
# ----------------------------------------------------------------------------------------------

def tracks_of(names):
    """{(class folder, track)} of official training paths."""
    return {(n.split("/")[-2], n.split("/")[-1][:5]) for n in names}


def split_names(data_dir, val_size=None):
    return {split: set(SOURCE.image_names(str(data_dir), split, val_size))
            for split in ("train", "val", "trainval")}


def test_val_holds_whole_tracks_about_a_tenth_by_the_documented_hash(tmp_path):
    rng = np.random.default_rng(3)
    tracks = {c: {t: int(rng.integers(2, 5)) for t in range(12)} for c in range(0, 43, 2)}
    write_official(str(tmp_path), tracks, prefix="")
    before = split_names(tmp_path)
    assert before["train"] | before["val"] == before["trainval"]
    assert not before["train"] & before["val"] and before["train"] and before["val"]
    assert not tracks_of(before["train"]) & tracks_of(before["val"])
    assert tracks_of(before["val"]) == {(c, t) for c, t in tracks_of(before["trainval"])
                                        if h(f"val:{c}/{t}") % 100 < 10}
    assert 0.05 < len(before["val"]) / len(before["trainval"]) < 0.17
    for split in before:
        assert SOURCE.num_examples(str(tmp_path), split, None) == len(before[split])

    # A number of images: whole tracks in hash order, until there are at least that many.
    val = set(SOURCE.image_names(str(tmp_path), "val", 50))
    train = set(SOURCE.image_names(str(tmp_path), "train", 50))
    assert 50 <= len(val) < 55 and val | train == before["trainval"] and not val & train
    assert not tracks_of(val) & tracks_of(train)
    ranked = sorted(tracks_of(before["trainval"]), key=lambda ct: h(f"val:{ct[0]}/{ct[1]}"))
    assert tracks_of(val) == set(ranked[:len(tracks_of(val))])
    with pytest.raises(DataError, match=r"val_size \(--val-size\) \d+ must be between 1"):
        SOURCE.num_examples(str(tmp_path), "val", len(before["trainval"]))

    # New tracks, new pictures of old tracks, a new class: no old image changes side.
    more = {c: {t: 3 for t in range(12, 20)} for c in range(0, 43, 2)}
    more |= {1: {0: 4, 1: 4}, 0: {t: 3 for t in range(12, 20)} | {0: 6}}
    write_official(str(tmp_path), more, seed=9, prefix="")
    for c, counts in tracks.items():  # the class CSVs were rewritten: list the old rows again
        folder = tmp_path / "Final_Training" / "Images" / f"{c:05d}"
        names = sorted(p.name for p in folder.glob("*.ppm"))
        write_csv(str(folder / f"GT-{c:05d}.csv"), [[n, SIDE, SIDE, 0, 0, 4, 4, c]
                                                    for n in names])
    after = split_names(tmp_path)
    assert len(after["trainval"]) > len(before["trainval"]) + 300
    assert after["val"] & before["trainval"] == before["val"]
    assert after["train"] & before["trainval"] == before["train"]
    assert not tracks_of(after["train"]) & tracks_of(after["val"])
    val_after = set(SOURCE.image_names(str(tmp_path), "val", 50))
    assert val_after & before["trainval"] <= val  # with a number: old tracks only leave val


def test_pickles_keep_their_own_val(tmp_path):
    write_pickles(tmp_path)
    with pytest.raises(DataError, match="--val-size 100: .* the validation images are valid.p"):
        SOURCE.num_examples(str(tmp_path), "train", 100)
    assert SOURCE.default_val_size(str(tmp_path)) is None


# ----------------------------------------------------------------------------------------------
# The lab's pickles
# ----------------------------------------------------------------------------------------------

def write_pickles(data_dir, counts=None, side=32, seed=0):
    """train.p, valid.p and test.p as the lab ships them (features, labels, sizes, coords),
    pickled with different protocols; returns {file name: (features, labels)}."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train.p": 11, "valid.p": 5, "test.p": 6}
    written = {}
    for (name, count), protocol in zip(counts.items(), (pickle.DEFAULT_PROTOCOL, 2, 5)):
        features = rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8)
        labels = rng.integers(0, 43, count).astype(np.uint8)
        content = {"features": features, "labels": labels,
                   "sizes": rng.integers(20, 90, (count, 2)),
                   "coords": rng.integers(0, 9, (count, 4))}
        with open(os.path.join(data_dir, name), "wb") as f:
            pickle.dump(content, f, protocol=protocol)
        written[name] = features, labels
    return written


def test_pickles_read_with_their_pixels_and_labels(tmp_path):
    written = write_pickles(tmp_path)
    assert SOURCE.class_names(str(tmp_path))[13] == "Yield"
    assert SOURCE.num_classes(str(tmp_path)) == 43
    expected = {"train": ["train.p"], "val": ["valid.p"], "test": ["test.p"],
                "trainval": ["train.p", "valid.p"]}
    for split, files in expected.items():
        names, images, labels = read(tmp_path, split, image_size=32)
        features = np.concatenate([written[f][0] for f in files])
        np.testing.assert_array_equal(images, features, err_msg=split)
        assert labels.tolist() == np.concatenate([written[f][1] for f in files]).tolist()
        assert names == [f"{f}:{i}" for f in files for i in range(len(written[f][0]))]
        assert SOURCE.num_examples(str(tmp_path), split, None) == len(labels)
    _, small, _ = read(tmp_path, "val", image_size=16)
    resized = tf.image.resize(written["valid.p"][0].astype(np.float32), [16, 16]).numpy()
    np.testing.assert_allclose(small, resized, atol=1e-3)
    vgg, _ = collect(SOURCE.read(str(tmp_path), "test", 4, image_size=32))
    np.testing.assert_allclose(vgg, written["test.p"][0][..., ::-1] - [103.939, 116.779, 123.68],
                               atol=1e-3)
    with pytest.raises(DataError, match="--crop-roi cannot cut the pickles"):
        SOURCE.read(str(tmp_path), "train", 4, crop_roi=True)
    (tmp_path / "test.p").unlink()
    with pytest.raises(DataError, match=r"test.p is missing: with pickles the test split is"):
        SOURCE.validate(str(tmp_path), "test")


def test_pickles_in_a_graph_shuffled_and_augmented(tmp_path):
    written = write_pickles(tmp_path, {"train.p": 20, "valid.p": 3, "test.p": 2})
    with tf.Graph().as_default():
        data = SOURCE.read(str(tmp_path), "train", 8, shuffle=True, augment=True, repeat=True,
                           seed=2, preprocess="none")
        images, labels = tf1.data.make_one_shot_iterator(data).get_next()
        with tf1.Session() as session:
            seen = [session.run([images, labels]) for _ in range(5)]
    assert all(x.shape == (8, 32, 32, 3) for x, _ in seen)
    # a flipped sign of a mirror pair (keep left) is its partner (keep right)
    mirror = gtsrb.mirror_ids()
    allowed = set(written["train.p"][1].tolist())
    allowed |= {mirror[c] for c in allowed if mirror[c] >= 0}
    assert set(np.concatenate([y for _, y in seen])) <= allowed


class Payload:
    """Pickles as a call of FUNCTION(*ARGS): what a hostile file would run when unpickled."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def test_a_hostile_pickle_is_refused_before_it_runs(tmp_path):
    write_pickles(tmp_path)
    marker = tmp_path / "ran"
    path = tmp_path / "train.p"
    labels = np.zeros(2, np.uint8)
    for payload in (Payload(os.system, f"touch {marker}"), Payload(open, str(marker), "w")):
        path.write_bytes(pickle.dumps({"features": payload, "labels": labels}))
        for call in (SOURCE.validate, SOURCE.num_examples):
            with pytest.raises(DataError) as error:
                call(str(tmp_path), "trainval")
            message = str(error.value)
            assert message.startswith(f"{path}: refused: it asks for ") and "\n" not in message
            assert "nothing from this one was run" in message
        assert not marker.exists()
    # The same file is live: an ordinary unpickler would have created the marker.
    with pickle.loads(path.read_bytes())["features"]:
        pass
    assert marker.exists()


def test_pickles_that_are_not_the_labs(tmp_path):
    write_pickles(tmp_path)
    path = tmp_path / "valid.p"
    original = path.read_bytes()
    cases = [(pickle.dumps([1, 2]), "holds a list, not a dict with 'features' and 'labels'"),
             (pickle.dumps({"features": np.zeros((2, 32, 32), np.uint8),
                            "labels": np.zeros(2, np.uint8)}), "'features' is a uint8 array of"),
             (pickle.dumps({"features": np.zeros((2, 8, 8, 3), np.uint8),
                            "labels": np.array([3, 43])}), "image 1 has label 43, not a class"),
             (pickle.dumps({"features": np.zeros((2, 8, 8, 3), np.uint8),
                            "labels": np.zeros(2)}), "'labels' is a float64 array"),
             (original[:500], "truncated or corrupt")]
    for content, expected in cases:
        path.write_bytes(content)
        with pytest.raises(DataError) as error:
            SOURCE.validate(str(tmp_path), "val")
        assert str(error.value).startswith(str(path)) and expected in str(error.value)


# ----------------------------------------------------------------------------------------------
# Class folders, as ../shared/data/gtsrb-sample/train
# ----------------------------------------------------------------------------------------------

def write_sign_folders(root, tracks, seed=0):
    """ROOT/<class>/TTTTT_NNNNN.ppm for {class: {track: pictures}}, 6x6 random pixels; returns
    {path relative to ROOT: pixels}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name, counts in tracks.items():
        for track, pictures in counts.items():
            for n in range(pictures):
                rel = f"{name}/{track:05d}_{n:05d}.ppm"
                written[rel] = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                write_ppm(os.path.join(root, rel), written[rel])
    return written


def folder_track(name):
    """"<class>/TTTTT" of "<class>/TTTTT_NNNNN.ppm"; "<class>/<file>" for other names."""
    folder, file = name.split("/")[-2:]
    match = re.fullmatch(r"(\d+)_\d+\.ppm", file)
    return f"{folder}/{match.group(1) if match else file}"


def test_class_folders_like_the_sample(tmp_path):
    classes = ["vorfahrt_gewaehren", "stopp", "30_kmh", "ueberholverbot"]
    tracks = {name: {t: 1 + (t + k) % 3 for t in range(3 * k, 3 * k + 30)}
              for k, name in enumerate(classes)}
    written = write_sign_folders(str(tmp_path), tracks)
    Image.fromarray(np.full((6, 6, 3), 9, np.uint8)).save(tmp_path / "stopp" / "extra.ppm")
    written["stopp/extra.ppm"] = np.full((6, 6, 3), 9, np.uint8)
    names = sorted(classes)
    assert SOURCE.class_names(str(tmp_path)) == names == ["30_kmh", "stopp", "ueberholverbot",
                                                          "vorfahrt_gewaehren"]
    assert SOURCE.num_classes(str(tmp_path)) == 4
    found, images, labels = read(tmp_path, "trainval", image_size=6)
    assert found == sorted(written) and len(images) == len(labels) == len(found)
    for name, image, label in zip(found, images, labels):
        np.testing.assert_array_equal(image, written[name], err_msg=name)
        assert names[label] == name.split("/")[0]
    val = SOURCE.image_names(str(tmp_path), "val")
    train = SOURCE.image_names(str(tmp_path), "train")
    assert sorted(val + train) == found
    assert val and not {folder_track(n) for n in val} & {folder_track(n) for n in train}
    assert {folder_track(n) for n in val} == {folder_track(n) for n in found
                                              if h("val:" + folder_track(n)) % 100 < 10}
    with pytest.raises(DataError, match="has no test split: with class folders it is"):
        SOURCE.validate(str(tmp_path), "test")
    with pytest.raises(DataError, match="--crop-roi needs the ROIs of the official layout"):
        SOURCE.validate(str(tmp_path), "train", crop_roi=True)


def test_class_folders_with_a_test_folder(tmp_path):
    write_sign_folders(str(tmp_path / "train"), {"a": {0: 2, 1: 2}, "b": {0: 3}})
    test = write_sign_folders(str(tmp_path / "test"), {"b": {0: 1}, "a": {5: 2}}, seed=1)
    found, images, labels = read(tmp_path, "test", image_size=6)
    assert found == ["test/" + n for n in sorted(test)] and labels.tolist() == [0, 0, 1]
    for name, image in zip(found, images):
        np.testing.assert_array_equal(image, test[name[5:]])
    assert SOURCE.num_examples(str(tmp_path), "trainval", None) == 7
    assert set(SOURCE.image_names(str(tmp_path), "val", 2)) in (
        {"train/a/00000_00000.ppm", "train/a/00000_00001.ppm"},
        {"train/a/00001_00000.ppm", "train/a/00001_00001.ppm"},
        {"train/b/00000_00000.ppm", "train/b/00000_00001.ppm", "train/b/00000_00002.ppm"})


def test_signnames_csv_lists_the_43_official_names():
    with open(input_data.SIGN_NAMES, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ClassId", "SignName"] and len(rows) == 44
    assert [int(r[0]) for r in rows[1:]] == list(range(43))
    assert rows[1 + 17][1] == "No entry" and rows[1 + 40][1] == "Roundabout mandatory"
    assert input_data.sign_names() == [r[1] for r in rows[1:]]

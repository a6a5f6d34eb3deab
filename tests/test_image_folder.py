"""input_data.py's folder source on tiny image folders written here: every format decoding to
known pixels, class names and labels, the hashed and the test/-folder splits (disjoint, covering,
stable when files are added), val_size, the errors on bad files and folders, skipping bad images,
augmentation at other sides than 32, and graph mode."""

import hashlib
import os
import re
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import input_data
from input_data import DataError

tf1 = tf.compat.v1
SIDE = 4  # the side of the numbered images


def numbered_image(number):
    """A SIDE x SIDE RGB image that says its number: red = number % 256, green = number // 256,
    blue a pattern (so that it is not constant)."""
    image = np.zeros((SIDE, SIDE, 3), np.uint8)
    image[..., 0] = number % 256
    image[..., 1] = number // 256
    image[..., 2] = np.arange(SIDE * SIDE).reshape(SIDE, SIDE) * 7
    return image


def write_numbered(folder, first, count):
    """COUNT numbered PNGs FIRST.. in FOLDER; returns their numbers."""
    os.makedirs(folder, exist_ok=True)
    for number in range(first, first + count):
        Image.fromarray(numbered_image(number)).save(os.path.join(folder, f"{number:04d}.png"))
    return list(range(first, first + count))


def write_classes(data_dir, counts, first=0):
    """Numbered images in DATA_DIR/<class>/ for {class: count}; returns {number: class}."""
    owner = {}
    for name, count in counts.items():
        for number in write_numbered(os.path.join(data_dir, name), first, count):
            owner[number] = name
        first += count
    return owner


def numbers(data_dir, split, **kwargs):
    """(numbers, labels) of the numbered images of a split, in the order read."""
    options = dict(preprocess="none", image_size=SIDE) | kwargs
    found, labels = [], []
    for x, y in input_data.read_folder(str(data_dir), split, 16, **options):
        x = x.numpy()
        assert np.array_equal(x, np.round(x))
        found += (x[:, 0, 0, 0] + 256 * x[:, 0, 0, 1]).astype(int).tolist()
        labels += y.numpy().tolist()
    return found, labels


def h(text):
    """The documented split hash, computed here independently of input_data."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels), [len(y) for y in labels]


# ----------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------

def ascii_pnm(magic, pixels, maxval=255):
    """An ASCII PPM (P3, HWC pixels) or PGM (P2, HW pixels), with a comment line."""
    rows = [" ".join(map(str, row.ravel())) for row in pixels]
    height, width = pixels.shape[:2]
    return f"{magic}\n# written by the test\n{width} {height}\n{maxval}\n".encode() + \
        "\n".join(rows).encode() + b"\n"


def write_formats(folder, rng):
    """One 8x8 file per format in FOLDER; returns {file name: expected RGB uint8 pixels}."""
    os.makedirs(folder)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    alpha = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 200, 30], [10, 20, 250], [90, 90, 90]], np.uint8)
    indices = rng.integers(0, 4, (8, 8), dtype=np.uint8)
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette(palette.ravel().tolist() + [0] * (768 - palette.size))
    as_rgb = lambda g: np.repeat(g[:, :, None], 3, axis=2)  # noqa: E731
    expected = {}

    def save(name, image, pixels, **options):
        image.save(os.path.join(folder, name), **options)
        expected[name] = pixels

    save("jpeg.jpg", Image.fromarray(np.full((8, 8, 3), (200, 40, 90), np.uint8)),
         np.full((8, 8, 3), (200, 40, 90), np.uint8), quality=100)
    save("jpeg_upper.JPEG", Image.fromarray(np.full((8, 8, 3), (20, 140, 250), np.uint8)),
         np.full((8, 8, 3), (20, 140, 250), np.uint8), format="JPEG", quality=100)
    save("png.png", Image.fromarray(rgb), rgb)
    save("png_upper.PNG", Image.fromarray(rgb[::-1]), rgb[::-1], format="PNG")
    save("png_grey.png", Image.fromarray(grey), as_rgb(grey))
    save("png_rgba.png", Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), rgb)
    save("png_palette.png", paletted, palette[indices])
    save("bmp.bmp", Image.fromarray(rgb[:, ::-1]), rgb[:, ::-1])
    save("bmp_palette.bmp", paletted, palette[indices])  # TensorFlow misreads it: Pillow
    save("gif.gif", paletted, palette[indices])
    save("ppm_p6.ppm", Image.fromarray(rgb.T.transpose(1, 2, 0)), rgb.T.transpose(1, 2, 0))
    save("pgm_p5.pgm", Image.fromarray(grey), as_rgb(grey))
    save("pnm_upper.PNM", Image.fromarray(rgb[::-1, ::-1]), rgb[::-1, ::-1], format="PPM")
    with open(os.path.join(folder, "ppm_p3.ppm"), "wb") as f:
        f.write(ascii_pnm("P3", rgb))
    expected["ppm_p3.ppm"] = rgb
    with open(os.path.join(folder, "pgm_p2.pgm"), "wb") as f:
        f.write(ascii_pnm("P2", grey))
    expected["pgm_p2.pgm"] = as_rgb(grey)
    with open(os.path.join(folder, "pgm_p2_maxval15.pgm"), "wb") as f:
        f.write(ascii_pnm("P2", grey // 17, maxval=15))
    expected["pgm_p2_maxval15.pgm"] = as_rgb(grey // 17 * 17)
    with open(os.path.join(folder, "pgm_16bit.pgm"), "wb") as f:
        f.write(b"P5\n8 8\n65535\n" + (grey.astype(">u2") * 257).tobytes())
    expected["pgm_16bit.pgm"] = as_rgb(grey)
    return expected


def test_every_format_decodes_to_its_pixels(tmp_path):
    expected = write_formats(str(tmp_path / "test" / "signs"), np.random.default_rng(0))
    write_numbered(str(tmp_path / "train" / "signs"), 0, 1)
    names = sorted(expected)
    images, labels, _ = collect(input_data.read_folder(str(tmp_path), "test", 5,
                                                       preprocess="none", image_size=8))
    assert images.shape == (len(names), 8, 8, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels) == {0}
    for name, image in zip(names, images):
        tolerance = 3 if name.startswith("jpeg") else 0
        np.testing.assert_allclose(image, expected[name], atol=tolerance, err_msg=name)
    decoders = {os.path.basename(p): d for p, _, d in input_data.validate_folder(
        str(tmp_path), "test")}
    assert decoders["png.png"] == decoders["jpeg.jpg"] == decoders["gif.gif"] == "tf"
    assert decoders["ppm_p3.ppm"] == decoders["bmp_palette.bmp"] == "pillow"


def test_images_are_resized_bilinearly_and_default_to_32(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)  # 6 wide
    for name in ("a.png", "b.ppm"):
        os.makedirs(tmp_path / "test" / "c", exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "test" / "c" / name)
    write_numbered(str(tmp_path / "train" / "c"), 0, 1)
    for size in (None, 7):
        images, _, _ = collect(input_data.read_folder(str(tmp_path), "test", 2, preprocess="none",
                                                      image_size=size))
        side = size or 32
        resized = tf.image.resize(pixels.astype(np.float32), [side, side]).numpy()
        assert images.shape == (2, side, side, 3)
        np.testing.assert_allclose(images, [resized, resized], atol=1e-3)
    vgg, _, _ = collect(input_data.read_folder(str(tmp_path), "test", 2, image_size=7))
    np.testing.assert_allclose(vgg, images[..., ::-1] - [103.939, 116.779, 123.68], atol=1e-3)


# ----------------------------------------------------------------------------------------------
# Classes and splits
# ----------------------------------------------------------------------------------------------

def test_class_names_are_sorted_folders_and_labels_match(tmp_path):
    owner = write_classes(str(tmp_path), {"zebra": 5, "Ant": 4, "cat": 6, "bee": 3})
    # ignored: hidden folders and files, files in DATA_DIR, other extensions, subfolders
    write_numbered(str(tmp_path / ".thumbnails"), 900, 2)
    write_numbered(str(tmp_path / "cat" / "nested"), 910, 2)
    Image.fromarray(numbered_image(920)).save(tmp_path / "cat" / ".hidden.png")
    Image.fromarray(numbered_image(921)).save(tmp_path / "loose.png")
    (tmp_path / "README.txt").write_text("signs\n")
    (tmp_path / "bee" / "labels.csv").write_text("0;1\n")

    names = ["Ant", "bee", "cat", "zebra"]
    assert input_data.folder_class_names(str(tmp_path)) == names
    source = input_data.SOURCES["folder"]
    assert source.class_names(str(tmp_path)) == names
    assert source.num_classes(str(tmp_path)) == 4
    assert input_data.SOURCES["cifar10"].num_classes(str(tmp_path)) == 10
    seen = {}
    for split in ("trainval", "test"):
        found, labels = numbers(tmp_path, split)
        assert found == sorted(found, key=lambda n: (owner[n], n))  # path order
        seen.update(zip(found, labels))
    assert sorted(seen) == sorted(owner)  # nothing ignored was read
    assert all(names[label] == owner[number] for number, label in seen.items())


def splits_of(data_dir, **kwargs):
    return {split: set(numbers(data_dir, split, **kwargs)[0])
            for split in ("train", "val", "trainval", "test")}


def test_hashed_splits_are_disjoint_cover_all_and_stay_when_files_are_added(tmp_path):
    owner = write_classes(str(tmp_path), {"a": 30, "b": 30})
    before = splits_of(tmp_path)
    assert before["train"] | before["val"] == before["trainval"]
    assert not before["train"] & before["val"] and not before["trainval"] & before["test"]
    assert before["trainval"] | before["test"] == set(owner)
    assert all(before.values())  # none empty
    # exactly the documented rule
    rel = {number: f"{name}/{number:04d}.png" for number, name in owner.items()}
    assert before["test"] == {n for n in owner if h(rel[n]) % 100 < 10}
    assert before["val"] == {n for n in before["trainval"] if h("val:" + rel[n]) % 100 < 10}

    write_classes(str(tmp_path), {"a": 10, "b": 10}, first=100)  # 20 new files
    after = splits_of(tmp_path)
    for split in before:
        assert after[split] & set(owner) == before[split], split
    assert after["trainval"] | after["test"] == set(owner) | set(range(100, 120))
    for split in ("trainval", "test"):
        assert input_data.folder_num_examples(str(tmp_path), split) == len(after[split])


def test_a_test_folder_is_the_test_split(tmp_path):
    train = write_classes(str(tmp_path / "train"), {"b": 6, "a": 5, "c": 4})
    write_classes(str(tmp_path / "test"), {"c": 3, "a": 2}, first=100)  # no b
    assert input_data.folder_class_names(str(tmp_path)) == ["a", "b", "c"]
    found, labels = numbers(tmp_path, "test")
    assert found == [103, 104, 100, 101, 102] and labels == [0, 0, 2, 2, 2]  # a/, then c/
    found, labels = numbers(tmp_path, "trainval")
    assert sorted(found) == sorted(train)
    assert [["a", "b", "c"][label] for label in labels] == [train[n] for n in found]
    splits = splits_of(tmp_path, val_size=3)
    assert len(splits["val"]) == 3 and splits["train"] | splits["val"] == set(train)
    assert not splits["train"] & splits["val"]


def test_train_folder_alone_hashes_test_out_of_it(tmp_path):
    owner = write_classes(str(tmp_path / "train"), {"a": 20, "b": 20})
    assert input_data.folder_class_names(str(tmp_path)) == ["a", "b"]
    test = set(numbers(tmp_path, "test")[0])
    assert test == {n for n, c in owner.items() if h(f"train/{c}/{n:04d}.png") % 100 < 10}


def test_val_size_none_scales_with_the_data_and_a_number_is_exact(tmp_path):
    small, large = str(tmp_path / "small"), str(tmp_path / "large")
    write_classes(small, {"a": 30, "b": 30})
    write_classes(large, {"a": 200, "b": 200})
    sizes = {}
    for data_dir in (small, large):
        trainval = input_data.folder_num_examples(data_dir, "trainval")
        val = input_data.folder_num_examples(data_dir, "val")
        assert input_data.folder_num_examples(data_dir, "train") == trainval - val
        sizes[data_dir] = val, trainval
    assert sizes[small][0] >= 1  # a hashed share: about 10%, noisy on few images
    assert 0.07 < sizes[large][0] / sizes[large][1] < 0.13

    trainval = input_data.folder_num_examples(small, "trainval")
    val, _ = numbers(small, "val", val_size=7)
    train, _ = numbers(small, "train", val_size=7)
    assert len(set(val)) == 7 and len(train) == trainval - 7 and not set(val) & set(train)
    assert input_data.folder_num_examples(small, "val", 7) == 7
    assert input_data.folder_num_examples(small, "train", 7) == trainval - 7
    # a file never moves from train into val when files are added
    write_classes(small, {"a": 5, "b": 5}, first=500)
    val_after, _ = numbers(small, "val", val_size=7)
    assert len(val_after) == 7 and set(val_after) <= set(val) | set(range(500, 510))
    for bad in (0, trainval + 10):
        with pytest.raises(DataError, match=r"val_size \(--val-size\) \d+ must be between 1"):
            input_data.read_folder(small, "train", 8, val_size=bad)


def test_deterministic_order_keeps_the_partial_batch(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 6, "b": 4})
    write_classes(str(tmp_path / "test"), {"a": 1}, first=100)
    images, labels, sizes = collect(input_data.read_folder(str(tmp_path), "trainval", 4,
                                                           preprocess="none", image_size=SIDE))
    assert sizes == [4, 4, 2] and labels.tolist() == [0] * 6 + [1] * 4
    assert (images[:, 0, 0, 0]).tolist() == list(range(10))
    shuffled = input_data.read_folder(str(tmp_path), "trainval", 4, shuffle=True, seed=1)
    assert [len(y) for _, y in shuffled] == [4, 4]  # shuffled: the remainder dropped


# ----------------------------------------------------------------------------------------------
# Augmentation, graph mode
# ----------------------------------------------------------------------------------------------

def windows(augmented, original, side):
    """The (top, left, mirrored) windows of ORIGINAL padded by 4 zeros equal to AUGMENTED."""
    padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
    return {(y, x, m) for y in range(9) for x in range(9) for m in (False, True)
            if np.array_equal(augmented, padded[y:y + side, x:x + side][:, ::-1 if m else 1])}


def test_augmentation_crops_and_flips_at_the_image_size(tmp_path):
    folder = tmp_path / "train" / "a"
    folder.mkdir(parents=True)
    write_classes(str(tmp_path / "test"), {"a": 1})
    rng = np.random.default_rng(2)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
            folder / f"{i:02d}.png")
    options = dict(preprocess="none", image_size=12)
    originals, _, _ = collect(input_data.read_folder(str(tmp_path), "trainval", 24, **options))
    augmented, _, _ = collect(input_data.read_folder(str(tmp_path), "trainval", 24,
                                                     augment=True, seed=3, **options))
    assert augmented.shape == originals.shape == (24, 12, 12, 3)
    found = [windows(a, o, 12) for a, o in zip(augmented, originals)]
    assert all(len(w) == 1 for w in found)
    assert 3 < sum(m for w in found for _, _, m in w) < 21
    assert len({(y, x) for w in found for y, x, _ in w}) > 8


def test_graph_mode_iterators(tmp_path):
    write_classes(str(tmp_path), {"a": 25, "b": 25})
    (tmp_path / "a" / "extra.ppm").write_bytes(ascii_pnm("P3", np.full((3, 3, 3), 7)))
    data_dir = str(tmp_path)
    eager, eager_labels, _ = collect(input_data.read_folder(data_dir, "trainval", 8))
    with tf.Graph().as_default():
        trainval = input_data.read_folder(data_dir, "trainval", 8)
        iterator = tf1.data.make_initializable_iterator(trainval)
        batch = iterator.get_next()
        train = input_data.read_folder(data_dir, "train", 8, shuffle=True, augment=True,
                                       repeat=True, seed=5, val_size=5)
        images, labels = tf1.data.make_one_shot_iterator(train).get_next()
        assert images.shape.as_list() == [8, 32, 32, 3]
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        with tf1.Session() as session:
            for _ in range(2):
                session.run(iterator.initializer)
                got = []
                while True:
                    try:
                        got.append(session.run(batch))
                    except tf.errors.OutOfRangeError:
                        break
                np.testing.assert_allclose(np.concatenate([x for x, _ in got]), eager,
                                           atol=1e-4)
                np.testing.assert_array_equal(np.concatenate([y for _, y in got]), eager_labels)
            for _ in range(12):  # more than two epochs
                x, y = session.run([images, labels])
                assert x.shape == (8, 32, 32, 3) and set(y) <= {0, 1}


# ----------------------------------------------------------------------------------------------
# Bad files and folders
# ----------------------------------------------------------------------------------------------

def write_bad_images(folder):
    """A .jpg of random bytes, a truncated PNG and a truncated JPEG in FOLDER; their paths."""
    rng = np.random.default_rng(4)
    paths = [os.path.join(folder, name) for name in ("noise.jpg", "cut.png", "cut.jpg")]
    with open(paths[0], "wb") as f:
        f.write(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    big = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for path, fmt in zip(paths[1:], ("PNG", "JPEG")):
        big.save(path, format=fmt)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    return paths


def test_bad_images_are_named_or_skipped(tmp_path, capsys):
    data_dir = str(tmp_path)
    write_classes(str(tmp_path / "train"), {"a": 6, "b": 5})
    write_classes(str(tmp_path / "test"), {"a": 3}, first=100)
    bad = write_bad_images(str(tmp_path / "train" / "b"))
    for split in ("train", "val", "trainval"):
        with pytest.raises(DataError) as error:
            input_data.read_folder(data_dir, split, 4)
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"3 of the 14 trainval images in "
                                  f"{os.path.join(data_dir, 'train')} are unreadable or corrupt")
        assert all(path in message for path in bad)
        assert "fix or remove them, or pass --skip-bad-images" in message
    input_data.validate_folder(data_dir, "test")  # test/ is fine

    assert len(input_data.validate_folder(data_dir, "trainval", skip_bad_images=True)) == 11
    out = capsys.readouterr().out
    assert out.count("leaving out 3 of the 14 trainval images") == 1
    assert input_data.folder_num_examples(data_dir, "trainval", skip_bad_images=True) == 11
    found, labels = numbers(tmp_path, "trainval", skip_bad_images=True)
    assert "leaving out" not in capsys.readouterr().out  # said once
    assert sorted(found) == list(range(11)) and labels == [0] * 6 + [1] * 5
    train = input_data.folder_num_examples(data_dir, "train", 4, skip_bad_images=True)
    assert train == 7 and len(numbers(tmp_path, "train", val_size=4,
                                      skip_bad_images=True)[0]) == 7


def test_many_bad_images_are_counted_not_all_listed(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 2})
    write_classes(str(tmp_path / "test"), {"a": 1})
    for i in range(5):
        (tmp_path / "train" / "a" / f"junk{i}.gif").write_bytes(b"GIF89a but nothing else")
    with pytest.raises(DataError,
                       match=r"5 of the 7 trainval images .*junk2\.gif \(.*\) and 2 more;"):
        input_data.validate_folder(str(tmp_path), "trainval")


def test_an_image_spoilt_after_its_check_is_checked_again(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 20})
    write_classes(str(tmp_path / "test"), {"a": 1})
    input_data.validate_folder(str(tmp_path), "trainval")
    path = tmp_path / "train" / "a" / "0003.png"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=re.escape(str(path))):
        input_data.validate_folder(str(tmp_path), "trainval")


def test_empty_class_folders(tmp_path):
    write_classes(str(tmp_path), {"a": 3, "c": 3})
    (tmp_path / "b").mkdir()
    (tmp_path / "d" / "sub").mkdir(parents=True)
    Image.fromarray(numbered_image(0)).save(tmp_path / "d" / "sub" / "x.png")  # not read
    (tmp_path / "d" / "notes.txt").write_text("none here")
    for skip in (False, True):
        with pytest.raises(DataError) as error:
            input_data.validate_folder(str(tmp_path), "trainval", skip_bad_images=skip)
        message = str(error.value)
        assert message.startswith("2 class folders hold no images") and "\n" not in message
        assert f"{tmp_path / 'b'}, {tmp_path / 'd'};" in message
        assert "add images or remove those folders" in message


def test_test_class_missing_from_train(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 3})
    write_classes(str(tmp_path / "test"), {"a": 1, "x": 1, "y": 1})
    with pytest.raises(DataError) as error:
        input_data.read_folder(str(tmp_path), "test", 4)
    message = str(error.value)
    assert message.startswith(f"2 class folders of {tmp_path / 'test'} are not in "
                              f"{tmp_path / 'train'}: {tmp_path / 'test' / 'x'}, "
                              f"{tmp_path / 'test' / 'y'};")
    assert "\n" not in message


def test_missing_or_empty_data_dir(tmp_path):
    absent = str(tmp_path / "nowhere")
    for call in (input_data.prepare_folder, input_data.folder_class_names,
                 lambda d: input_data.read_folder(d, "train", 4)):
        with pytest.raises(DataError, match=re.escape(f"{absent} does not exist")):
            call(absent)
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path} holds no class folders")):
        input_data.validate_folder(str(tmp_path), "train")
    assert input_data.prepare_folder(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("val_name", ["val", "valid", "validation"])
def test_a_validation_folder_is_the_val_split(tmp_path, val_name, capsys):
    train = write_classes(str(tmp_path / "train"), {"a": 3, "b": 2})
    val = write_classes(str(tmp_path / val_name), {"a": 2}, first=100)  # no b: said, allowed
    test = write_classes(str(tmp_path / "test"), {"a": 1, "b": 1}, first=200)
    label = {"a": 0, "b": 1}
    for split, owner in (("train", train), ("val", val), ("test", test),
                         ("trainval", {**train, **val})):
        found, labels = numbers(tmp_path, split)
        assert sorted(found) == sorted(owner), split
        assert labels == [label[owner[n]] for n in found]
    assert f"{tmp_path / val_name} has no folder for 1 of the 2 classes (b)" in \
        capsys.readouterr().out
    assert input_data.folder_num_examples(str(tmp_path), "val", 0) == 2  # (0: trainval's)
    with pytest.raises(DataError, match=re.escape(f"--val-size 1: {tmp_path / val_name} is "
                                                  "the validation split")):
        input_data.folder_num_examples(str(tmp_path), "train", 1)


def test_validation_folder_errors(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 2})
    write_classes(str(tmp_path / "val"), {"a": 1, "x": 1})
    with pytest.raises(DataError, match=re.escape(f"1 class folders of {tmp_path / 'val'} are "
                                                  f"not in {tmp_path / 'train'}")):
        input_data.folder_num_examples(str(tmp_path), "val")
    shutil.rmtree(tmp_path / "val" / "x")
    with pytest.raises(DataError, match="has no test split: with .* as the validation split"):
        input_data.folder_num_examples(str(tmp_path), "test")
    write_classes(str(tmp_path / "valid"), {"a": 1}, first=50)
    with pytest.raises(DataError, match="are both validation folders; keep one"):
        input_data.folder_class_names(str(tmp_path))


def test_train_and_evaluate_on_train_and_val_folders(tmp_path):
    """The layout of PyTorch's transfer-learning tutorial: hymenoptera_data/{train,val}/."""
    import helpers

    data = tmp_path / "hymenoptera_data"
    helpers.write_folder(data / "train", ["ants", "bees"], per_class=6)
    helpers.write_folder(data / "val", ["ants", "bees"], per_class=3, seed=1)
    logs = tmp_path / "logs"
    trained = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir", data,
                           "--arch", "vgg11", "--pretrained", "none", "--fc-size", 0,
                           "--max-steps", 2, "--batch-size", 4, "--log-dir", logs, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "on 500 images" not in trained.stdout and " on 6 images" in trained.stdout
    evaluated = helpers.call("evaluate.py", "--data-dir", data, "--log-dir", logs, "--split",
                             "val", "--errors", 0, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "evaluated 6 val images" in evaluated.stdout
    refused = helpers.call("train_and_val.py", "--dataset", "folder", "--data-dir", data,
                           "--val-size", 2, "--log-dir", tmp_path / "other", cwd=tmp_path)
    assert "is the validation split" in helpers.one_line_error(refused)


def test_an_empty_split(tmp_path):
    write_classes(str(tmp_path / "train"), {"a": 1})
    with pytest.raises(DataError, match="the (val|train|trainval) split of .* holds no images"):
        input_data.folder_num_examples(str(tmp_path), "val")

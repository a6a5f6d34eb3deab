"""datasets/image_files.py on files written here: which names count as images, the split hash
(SHA-1 of the relative path, stable across machines), the verdict on good, truncated and
foreign files (remembered until the file changes), and the one-line errors that name them."""

import hashlib
import os

import numpy as np
from PIL import Image
import pytest

from common import cli
from datasets import image_files
from datasets.base import DataError


def write_png(path, seed=0, size=(6, 5)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def test_image_names_by_extension_in_any_case_but_hidden_files():
    assert all(image_files.is_image_file(name) for name in (
        "a.jpg", "b.JPEG", "c.png", "d.Bmp", "e.gif", "f.ppm", "g.pgm", "h.pnm", "dir/i.png"))
    assert not any(image_files.is_image_file(name) for name in (
        ".hidden.png", "notes.txt", "a.png.part", "tiff.tif", "noext"))


def test_the_split_hash_is_sha1_of_the_relative_path_with_slashes():
    expected = int.from_bytes(hashlib.sha1(b"val:cats/0001.png").digest()[:8], "big")
    assert image_files.path_hash(os.path.join("cats", "0001.png"), "val:") == expected
    assert image_files.path_hash("cats/0001.png", "val:") == expected
    assert image_files.path_hash("cats/0001.png") != expected  # (the salt counts)


def test_files_are_judged_by_content_and_remembered_until_they_change(tmp_path):
    good, named_wrong, cut, text = (tmp_path / n for n in ("a.png", "b.jpg", "c.png", "d.png"))
    write_png(good)
    write_png(named_wrong, seed=1)  # a PNG named .jpg: decoded as what it is
    cut.write_bytes(good.read_bytes()[:-20])  # its pixel data cut short
    text.write_text("not an image at all")
    verdicts = image_files.check_all([good, named_wrong, cut, text])
    assert verdicts[:2] == [("tf", None), ("tf", None)]
    assert verdicts[2][0] is None and verdicts[2][1].startswith("corrupt")
    assert verdicts[3] == (None, "not an image Pillow can read")
    text.unlink()
    write_png(text, seed=2)  # the same name, now an image: judged again
    assert image_files.check_all([text]) == [("tf", None)]


def test_check_files_names_the_bad_ones_in_one_line(tmp_path):
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        path.write_bytes(b"\x89PNG broken")
        paths.append(str(path))
    with pytest.raises(DataError) as error:
        image_files.check_files(paths)
    message = str(error.value)
    assert message.startswith("5 of the 5 images cannot be used: ") and "\n" not in message
    assert paths[0] in message and "and 2 more" in message and paths[4] not in message


def test_image_files_walks_folders_in_order_and_refuses_what_is_not_there(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    for name in ("b/2.png", "a/1.png", "a/0.png"):
        write_png(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert image_files.image_files([str(tmp_path)]) == [
        str(tmp_path / "a" / "0.png"), str(tmp_path / "a" / "1.png"), str(tmp_path / "b" / "2.png")]
    with pytest.raises(cli.UsageError, match="no such file or folder"):
        image_files.image_files([str(tmp_path / "missing.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(cli.UsageError, match="a folder without images"):
        image_files.image_files([str(tmp_path / "empty")])


def test_image_rgb_decodes_the_pixels_pillow_wrote(tmp_path):
    pixels = write_png(tmp_path / "a.png", seed=3)
    assert np.array_equal(image_files.image_rgb(str(tmp_path / "a.png")), pixels)

"""common/: the JSON files the programs keep (json_files: read with a one-line error, written
whole or not at all), output files written whole or not at all and named when the disk is full
(files), and the progress of long work (progress: plain lines a tenth of the way apart in a log
file)."""

import errno
import io
import json
import os
import re

import pytest

from common import cli
from common import files
from common import json_files
from common.progress import Progress
from common.progress import say


def test_read_json_gives_none_for_a_missing_file_and_names_a_damaged_one(tmp_path):
    assert json_files.read_json(str(tmp_path / "config.json")) is None
    damaged = tmp_path / "best.json"
    damaged.write_text('{"val_accuracy": 0.5')
    with pytest.raises(cli.UsageError) as error:
        json_files.read_json(str(damaged))
    message = str(error.value)
    assert message.startswith(f"{damaged} cannot be read") and "\n" not in message


def test_write_json_replaces_a_file_whole_and_keeps_it_when_writing_fails(tmp_path):
    path = str(tmp_path / "config.json")
    json_files.write_json(path, {"runs": [1, 2]})
    assert json_files.read_json(path) == {"runs": [1, 2]}
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # no temporary copy left
    with pytest.raises(TypeError):
        json_files.write_json(path, {"runs": object()})  # not JSON: fails halfway through
    with open(path) as f:
        assert json.load(f) == {"runs": [1, 2]}  # what a reader sees is still the whole file
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # nor is the half-written copy left


def full_disk():
    return OSError(errno.ENOSPC, "No space left on device")  # (a write's: no file named)


def test_a_file_written_whole_names_itself_and_leaves_nothing_when_the_disk_is_full(tmp_path):
    path = str(tmp_path / "checkpoint")
    with pytest.raises(OSError) as error, files.whole(path) as f:
        f.write("half")
        raise full_disk()
    assert error.value.filename == path and os.listdir(tmp_path) == []


def test_new_files_appear_together_or_not_at_all_and_never_over_another(tmp_path):
    with pytest.raises(OSError) as error, files.NewFiles(str(tmp_path)) as new:
        with new.add("a.png") as f:
            f.write(b"a")
        with new.add("b.png") as f:
            f.write(b"b, half")
            raise full_disk()
    assert error.value.filename == str(tmp_path / "b.png") and os.listdir(tmp_path) == []
    with pytest.raises(cli.UsageError, match="b.png was written by another program"), \
            files.NewFiles(str(tmp_path)) as new:
        for name in ("a.png", "b.png"):
            with new.add(name) as f:
                f.write(b"mine")
        (tmp_path / "b.png").write_bytes(b"another's")  # (a second program, meanwhile)
        new.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]
    assert (tmp_path / "b.png").read_bytes() == b"another's"
    assert oct(os.stat(tmp_path / "a.png").st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_progress_in_a_log_file_is_a_line_every_tenth_of_the_way():
    out = io.StringIO()  # (not a terminal: no live bar)
    with Progress("train", 200, stream=out) as progress:
        for done in range(0, 201, 5):
            progress.update(done)
    lines = out.getvalue().splitlines()
    counts = [int(re.match(r"train: (\d+)/200 images  \d+ images/s  \d+:\d\d left$", line)[1])
              for line in lines]
    assert counts == [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]


def test_say_prints_one_plain_line_off_a_terminal():
    out = io.StringIO()
    say("validation at step 3", out)
    assert out.getvalue() == "validation at step 3\n"

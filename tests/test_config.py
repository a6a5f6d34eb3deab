"""One resolved configuration: a training run's ``RunConfig`` is frozen, has a field for every
flag, is what config.json's entry of the run holds, and comes from ``training.config`` before
anything is written; every program's ``parse_args`` returns a frozen object; and no module of
the project writes the attributes of a parsed command line (the scanner below, with its own
test)."""

import ast
import dataclasses
import json
import os

import pytest
import tensorflow as tf

from common.json_files import read_json
import helpers
from test_house import parsed
from test_house import project_modules
from training import config
from training import runs

tf1 = tf.compat.v1

# What resolution alone gives (no flag of that name)
RESOLVED = {"init_skipped", "codes_layer", "num_classes", "class_weight_values"}


def field_names(cls_or_object):
    return [f.name for f in dataclasses.fields(cls_or_object)]


def test_every_flag_of_train_and_val_is_a_field_of_run_config_in_its_order():
    import train_and_val

    flags = train_and_val.parse_args([])
    flag_names = [name for name in field_names(flags) if name not in RESOLVED | {"codes_flags"}]
    assert flag_names == [name for name in field_names(config.RunConfig)
                          if name not in RESOLVED]
    assert set(field_names(config.RunConfig)) - set(flag_names) == RESOLVED


def test_resolution_fills_in_what_the_data_says_writes_nothing_and_freezes_it(workspace,
                                                                              tmp_path):
    import train_and_val

    root, _ = workspace
    logs = tmp_path / "logs"
    flags = train_and_val.parse_args(["--arch", "vgg11", "--data-dir", str(root / "data"),
                                      "--log-dir", str(logs), "--init-layers", "paper",
                                      "--class-weights", "balanced"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        flags.arch = "vgg16"
    with tf.Graph().as_default():
        cfg, data = config.resolve(flags, runs.RunDir(str(logs)))
    assert not logs.exists()  # (the run's folder is made after resolution)
    assert isinstance(cfg, config.RunConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fc_size = 4096
    assert (cfg.num_classes, cfg.val_size, cfg.fc_size, cfg.image_size) == (10, 50, 0, 32)
    assert (cfg.augment, cfg.resize, cfg.head, cfg.head_size, cfg.codes_layer) == (
        "crop,flip", "squash", None, 0, None)
    assert cfg.init_skipped == ("conv4_1", "conv4_2", "conv5_1", "conv5_2")
    assert cfg.skip == ("fc8",) + cfg.init_skipped
    assert len(cfg.class_weight_values) == 10 and isinstance(cfg.class_weight_values, tuple)
    assert data.train_images == 450 and data.train_split == "train"
    # the flags are as they were: resolution made a new object
    assert (flags.val_size, flags.fc_size, flags.augment, flags.resize) == (None,) * 4


def test_config_json_holds_the_run_config_written_out(workspace, tmp_path):
    """A runs entry has exactly the RunConfig's fields and the run's extras; its values are
    the configuration that the same command resolves to."""
    import train_and_val

    root, _ = workspace
    argv = [str(a) for a in helpers.tiny_args(root, tmp_path, "--max-steps", 2,
                                              "--val-every", 2)]
    result = helpers.call("train_and_val.py", *argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = read_json(tmp_path / "logs" / "train" / "config.json")["runs"][-1]
    assert set(entry) == set(field_names(config.RunConfig)) | set(config.RUN_EXTRAS)
    assert list(entry)[:len(field_names(config.RunConfig))] == field_names(config.RunConfig)
    with tf.Graph().as_default():
        cfg, data = config.resolve(train_and_val.parse_args(argv),
                                   runs.RunDir(str(tmp_path / "logs")))
    # (max_steps is a flag too: the entry's is the run's, here the flag's)
    extras = {key: entry.pop(key) for key in config.RUN_EXTRAS if key != "max_steps"}
    assert entry == json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert entry["max_steps"] == 2 and extras["train_images"] == data.train_images
    assert (extras["start_step"], extras["pretrained_file"], extras["train_split"]) == (
        0, None, "train")
    # the kinds of value config.json has always had
    assert entry["skip"] == ["logits"] and entry["lr_steps"] is None  # (tinynet's head)
    assert entry["plateau_patience"] == 2 and entry["init_skipped"] == []
    with pytest.raises(TypeError, match="started_at"):
        config.run_entry(cfg, started_at="now")


def program_argv():
    return {"train_and_val": [], "evaluate": [], "extract_codes": ["--weights", "w.npy",
                                                                   "--out", "codes"],
            "predict": ["x.png"], "export": ["--out", "exported"],
            "explain": ["x.png", "--out", "maps"], "benchmark": [], "cluster": [],
            "convert_weights": [], "input_data": ["--show"]}


@pytest.mark.parametrize("program", sorted(program_argv()))
def test_every_program_parses_its_command_line_into_a_frozen_object(program):
    parsed_flags = __import__(program).parse_args(program_argv()[program])
    assert dataclasses.is_dataclass(parsed_flags)
    name = field_names(parsed_flags)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(parsed_flags, name, None)


def test_evaluate_resolves_what_the_run_saw_into_a_new_object():
    import evaluate

    flags = evaluate.parse_args(["--log-dir", "logs"])
    run = {"model": {"image_size": 32}, "runs": [{"dataset": "gtsrb", "crop_roi": True,
                                                  "resize": "crop", "val_size": 0}]}
    cfg = evaluate.resolve(flags, run)
    assert (cfg.crop_roi, cfg.resize, cfg.scales) == (True, "crop", None)
    assert (flags.crop_roi, flags.resize) == (False, None)
    other = evaluate.resolve(evaluate.parse_args(["--dataset", "folder"]), run)
    assert (other.crop_roi, other.resize) == (False, "crop")  # (not the run's data set)


def make_checkpoints(folder, steps):
    os.makedirs(folder, exist_ok=True)
    with tf.Graph().as_default():
        step = tf1.train.get_or_create_global_step()
        tf1.get_variable("w", initializer=tf.ones([4]))
        saver = tf1.train.Saver(max_to_keep=None, save_relative_paths=True)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            for n in steps:
                session.run(tf1.assign(step, n))
                saver.save(session, os.path.join(folder, runs.CHECKPOINT_PREFIX),
                           global_step=n)


def damage(folder, step):
    data = next(name for name in os.listdir(folder)
                if name.startswith(f"{runs.CHECKPOINT_PREFIX}-{step}.data-"))
    path = os.path.join(folder, data)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("case", ["no folder", "indexed", "no index", "newest damaged",
                                  "all damaged", "all damaged, no index"])
def test_will_resume_says_before_the_lock_what_tidy_then_finds(tmp_path, case):
    run = runs.RunDir(str(tmp_path / "logs"))
    if case != "no folder":
        make_checkpoints(run.train, [1, 2])
        os.makedirs(run.best)
    if "no index" in case:
        os.remove(os.path.join(run.train, "checkpoint"))
    if "damaged" in case:
        damage(run.train, 2)
    if "all damaged" in case:
        damage(run.train, 1)
    predicted = run.will_resume()
    if case != "no folder":
        run.tidy()
    assert predicted == (run.latest_checkpoint() is not None)
    assert predicted == (case not in ("no folder", "all damaged, no index"))


# ----------------------------------------------------------------------------------------------
# No module writes a parsed command line: the scanner
# ----------------------------------------------------------------------------------------------

# The names the programs and the library give a command line, parsed or resolved.
COMMAND_LINE_NAMES = {"args", "flags", "cfg"}


def writes_to_command_line(tree):
    """``[(line, what)]`` of every write in ``tree`` to an attribute of a name in
    ``COMMAND_LINE_NAMES``: ``args.x = ...``, ``args.x += ...``, ``del args.x``,
    ``setattr(args, ...)``, ``delattr(args, ...)``, ``vars(args)[...] = ...``."""
    found = []

    def attribute_of_name(node):
        return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            node.value.id in COMMAND_LINE_NAMES

    def vars_of_name(node):
        return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) and \
            getattr(node.value.func, "id", None) == "vars" and node.value.args and \
            isinstance(node.value.args[0], ast.Name) and node.value.args[0].id in \
            COMMAND_LINE_NAMES

    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in COMMAND_LINE_NAMES:
            found.append((node.lineno, ast.unparse(node)))
        for target in targets:
            for part in ast.walk(target):  # (a, args.x = ... too)
                if attribute_of_name(part) or vars_of_name(part):
                    found.append((node.lineno, ast.unparse(part)))
    return found


def test_the_scanner_finds_each_kind_of_write():
    tree = ast.parse("args.x = 1\nargs.y += 1\ndel cfg.z\nsetattr(flags, 'w', 2)\n"
                     "a, args.v = 1, 2\nvars(args)['u'] = 3\ndelattr(args, 't')\n"
                     "other.x = 1\nconfig['model'] = 2\nx = args.y\n")
    assert sorted(line for line, _ in writes_to_command_line(tree)) == [1, 2, 3, 4, 5, 6, 7]


def test_no_module_writes_a_parsed_command_line():
    writes = {name: found for name, path in project_modules().items()
              if (found := writes_to_command_line(parsed(path)))}
    assert writes == {}

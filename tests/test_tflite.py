"""TensorFlow Lite exports of a VGG11 with batch norm trained here on PNGs of several sizes: the
float model gives the SavedModel's probabilities on images resized before it; the int8 model
mostly agrees with it at under a third of its size; evaluate.py and predict.py run the model on
every image as they run a checkpoint; versions are never overwritten; a bad model is one line."""

import json
import os
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import helpers
from helpers import call

CLASSES = ["cat", "dog", "emu"]
SIZES = ((8, 8), (20, 31), (45, 33), (32, 32))
tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(data dir, log dir, out): a short VGG11-BN run on 60 PNGs of four sizes, exported as a
    SavedModel (out/1), a float TFLite model (out/2) and an int8 one (out/3)."""
    root = tmp_path_factory.mktemp("tflite")
    helpers.write_folder(root / "images", CLASSES, per_class=20, sizes=SIZES)
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", root / "images",
                  "--arch", "vgg11", "--pretrained", "none", "--batch-norm", "--fc-size", 0,
                  "--max-steps", 6, "--batch-size", 8, "--val-size", 4,
                  "--learning-rate", "0.05", "--log-dir", root / "logs", cwd=root)
    assert result.returncode == 0, result.stderr
    out = root / "exported" / "folder"
    for flags in ((), ("--format", "tflite"), ("--format", "tflite-int8",
                                               "--calibration-images", 40)):
        result = call("export.py", "--log-dir", root / "logs", "--out", out, *flags, cwd=root)
        assert result.returncode == 0, result.stderr
    assert "calibrated on 40 training images" in result.stdout and " bytes (" in result.stdout
    return root / "images", root / "logs", out


def resized(path, side=32):
    """The image at ``path`` as uint8 RGB [side, side, 3]: resized before the model, as the
    README says a TFLite model needs."""
    return np.asarray(Image.open(path).convert("RGB").resize((side, side), Image.BILINEAR))


def saved_model_probabilities(folder, images):
    with tf.Graph().as_default(), tf1.Session() as session:
        meta = tf1.saved_model.loader.load(session, ["serve"], str(folder))
        signature = meta.signature_def["serving_default"]
        return session.run(signature.outputs["probabilities"].name,
                           {signature.inputs["images"].name: images})


def test_float_is_the_saved_model_and_int8_agrees_at_a_quarter_of_the_size(exported):
    from inference import tflite

    images, _, out = exported
    assert sorted(os.listdir(out)) == ["1", "2", "3"]  # one version each, no temporary left
    assert sorted(os.listdir(out / "2")) == ["class_names.txt", "model.json", "model.tflite"]
    assert (out / "3" / "class_names.txt").read_text().split() == CLASSES
    files = sorted(str(p) for p in images.rglob("*.png"))
    pixels = np.stack([resized(f) for f in files])
    assert {Image.open(f).size[::-1] for f in files} == set(SIZES)

    saved = saved_model_probabilities(out / "1", pixels)
    lite, quantized = tflite.load(str(out / "2")), tflite.load(str(out / "3" / "model.tflite"))
    assert lite.image_size == 32 and lite.class_names == CLASSES
    got = lite.run(pixels)[0]
    assert np.linalg.norm(got - saved) / np.linalg.norm(saved) < 1e-4
    assert np.abs(got - saved).max() < 1e-4

    int8 = quantized.run(pixels)[0]
    agree = np.mean(int8.argmax(1) == got.argmax(1))
    assert agree >= 0.95, agree  # (60 images: all 60 agree since the fix of issue 41)
    assert len(set(got.argmax(1))) > 1  # (one answer for all would show nothing)
    weights = [t for t in quantized.interpreter.get_tensor_details()
               if np.prod(t["shape"]) >= 3 * 3 * 64 * 64]  # every kernel of conv2_1 on
    assert weights and all(t["dtype"] == np.int8 for t in weights)
    sizes = [(out / v / "model.tflite").stat().st_size for v in ("2", "3")]
    assert sizes[1] < sizes[0] / 3


def test_the_int8_model_s_first_convolution_reads_the_image_as_the_float_model_does(exported):
    """Issue 41: the input of conv1_1 in the int8 model, scaled back, is the image preprocessed
    (BGR minus the ImageNet mean) within the rounding of its int8 steps. With the channels
    reversed between int8 tensors it was off by up to 120 (REVERSE_V2 kept its input's int8
    values under another scale)."""
    from inference import tflite
    import tools

    images, _, out = exported
    pixels = np.stack([resized(f) for f in sorted(str(p) for p in images.rglob("*.png"))[:10]])
    interpreter = tflite.Interpreter(model_path=str(out / "3" / "model.tflite"),
                                     experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    first = next(op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D")
    seen = {t["index"]: t for t in interpreter.get_tensor_details()}[first["inputs"][0]]
    scale, zero = seen["quantization"]
    assert seen["dtype"] == np.int8 and 0 < scale < 2
    given = interpreter.get_input_details()[0]
    for image in pixels:
        interpreter.set_tensor(given["index"], image[None])
        interpreter.invoke()
        got = (interpreter.get_tensor(seen["index"])[0].astype(np.float32) - zero) * scale
        expected = image[..., ::-1].astype(np.float32) - np.float32(tools.VGG_MEAN_BGR)
        assert np.abs(got - expected).max() < 2 * scale


def test_layer_errors_lists_each_quantized_layer_within_a_step_of_its_scale(exported, tmp_path):
    _, logs, _ = exported
    result = call("export.py", "--log-dir", logs, "--out", tmp_path / "out", "--format",
                  "tflite-int8", "--calibration-images", 20, "--layer-errors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines[lines.index("  op                    scale   error  "
                                                       "tensor") + 1:]]
    ops = [row[0] for row in rows]
    assert ops.count("CONV_2D") == 8 and ops.count("MAX_POOL_2D") == 5  # (VGG11)
    assert "FULLY_CONNECTED" in ops and "REVERSE_V2" not in ops  # (on the uint8 input)
    assert all(0 < float(row[1]) and float(row[2]) < 1 for row in rows), rows
    refused = call("export.py", "--log-dir", logs, "--out", tmp_path / "float", "--format",
                   "tflite", "--layer-errors", cwd=tmp_path)
    assert "--layer-errors goes with --format tflite-int8" in helpers.one_line_error(
        refused, "export.py")


def test_a_version_is_never_overwritten(exported, tmp_path):
    _, logs, out = exported
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    result = call("export.py", "--log-dir", logs, "--out", copy, "--format", "tflite",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{copy / '4' / 'model.tflite'}: " in result.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert sorted(os.listdir(copy)) == ["1", "2", "3", "4"]


def test_evaluate_and_predict_run_the_model_on_every_image(exported, tmp_path):
    images, logs, out = exported
    result = call("evaluate.py", "--data-dir", images, "--log-dir", logs, "--split", "train",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checkpoint = json.loads((logs / "eval" / "train-model.ckpt-6.json").read_text())
    for version in ("2", "3"):
        result = call("evaluate.py", "--model", out / version, "--data-dir", images,
                      "--log-dir", logs, "--split", "train", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        report = json.loads(
            (logs / "eval" / f"train-folder-{version}-model.tflite.json").read_text())
        seen = report["images_evaluated"]
        assert report["images"] == len(seen["files"]) == checkpoint["images"] > 40
        assert seen["files"] == checkpoint["images_evaluated"]["files"]
        right = np.equal(seen["labels"], seen["predictions"])
        assert report["accuracy"] == right.mean()
        assert np.trace(report["confusion_matrix"]) == right.sum()
        if version == "2":  # (float: the checkpoint's answers, on the images rounded to uint8)
            assert np.mean(np.equal(seen["predictions"],
                                    checkpoint["images_evaluated"]["predictions"])) > 0.95
            float_predictions = seen["predictions"]
    files = [str(images / f) for f in seen["files"]]
    predicted = call("predict.py", "--model", out / "2" / "model.tflite", "--json", "--top", 1,
                     "--batch-size", 16, *files, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    found = json.loads(predicted.stdout)
    assert [p["file"] for p in found] == files
    assert [p["top"][0]["index"] for p in found] == float_predictions
    assert {p["top"][0]["class"] for p in found} <= set(CLASSES)


def test_a_bad_model_is_one_line(exported, tmp_path):
    images, logs, out = exported
    corrupt, other = tmp_path / "corrupt", tmp_path / "other"
    shutil.copytree(out / "2", corrupt)
    (corrupt / "model.tflite").write_bytes(b"TFL3 but not really a model" * 10)
    shutil.copytree(out / "2", other)
    (other / "class_names.txt").write_text("a\nb\nc\nd\n")
    cases = [(corrupt, "not a TensorFlow Lite model"),
             (other / "model.tflite", "gives 3 classes, but"),
             (tmp_path / "missing.tflite", "missing.tflite: no such file")]
    for name, damage, words in (
            ("names", lambda f: (f / "class_names.txt").write_bytes(b"\xff\xfe\x81"),
             "class_names.txt is not text"),
            ("cut", lambda f: (f / "model.json").write_text((f / "model.json").read_text()[:50]),
             "model.json cannot be read"),
            ("list", lambda f: (f / "model.json").write_text("[]"),
             "model.json is not what export.py writes")):
        shutil.copytree(out / "2", tmp_path / name)
        damage(tmp_path / name)
        cases.append((tmp_path / name, words))
    for model, words in cases:
        for program, flags in (("evaluate.py", ("--data-dir", images, "--log-dir", logs)),
                               ("predict.py", (images / "cat" / "0.png",))):
            result = call(program, "--model", model, *flags, cwd=tmp_path)
            line = helpers.one_line_error(result, program)
            assert words in line and str(model.name) in line, line


def test_benchmark_times_the_newest_export_of_each_kind_on_the_same_images(exported, tmp_path,
                                                                          capsys):
    import benchmark

    out = exported[2]
    folder = tmp_path / "out"
    folder.mkdir()
    for version, source in (("1", "1"), ("2", "2"), ("3", "3"), ("5", "2")):
        os.symlink(out / source, folder / version)
    flags = ["--tflite", "--export-dir", str(folder), "--repeats", "1", "--tflite-images", "3",
             "--batch-size", "2", "--tflite-threads", "1"]
    assert benchmark.main(flags) == 0
    lines = capsys.readouterr().out.splitlines()
    found = json.loads(lines[-1])
    assert (found["savedmodel"], found["tflite"], found["tflite_int8"]) == tuple(
        str(folder / v) for v in ("1", "5", "3"))  # the newest of each kind
    assert found["images"] == 3 and found["tflite_threads"] == 1
    for name in ("savedmodel", "savedmodel_b1", "tflite", "tflite_int8"):
        assert found[f"{name}_img_s"] > 0, name
    assert found["tflite_bytes"] == os.path.getsize(out / "2" / "model.tflite")
    assert found["tflite_int8_bytes"] == os.path.getsize(out / "3" / "model.tflite")
    assert found["savedmodel_bytes"] == sum(p.stat().st_size for p in (out / "1").rglob("*")
                                            if p.is_file())
    assert [line.split()[:2] for line in lines[1:-1]] == [
        ["SavedModel,", "batch"], ["SavedModel,", "batch"], ["TFLite", "float32"],
        ["TFLite", "int8"]]

    with pytest.raises(SystemExit) as refused:  # (its flags without --tflite)
        benchmark.main(flags[1:])
    assert refused.value.code == 2
    assert "--export-dir goes with --tflite" in capsys.readouterr().err

    os.unlink(folder / "3")  # no int8 version left: one line naming the folder and the kind
    assert benchmark.main(flags) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("benchmark.py: --export-dir") and "no tflite-int8 version" in error
    assert len(error.splitlines()) == 1


def test_a_run_trained_on_every_image_calibrates_on_every_image(exported):
    from inference import serving
    from inference import tflite
    import input_data

    images, logs, _ = exported
    classifier = serving.from_run(str(logs))
    run = {"dataset": "folder", "data_dir": str(images), "val_size": 0}  # (--val-size 0)
    folder = input_data.SOURCES["folder"]
    every = folder.num_examples(str(images), "trainval", 0)  # (all but the hashed test images)
    pixels = tflite.calibration_images({"runs": [run]}, classifier, 1000)
    assert pixels.shape == (every, 32, 32, 3) and pixels.dtype == np.uint8
    run["val_size"] = 4
    assert len(tflite.calibration_images({"runs": [run]}, classifier, 1000)) == every - 4 == \
        folder.num_examples(str(images), "train", 4)


def test_a_network_named_elsewhere_runs_in_predict_and_is_one_line_in_evaluate(workspace,
                                                                               tmp_path):
    """tinynet (its last layer called logits, as the outputs are) exported, then evaluated in a
    process whose network table lacks it, as a checkout without that network would."""
    import nets
    import tiny_net

    root, _ = workspace
    logs = helpers.tiny_run(root, tmp_path, "--max-steps", 2)
    out = tmp_path / "exported"
    made = call("export.py", "--log-dir", logs, "--format", "tflite", "--out", out,
                cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    picture = helpers.write_png(tmp_path / "a.png", (16, 16))
    nets.unregister("tinynet")
    try:
        predicted = call("predict.py", "--model", out / "1", "--json", picture, cwd=tmp_path)
        assert predicted.returncode == 0, predicted.stderr
        assert len(json.loads(predicted.stdout)[0]["top"]) == 5
        line = helpers.one_line_error(call("evaluate.py", "--model", out / "1", "--data-dir",
                                           root / "data", cwd=tmp_path), "evaluate.py")
    finally:
        nets.register(tiny_net.NETWORK)
    assert f"{out / '1' / 'model.json'}: the model's arch is 'tinynet'" in line, line
    assert "vgg11, vgg13" in line and "export it again" in line
    assert not (logs / "eval").exists()

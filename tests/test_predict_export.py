"""predict.py and export.py on a VGG11 with batch norm trained here on a folder of PNGs of several
sizes: predict.py's top class is evaluate.py's prediction, image by image; it resizes as the run
did unless told; an image alone gets what it gets in a batch; explain.py's maps have each
image's own size; the SavedModel, loaded by a Python that never imports the project, gives the
probabilities of the project's own graph; bad input is one line and writes nothing."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

import helpers
from helpers import call
from helpers import own_lines

CLASSES = ["cat", "dog", "emu"]
SIZES = ((8, 8), (20, 31), (45, 33), (32, 32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data dir, log dir) of a short VGG11-BN run from scratch on 60 PNGs of four sizes."""
    root = tmp_path_factory.mktemp("predict")
    helpers.write_folder(root / "images", CLASSES, per_class=20, sizes=SIZES)
    result = call("train_and_val.py", "--dataset", "folder", "--data-dir", root / "images",
                 "--arch", "vgg11", "--pretrained", "none", "--batch-norm", "--max-steps", 6,
                 "--batch-size", 8, "--val-size", 4, "--learning-rate", "0.05",
                 "--log-dir", root / "logs",
                 cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "images", root / "logs"


def predict_json(*args, cwd):
    result = call("predict.py", "--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_predict_agrees_with_evaluate_and_an_image_alone_with_a_batch(trained, tmp_path):
    images, logs = trained
    evaluated = call("evaluate.py", "--data-dir", images, "--log-dir", logs, "--split", "train",
                    cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((logs / "eval" / "train-model.ckpt-6.json").read_text())
    files = [str(images / f) for f in report["images_evaluated"]["files"]]
    assert len(files) > 40

    predicted = predict_json("--log-dir", logs, "--batch-size", 7, "--top", 3, *files,
                             cwd=tmp_path)
    assert [p["file"] for p in predicted] == files
    top1 = [p["top"][0]["index"] for p in predicted]
    assert top1 == report["images_evaluated"]["predictions"]
    assert len(set(top1)) > 1  # (a network that answers one class for all shows nothing)
    for p in predicted:
        assert [t["class"] for t in p["top"]] == [CLASSES[t["index"]] for t in p["top"]]
        probabilities = [t["probability"] for t in p["top"]]
        assert probabilities == sorted(probabilities, reverse=True)

    # nine images each alone (batches of one, batch norm from its moving statistics) and in
    # batches of four (the last one partial)
    alone = helpers.python_json(
        "import json, predict; from inference import serving\n"
        f"c = serving.from_run({str(logs)!r})\n"
        f"files = {files[::5][:9]!r}\n"
        "one = predict.predict(c.config, files, c.load, 1)[0].tolist()\n"
        "batch = predict.predict(c.config, files, c.load, 4)[0].tolist()\n"
        "print(json.dumps([one, batch]))")
    assert len(alone[0]) == 9
    np.testing.assert_allclose(alone[0], alone[1], rtol=1e-5, atol=1e-7)
    assert np.std(alone[1], axis=0).max() > 1e-3  # the images get different answers


def test_predict_resizes_as_the_run_did_unless_told(trained, tmp_path):
    images, trained_logs = trained
    config = json.loads((trained_logs / "train" / "config.json").read_text())
    assert config["runs"][-1]["resize"] == "squash"  # (the default, recorded)
    logs = tmp_path / "logs"  # the same run, as if trained with --resize crop
    shutil.copytree(trained_logs, logs)
    config["runs"][-1]["resize"] = "crop"
    (logs / "train" / "config.json").write_text(json.dumps(config))
    files = [str(images / "cat" / f"{n}.png") for n in range(4)]  # 8x8, 20x31, 45x33, 32x32

    def probabilities(*flags):
        found = predict_json("--log-dir", logs, "--top", 3, *flags, *files, cwd=tmp_path)
        return np.array([[t["probability"] for t in p["top"]] for p in found])

    own, crop, squash = probabilities(), probabilities("--resize", "crop"), \
        probabilities("--resize", "squash")
    np.testing.assert_array_equal(own, crop)
    # (log probabilities: the logits less one number; the top probability is near 1)
    change = np.abs(np.log(squash) - np.log(own))
    assert change[[0, 3]].max() < 1e-4  # square images: the same picture
    assert change[[1, 2]].max(axis=1).min() > 1e-3  # the others: another


def test_predict_takes_folders_in_sorted_order_and_names_a_bad_file(trained, tmp_path):
    images, logs = trained
    predicted = predict_json("--log-dir", logs, "--top", 1, images / "emu", cwd=tmp_path)
    assert [p["file"] for p in predicted] == [
        str(images / "emu" / name) for name in sorted(os.listdir(images / "emu"))]
    text = call("predict.py", "--log-dir", logs, "--top", 2, images / "cat" / "0.png",
               cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.splitlines()[0].endswith("0.png")
    assert len(text.stdout.splitlines()) == 3

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in (logs / "train").iterdir())
    for args, words in (([images / "cat" / "1.png", bad], f"{bad} (not an image"),
                        ([tmp_path / "missing.png"], "missing.png: no such file or folder"),
                        ([tmp_path / "empty"], "a folder without images")):
        result = call("predict.py", "--log-dir", logs, *args, cwd=tmp_path)
        line = own_lines(result, "predict.py")
        assert result.returncode == 2 and len(line) == 1 and words in line[0], result.stderr
    assert sorted(p.name for p in (logs / "train").iterdir()) == before


def test_the_saved_model_serves_any_size_like_the_project_graph(trained, tmp_path):
    images, logs = trained
    out = tmp_path / "exported" / "folder"
    first = call("export.py", "--log-dir", logs, "--out", out, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (out / "1" / "saved_model.pb").exists()
    assert (out / "1" / "assets" / "class_names.txt").read_text().split() == CLASSES
    stamp = (out / "1" / "saved_model.pb").stat().st_mtime_ns
    second = call("export.py", "--log-dir", logs, "--out", out, cwd=tmp_path)
    assert second.returncode == 0 and (out / "2" / "saved_model.pb").exists()
    assert (out / "1" / "saved_model.pb").stat().st_mtime_ns == stamp  # never overwritten
    assert sorted(os.listdir(out)) == ["1", "2"]  # and no temporary folder left

    files = [str(images / "cat" / f"{n}.png") for n in range(4)] + [
        str(images / "dog" / f"{n}.png") for n in range(4)]  # the four sizes, two classes
    ours = helpers.python_json(
        "import json, predict; from inference import serving\n"
        f"c = serving.from_run({str(logs)!r})\n"
        f"print(json.dumps(predict.predict(c.config, {files!r}, c.load, 4)[0].tolist()))")
    # A Python that knows nothing of the project: TensorFlow, Pillow, NumPy.
    code = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        "from PIL import Image\n"
        "from tensorflow.core.protobuf import saved_model_pb2\n"
        f"model = tf.saved_model.load({str(out / '1')!r})\n"
        "serve = model.signatures['serving_default']\n"
        "results = []\n"
        f"for path in {files!r}:\n"
        "    pixels = np.asarray(Image.open(path).convert('RGB'))[None]\n"
        "    out = serve(images=tf.constant(pixels))\n"
        "    results.append([out['probabilities'].numpy()[0].tolist(),\n"
        "                    int(out['classes'].numpy()[0]),\n"
        "                    out['class_names'].numpy()[0].decode(), list(pixels.shape)])\n"
        "saved = saved_model_pb2.SavedModel()\n"
        f"saved.ParseFromString(open({str(out / '1' / 'saved_model.pb')!r}, 'rb').read())\n"
        "ops = sorted({node.op for node in saved.meta_graphs[0].graph_def.node})\n"
        "signature = saved.meta_graphs[0].signature_def['serving_default']\n"
        "inputs = {k: v.dtype for k, v in signature.inputs.items()}\n"
        "outputs = {k: v.dtype for k, v in signature.outputs.items()}\n"
        "print(json.dumps([results, ops, inputs, outputs]))")
    served = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, env={**os.environ, **helpers.ENV,
                                                            "PYTHONPATH": ""})
    assert served.returncode == 0, served.stderr[-2000:]
    results, ops, inputs, outputs = json.loads(served.stdout.strip().splitlines()[-1])
    assert {tuple(r[3][1:3]) for r in results} == set(SIZES)
    got = np.array([r[0] for r in results])
    expected = np.array(ours)
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-5
    assert [r[1] for r in results] == list(expected.argmax(axis=1))
    assert [r[2] for r in results] == [CLASSES[r[1]] for r in results]
    assert inputs == {"images": 4}  # DT_UINT8
    assert outputs == {"probabilities": 1, "classes": 9, "class_names": 7}  # float, int64, str
    # inference only: no optimizer, no input pipeline, no dropout's random numbers
    assert not [op for op in ops if "Apply" in op or "Iterator" in op or "Dataset" in op
                or op in ("RandomUniform", "RandomStandardNormal")]
    assert "FusedBatchNormV3" in ops or "FusedBatchNorm" in ops or "Rsqrt" in ops


def test_explain_on_the_run_has_each_images_size_and_predicts_as_predict(trained, tmp_path):
    images, logs = trained
    files = sorted(str(p) for p in (images / "emu").iterdir())[:4]  # (8, 8) (20, 31) (45, 33)
    result = call("explain.py", *files, "--log-dir", logs, "--out", tmp_path / "cams",
                  "--save-maps", "--resize", "crop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(Grad-CAM at conv2_1)" in result.stdout  # VGG11 at 32x32: block 2, 16x16
    predicted = predict_json("--log-dir", logs, "--top", 1, "--resize", "crop", *files,
                             cwd=tmp_path)
    assert len(files) == 4 and [p["file"] for p in predicted] == files
    for path, p in zip(files, predicted):
        heat = np.load(tmp_path / "cams" / (os.path.splitext(os.path.basename(path))[0] + ".npy"))
        width, height = Image.open(path).size
        assert heat.shape == (height, width) and heat.dtype == np.float32
        assert 0 <= heat.min() and heat.max() <= 1
        side = min(height, width)  # --resize crop: the network saw the central square alone
        top, left = (height - side) // 2, (width - side) // 2
        outside = np.ones_like(heat, bool)
        outside[top:top + side, left:left + side] = False
        assert not heat[outside].any()
        top = p["top"][0]
        assert f"{path}: {top['class']} {top['probability']:.4f}" in result.stdout

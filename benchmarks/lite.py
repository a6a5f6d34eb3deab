"""benchmark.py --tflite: the TFLite float32 and int8 models against the SavedModel, images/s
and bytes on disk."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from benchmarks import measure
from benchmarks.measure import ROOT
from common import cli
from inference import tflite

tf1 = tf.compat.v1


def export_one_step(cfg, tmp):
    """An export.py --out folder in ``tmp`` with the three kinds, of the --arch network trained
    one step from scratch on random CIFAR-format files."""
    data_dir, log_dir, out = (os.path.join(tmp, name) for name in ("data", "logs", "exported"))
    measure.write_cifar_files(data_dir, train_records=500, test_records=10)
    export = ["export.py", "--log-dir", log_dir, "--out", out]
    for command in (["train_and_val.py", "--data-dir", data_dir, "--arch", cfg.arch,
                     "--pretrained", "none", "--image-size", cfg.image_size, "--val-size", 0,
                     "--batch-size", 8, "--fc-size", cli.default("fc-size"), "--max-steps", 1,
                     "--log-dir", log_dir], export, export + ["--format", "tflite"],
                    export + ["--format", "tflite-int8", "--calibration-images", 100]):
        done = subprocess.run([sys.executable, os.path.join(ROOT, command[0]),
                               *map(str, command[1:])], capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    return out


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def lite_rates(folders, count, batch_size, repeats, threads, seed=0):
    """{kind_img_s, kind_bytes}: images/s of the SavedModel at ``batch_size`` and at 1
    ("savedmodel_b1"), and of the TFLite models (one image a call, as they take them), all on
    the same ``count`` random uint8 images at the network's side; the bytes of each on disk."""
    lites = {kind: tflite.load(folders[kind], "--export-dir", threads) for kind in tflite.FORMATS}
    side = lites["tflite"].image_size
    images = np.random.default_rng(seed).integers(0, 256, (count, side, side, 3), np.uint8)
    results = {}
    with tf.Graph().as_default(), tf1.Session() as session:
        meta = tf1.saved_model.loader.load(session, ["serve"], folders["savedmodel"])
        signature = meta.signature_def["serving_default"]
        given, wanted = signature.inputs["images"].name, signature.outputs["probabilities"].name
        for name, batch in (("savedmodel", batch_size), ("savedmodel_b1", 1)):
            def run(batch=batch):
                for start in range(0, count, batch):
                    session.run(wanted, {given: images[start:start + batch]})
            results[f"{name}_img_s"] = measure.median_rate(run, count, repeats)
    results["savedmodel_bytes"] = folder_bytes(folders["savedmodel"])
    for kind, lite in lites.items():
        name = kind.replace("-", "_")
        results[f"{name}_img_s"] = measure.median_rate(lambda: lite.run(images), count, repeats)
        results[f"{name}_bytes"] = os.path.getsize(lite.path)
    return results


def lite_speeds(cfg):
    """--tflite: the table (see the docstring), then one JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        folders = tflite.newest_exports(cfg.export_dir or export_one_step(cfg, tmp))
        where = {"savedmodel": folders["savedmodel"], "tflite": folders["tflite"],
                 "tflite_int8": folders["tflite-int8"]} if cfg.export_dir else {}
        results = {**where, "images": cfg.tflite_images,
                   "batch_size": cfg.batch_size, "tflite_threads": cfg.tflite_threads,
                   "interpreter": tflite.INTERPRETER, **lite_rates(
                       folders, cfg.tflite_images, cfg.batch_size, cfg.repeats,
                       cfg.tflite_threads)}
    if not cfg.export_dir:
        results["arch"], results["image_size"] = cfg.arch, cfg.image_size
    print(f"TFLite against the SavedModel: {cfg.tflite_images} images, medians of "
          f"{cfg.repeats} runs after warm-up; {tflite.INTERPRETER} with {cfg.tflite_threads} "
          "threads")
    for name, what in (("savedmodel", f"SavedModel, batch {cfg.batch_size}"),
                       ("savedmodel_b1", "SavedModel, batch 1"), ("tflite", "TFLite float32"),
                       ("tflite_int8", "TFLite int8")):
        size = results.get(f"{name}_bytes")
        ratio = results[f"{name}_img_s"] / results["savedmodel_img_s"]
        print(f"  {what:24s} {results[f'{name}_img_s']:10.1f} images/s {ratio:6.2f}x"
              + (f"  {size:>13,} bytes" if size else ""))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0

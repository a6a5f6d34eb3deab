"""benchmark.py --transfer: extract_codes.py's images/s, and an epoch of a head on cached codes
against an epoch of --trainable fc on the images."""

import json
import os
import statistics
import subprocess
import sys
import tempfile

import tensorflow as tf

from benchmarks import measure
from benchmarks.measure import ROOT
from benchmarks.step import model_config
from common import cli
import model
import weights

tf1 = tf.compat.v1


def write_initial_weights(arch, image_size, path):
    """A weights file in the public layout holding the network's initial values (fc6 sized
    for ``image_size``): speed does not depend on the values."""
    with tf.Graph().as_default():
        model.inference(model_config(arch, image_size, 1000),
                        tf1.placeholder(tf.float32, [None, image_size, image_size, 3]))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            layers = {name: [session.run(w), session.run(b)]
                      for name, (w, b) in weights.graph_layers().items()}
    weights.write_weights(path, layers)


def extraction_rate(cfg, data_dir, weights_file, out, val_size):
    """extract_codes.py's images/s over the training split, as its progress lines report it."""
    command = [sys.executable, os.path.join(ROOT, "extract_codes.py"), "--arch", cfg.arch,
               "--weights", weights_file, "--layer", "fc6", "--data-dir", data_dir,
               "--image-size", str(cfg.image_size), "--val-size", str(val_size),
               "--batch-size", str(cfg.batch_size), "--precision", cfg.precision,
               "--out", out]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"extract_codes.py failed: {result.stderr[-2000:]}")
    last = [line for line in result.stdout.splitlines()
            if line.startswith("train: ") and "images/s" in line][-1]
    return float(last.split("images  ")[1].split()[0])


def transfer(cfg):
    """Extraction images/s; one epoch of a linear head on fc6 codes against one epoch of
    --trainable fc on the images, both as train_and_val.py reports its speed."""
    val_size = cfg.transfer_images // 10
    train_images = cfg.transfer_images - val_size
    epoch_steps = max(1, train_images // cfg.batch_size)
    results = {"arch": cfg.arch, "image_size": cfg.image_size, "batch_size": cfg.batch_size,
               "precision": cfg.precision, "layer": "fc6", "train_images": train_images}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, npy = os.path.join(tmp, "data"), os.path.join(tmp, f"{cfg.arch}.npy")
        measure.write_cifar_files(data_dir, train_records=cfg.transfer_images, test_records=100)
        write_initial_weights(cfg.arch, cfg.image_size, npy)
        out = os.path.join(tmp, "codes")
        results["extract_img_s"] = extraction_rate(cfg, data_dir, npy, out, val_size)
        quiet = ["--batch-size", cfg.batch_size, "--val-every", 10 ** 9, "--save-every",
                 10 ** 9, "--precision", cfg.precision]
        for name, flags in (("codes", ["--codes", out, "--head", "linear"]),
                            ("images", ["--data-dir", data_dir, "--arch", cfg.arch,
                                        "--pretrained", npy, "--trainable", "fc",
                                        "--image-size", cfg.image_size, "--val-size",
                                        val_size, "--fc-size", cli.default("fc-size")])):
            rates = measure.program_rates(os.path.join(tmp, f"logs-{name}"), flags + quiet,
                                          epoch_steps * (cfg.repeats + 1), epoch_steps)
            results[f"{name}_img_s"] = statistics.median(rates)
            results[f"{name}_epoch_s"] = train_images / results[f"{name}_img_s"]
    results["codes_vs_images"] = results["codes_img_s"] / results["images_img_s"]
    print(f"transfer learning: {cfg.arch} {cfg.image_size}x{cfg.image_size}, fc6 codes, "
          f"batch {cfg.batch_size}, {cfg.precision}, {train_images} training images; "
          "medians of epochs after the first")
    print(f"  extraction (extract_codes.py)          {results['extract_img_s']:10.1f} images/s")
    for name, what in (("codes", "a linear head on the codes (--codes)"),
                       ("images", "--trainable fc on the images")):
        print(f"  one epoch, {what:38s} {results[f'{name}_epoch_s']:8.3f} s "
              f"({results[f'{name}_img_s']:.0f} images/s)")
    print(f"  an epoch on codes is {results['codes_vs_images']:.0f} times faster")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0

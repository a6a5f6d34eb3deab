"""benchmark.py --scale: train_and_val.py with 1, 2 and 4 towers on CPU devices and as a
localhost cluster, against one tower, at the same global batch."""

import json
import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from benchmarks import measure
from benchmarks.measure import ROOT

tf1 = tf.compat.v1


def scale(cfg):
    """Towers on CPU devices and a localhost cluster against one tower, same global batch."""
    steps = cfg.steps * (cfg.repeats + 2)
    results = {"arch": cfg.arch, "image_size": cfg.image_size, "batch_size": cfg.batch_size,
               "precision": cfg.precision}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        measure.write_cifar_files(data_dir, train_records=2000, test_records=100)
        common = ["--data-dir", data_dir, "--arch", cfg.arch, "--pretrained", "none",
                  "--image-size", cfg.image_size, "--val-size", 0, "--precision",
                  cfg.precision, "--save-every", 10 ** 9]
        for towers in (1, 2, 4):
            log_dir = os.path.join(tmp, f"towers{towers}")
            measure.program_rates(log_dir, common + ["--batch-size", cfg.batch_size,
                                                     "--num-gpus", towers, "--tower-device",
                                                     "cpu"], steps, cfg.steps)
            results[f"towers{towers}_img_s"] = measure.global_rate(log_dir, cfg.batch_size)
        log_dir = os.path.join(tmp, "cluster")
        command = [sys.executable, os.path.join(ROOT, "cluster.py"), "--ps", "1", "--workers",
                   "2", "--", *map(str, common), "--batch-size", str(cfg.batch_size // 2),
                   "--max-steps", str(steps), "--log-every", str(cfg.steps), "--log-dir",
                   log_dir]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise RuntimeError(f"cluster.py failed: {done.stdout[-2000:]}")
        results["cluster_img_s"] = measure.global_rate(log_dir, cfg.batch_size)
    for name in ("towers2", "towers4", "cluster"):
        results[f"{name}_vs_one"] = results[f"{name}_img_s"] / results["towers1_img_s"]
    print(f"scale-out overhead: {cfg.arch} {cfg.image_size}x{cfg.image_size}, global batch "
          f"{cfg.batch_size}, {cfg.precision}, one machine; medians of intervals of "
          f"{cfg.steps} steps after the first")
    for name, what in (("towers1", "1 tower"), ("towers2", "2 towers on CPU devices"),
                       ("towers4", "4 towers on CPU devices"),
                       ("cluster", "cluster: 1 ps + 2 synchronous workers")):
        ratio = f"  {results[name + '_vs_one']:.3f}x one tower" if name != "towers1" else ""
        print(f"  {what:40s} {results[name + '_img_s']:8.1f} images/s{ratio}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in results.items()}))
    return 0

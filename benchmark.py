"""Speed of the training program, side by side with Keras and the machine's matrix-multiply rate.

    python benchmark.py                          # VGG16, 32x32, batch 128, fp32
    python benchmark.py --precision bf16         # oneDNN bfloat16 on CPUs that have it
    python benchmark.py --transfer               # codes: extraction, an epoch on codes vs images
    python benchmark.py --scale                  # 1, 2, 4 towers and a localhost cluster
    python benchmark.py --bandwidth              # bytes a cluster step moves, per network
    python benchmark.py --summaries              # what filters, histograms, activations cost
    python benchmark.py --tflite                 # TFLite float32 and int8 against the SavedModel
    python benchmark.py --tflite --export-dir exported/cifar10   # the newest exports there

In one run, after warm-up, each figure a median over --repeats measurements:
  train      the real train_and_val.py (its input pipeline from CIFAR-format files written to a
             temporary folder, its hooks, summaries and checkpoints; no validation), images/s
             as the program itself reports them to TensorBoard
  bare       the same training step fed from a variable: no pipeline, no hooks
  keras      the same network, optimizer, batch size and data in Keras model.fit
  eval       the forward pass of the evaluation graph on the test pipeline
  pipeline   the training input pipeline alone (shuffle, augment, preprocess)
  matmul     a large matrix product in float32 and bfloat16, GFLOP/s
With --scale, instead: train_and_val.py's images/s with 1, 2 and 4 towers on logical CPU
devices (--num-gpus N --tower-device cpu) and as a localhost cluster of 1 parameter server and 2
synchronous workers (cluster.py, half the batch each), all with the same global batch, as
ratios to the one-tower run: on one machine this is the overhead each adds.
With --summaries, instead: a training step with batch norm alone and with the first
convolution's filters, with the weight and gradient histograms, and the activation images of a
validation, side by side in turns (what TensorBoard's pictures of the network cost).
With --tflite, instead: the SavedModel (at --batch-size and one image a call) and the TFLite
float32 and int8 models of one network, each as export.py writes it, on the same --tflite-images
random uint8 images at the network's side, images/s and bytes on disk: the newest version of
each kind in --export-dir, or without it the --arch network trained one step on random
CIFAR-format files and exported three times in a temporary folder.
With --bandwidth, instead: for each network and head, the bytes one worker moves through the
parameter servers in a step (it reads every variable and sends the gradient of every trained
one: 4 bytes a value, counted on the graph), and the floor that puts on a synchronous step of 2
and 8 workers through one parameter server's link at 1, 10 and 100 Gb/s (nothing is timed).
With --transfer, instead: extract_codes.py's images/s (fc6 codes from a weights file of the
network's own initial values), and one epoch of train_and_val.py on those codes (--codes, a
linear head) against one epoch of --trainable fc on the images they came from.
The model's FLOPs per training image (counted on its graph: every convolution and matrix
product forward, plus the two backward products of each, less the input gradient of the layer
that reads the images) times the training rate gives the achieved GFLOP/s. Prints a table,
then one JSON line.
"""

import os
import sys

import tensorflow as tf

from benchmarks import bandwidth
from benchmarks import lite
from benchmarks import scaling
from benchmarks import step
from benchmarks import summary_cost
from benchmarks import transfer
from common import cli
from common import devices
import nets

tf1 = tf.compat.v1
ROOT = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "arch", "batch-size", "image-size", "precision", "xla",
                  choices={"arch": nets.NAMES})
    p.add_argument("--repeats", type=cli.at_least(1), default=5, help="measurements per figure")
    p.add_argument("--steps", type=cli.at_least(1), default=20,
                   help="training steps per measurement")
    p.add_argument("--skip-keras", action="store_true", help="leave out the Keras run")
    p.add_argument("--transfer", action="store_true",
                   help="measure transfer learning instead: extraction of codes, and an epoch "
                        "on codes against an epoch of --trainable fc on images")
    p.add_argument("--scale", action="store_true",
                   help="measure towers and a localhost cluster against one process instead")
    p.add_argument("--bandwidth", action="store_true",
                   help="count the bytes a cluster step moves through the parameter servers "
                        "for each network and head instead")
    p.add_argument("--summaries", action="store_true",
                   help="measure what TensorBoard's filters, histograms and activation images "
                        "add to a training step instead")
    p.add_argument("--tflite", action="store_true",
                   help="measure the TFLite float32 and int8 models against the SavedModel")
    p.add_argument("--export-dir", type=cli.path,
                   help="--tflite: the newest SavedModel, tflite and tflite-int8 versions in "
                        "this export.py --out folder (default: export a one-step run here)")
    p.add_argument("--tflite-images", type=cli.at_least(1),
                   help="--tflite: images per measurement (default 200)")
    p.add_argument("--tflite-threads", type=cli.at_least(1),
                   help="--tflite: the interpreter's threads (default: one a core)")
    p.add_argument("--transfer-images", type=cli.at_least(100), default=5000,
                   help="training images (a tenth held out) for --transfer")
    args = p.parse_args(argv)
    given = [flag for flag in ("export_dir", "tflite_images", "tflite_threads")
             if getattr(args, flag) is not None]
    if given and not args.tflite:
        p.error(f"--{given[0].replace('_', '-')} goes with --tflite")
    _, image_size = nets.check_image_size(p, args.arch, args.image_size)
    try:
        devices.session_config(args.precision, args.xla)
    except cli.UsageError as e:
        p.error(str(e))
    return cli.freeze(args, image_size=image_size, tflite_images=args.tflite_images or 200,
                      tflite_threads=args.tflite_threads or os.cpu_count())


def main(argv=None):
    cfg = parse_args(argv)
    if cfg.bandwidth:
        return bandwidth.bandwidth()
    if cfg.transfer:
        return transfer.transfer(cfg)
    if cfg.scale:
        return scaling.scale(cfg)
    if cfg.summaries:
        return summary_cost.summary_costs(cfg)
    if cfg.tflite:
        return cli.run_main("benchmark.py", lite.lite_speeds, cfg)
    return step.step_speeds(cfg)


if __name__ == "__main__":
    sys.exit(main())

"""Show where a trained network looks: Grad-CAM heatmaps over image files.

    python explain.py photos/ --out cams             # the latest checkpoint of logs/train
    python explain.py sign.png --best --top 3 --out cams --save-maps
    python explain.py cat.jpg --class "stop" --layer conv3_3 --out cams
    python explain.py --weights pretrained/vgg16.npy --arch vgg16 cat.jpg --out cams  # ImageNet

Grad-CAM (Selvaraju et al., 2017): the gradients of a class's score (its logit) at a
convolutional layer, averaged over each channel's map, weight that layer's maps; their sum,
through a ReLU and divided by its maximum, is a map in [0, 1] of where the evidence for the class
lies, stretched to the image's own size. Images are read, resized and preprocessed as predict.py
does, and the network runs as it does there (no dropout, batch norm's moving statistics, the
moving averages of a run's weights when its checkpoint has them). For each image it writes
OUT/<name>.png: the image with the heatmap over it, titled with the class and its probability
(one panel per class with --top K); with --save-maps also OUT/<name>.npy, float32 [H, W] in
[0, 1] at the image's own height and width ([K, H, W] with --top K). <name> is the file's name
without its extension (its path inside a folder given, '/' as '_'). Nothing is overwritten, and
the files are put in place together once all are written: a run that fails (a full disk) leaves
none of them.

The default layer is the deepest convolutional layer whose maps are at least 13x13 (the first
one when none is): VGG16 at 224x224 gets conv5_3 (14x14, the layer of Grad-CAM's paper),
AlexNet at 227x227 conv5 (13x13), VGG at 32x32 the last of block 2 (16x16). Deeper layers hold
the class better but their maps are coarser: at 32x32 VGG's conv5 maps are 2x2, each position
seeing the whole image, and the heat no longer says where.
"""

import contextlib
import os
import sys

from common import cli
from common import files as written
from common.progress import Progress

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("explain.py")

# (the heavy imports come after that)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import devices  # noqa: E402
from datasets import base
from datasets import image_files
from inference import serving  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402

tf1 = tf.compat.v1

MIN_MAP_SIDE = 13  # the default layer's maps are at least this many positions on a side


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                           epilog="The default --layer: " + __doc__.split("\n\n")[3])
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files, and folders of them (every image under them)")
    cli.add_flags(p, "log-dir")
    which = p.add_mutually_exclusive_group()
    cli.add_flags(which, "checkpoint", "best")
    which.add_argument("--weights", help="a weights file with fc6-fc8 (e.g. the public "
                                         "vgg16.npy): ImageNet's 1000 classes")
    cli.add_flags(p, "arch", "resize", "batch-size", "verbose", batch_size=16,
                  choices={"arch": nets.NAMES})
    whose = p.add_mutually_exclusive_group()
    whose.add_argument("--class", dest="class_name", metavar="NAME",
                       help="explain this class (a class name of the run) instead of the top one")
    whose.add_argument("--top", type=cli.at_least(1), default=1,
                       help="explain each of the K classes with the highest scores (default 1)")
    p.add_argument("--layer", help="the convolutional layer whose maps are weighted (default: "
                                   "by the image size, see below)")
    p.add_argument("--out", type=cli.path, required=True, help="folder for the pictures")
    p.add_argument("--save-maps", action="store_true",
                   help="also write each heatmap as OUT/<name>.npy (float32, in [0, 1])")
    p.add_argument("--no-ema", action="store_true",
                   help="use a run's trained weights even when its checkpoint holds their "
                        "moving averages")
    return cli.freeze(p.parse_args(argv))


def map_sides(network, end_points):
    """{convolutional layer: the smaller side of its maps}, in graph order, of a network built
    (``end_points``: what its ``build`` returned)."""
    return {layer: min(end_points[layer].shape[1:3].as_list())
            for layer in network.conv_layers if layer in end_points}


def default_layer(map_sides):
    """The default layer of ``map_sides`` ({conv layer: the smaller side of its maps}, in graph
    order): the deepest whose maps are at least MIN_MAP_SIDE on a side, else the first."""
    fitting = [layer for layer, side in map_sides.items() if side >= MIN_MAP_SIDE]
    return fitting[-1] if fitting else next(iter(map_sides))


def output_names(paths, files):
    """A name for each file (see the module's doc), unique: the folder given, or the file's
    own name; ``-2``, ``-3`` ... where two would still be the same."""
    names = []
    for path in files:
        name = os.path.basename(path)
        for given in paths:
            if os.path.isdir(given) and os.path.abspath(path).startswith(
                    os.path.join(os.path.abspath(given), "")):
                name = os.path.relpath(path, given).replace(os.sep, "_")
                break
        names.append(os.path.splitext(name)[0])
    seen, unique = {}, []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def grad_cam(logits, maps, classes):
    """Grad-CAM maps [B, h, w] in [0, 1] of ``classes`` (int32 [B]) at ``maps`` [B, h, w, C]:
    the class score's gradients, averaged per channel, weight the channels; ReLU; each map
    divided by its maximum (a map without positive evidence stays 0). Images of a batch do not
    mix (no batch statistics at inference), so one gradient serves the whole batch."""
    score = tf.reduce_sum(tf.cast(logits, tf.float32) * tf.one_hot(classes, logits.shape[-1]))
    grads = tf.gradients(score, maps)[0]
    maps, grads = tf.cast(maps, tf.float32), tf.cast(grads, tf.float32)
    channel_weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * maps, axis=-1))
    peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
    return tf.math.divide_no_nan(cam, peak)


def explain(classifier, files, cfg):
    """``(layer, [(probabilities [classes], [(class index, map [h, w])])])`` for each file:
    the classes to explain and their maps at the network's resolution."""
    config = classifier.config
    network = nets.get(config["arch"])
    with tf.Graph().as_default():
        images, _, iterator = model.inputs(lambda: input_data.read_files(
            files, cfg.batch_size, config["image_size"], network.preprocess,
            config["resize"]).map(
                lambda batch: (batch, tf.zeros([tf.shape(batch)[0]], tf.int32))),
            initializable=True)
        logits, end_points = model.inference(config, images)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        sides = map_sides(network, end_points)
        if cfg.layer is not None and cfg.layer not in sides:
            raise cli.UsageError(f"--layer {cfg.layer or repr(cfg.layer)}: choose a "
                                 f"convolutional layer of {config['arch']}: "
                                 f"{', '.join(sides)}")
        layer = default_layer(sides) if cfg.layer is None else cfg.layer
        classes = tf1.placeholder(tf.int32, [None])
        cam = grad_cam(logits, end_points[layer], classes)
        results = []
        with tf1.Session(config=devices.session_config()) as session:
            classifier.load(session)
            session.run(iterator.initializer)
            with Progress("explain", len(files), sys.stderr) as progress:
                for batch, batch_probabilities, batch_logits in model.each_batch(
                        session, [images, probabilities, logits]):
                    if cfg.class_name is not None:
                        chosen = np.full([len(batch), 1],
                                         classifier.class_names.index(cfg.class_name))
                    else:
                        chosen = np.argsort(-batch_logits, axis=1, kind="stable")[:, :cfg.top]
                    maps = [session.run(cam, {images: batch, classes: chosen[:, k]})
                            for k in range(chosen.shape[1])]
                    for i, image_probabilities in enumerate(batch_probabilities):
                        results.append((image_probabilities,
                                        [(int(chosen[i, k]), maps[k][i])
                                         for k in range(chosen.shape[1])]))
                    progress.update(len(results))
    return layer, results


def full_size(cam, height, width, resize="squash"):
    """A map stretched to ``height`` x ``width`` (bilinear, as the image was resized to the
    network's side), float32 in [0, 1]; with ``resize`` crop, over the central square the
    network saw, 0 around it."""
    from PIL import Image

    side = min(height, width) if resize == "crop" else None
    stretched = Image.fromarray(cam.astype(np.float32), mode="F").resize(
        (side or width, side or height), Image.BILINEAR)
    stretched = np.clip(np.asarray(stretched, np.float32), 0.0, 1.0)
    if side is None:
        return stretched
    full = np.zeros([height, width], np.float32)
    top, left = (height - side) // 2, (width - side) // 2
    full[top:top + side, left:left + side] = stretched
    return full


def picture(image, panels, f):
    """``image`` uint8 [H, W, 3] with each of ``panels`` ([(title, map [H, W])]) over it, side
    by side, as a PNG written to the file ``f`` (open for writing bytes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = image.shape[:2]
    panel = 4.0 * min(1.0, width / height), 4.0 * min(1.0, height / width) + 0.4
    fig, axes = plt.subplots(1, len(panels), figsize=(panel[0] * len(panels), panel[1]),
                             squeeze=False)
    for ax, (title, heat) in zip(axes[0], panels):
        ax.imshow(image, interpolation="nearest")
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0, interpolation="bilinear")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / panel[1],
                        wspace=0.03)
    fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def check_out(out, names, save_maps):
    """The files this run writes; UsageError when one is there already (nothing is
    overwritten) or OUT is not a folder."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise cli.UsageError(f"--out {out}: not a folder")
    targets = [os.path.join(out, name + ext) for name in names
               for ext in ((".png", ".npy") if save_maps else (".png",))]
    there = [path for path in targets if os.path.exists(path)]
    if there:
        raise cli.UsageError(f"--out {out} already holds {base.few(there)}; give "
                             "another --out or move them away")
    return targets


def run(cfg):
    files = image_files.image_files(cfg.images)
    names = output_names(cfg.images, files)
    check_out(cfg.out, names, cfg.save_maps)
    classifier = serving.from_weights(cfg.weights, cfg.arch) if cfg.weights else \
        serving.from_run(cfg.log_dir, cfg.checkpoint, cfg.best, not cfg.no_ema)
    if cfg.resize:
        classifier.config["resize"] = cfg.resize
    class_names = classifier.class_names
    if cfg.class_name is not None and cfg.class_name not in class_names:
        raise cli.UsageError(f"--class {cfg.class_name}: not a class of {classifier.source} "
                             f"({base.few(class_names)})")
    if cfg.top > len(class_names):
        raise cli.UsageError(f"--top {cfg.top}: {classifier.source} has "
                             f"{len(class_names)} classes")
    layer, results = explain(classifier, files, cfg)
    made = not os.path.isdir(cfg.out)
    os.makedirs(cfg.out, exist_ok=True)
    try:  # every file under a temporary name, put in place once all are written
        with written.NewFiles(cfg.out) as new:
            for path, name, (probabilities, explained) in zip(files, names, results):
                image = image_files.image_rgb(path)
                maps = [full_size(cam, *image.shape[:2], classifier.config["resize"])
                        for _, cam in explained]
                with new.add(name + ".png") as f:
                    picture(image, [(f"{class_names[c]} {probabilities[c]:.3f}", heat)
                                    for (c, _), heat in zip(explained, maps)], f)
                if cfg.save_maps:
                    with new.add(name + ".npy") as f:
                        np.save(f, maps[0] if len(maps) == 1 else np.stack(maps))
                print(f"{path}: " + ", ".join(f"{class_names[c]} {probabilities[c]:.4f}"
                                              for c, _ in explained))
            new.commit()
    except BaseException:
        if made:  # (a folder of this run's own, left empty)
            with contextlib.suppress(OSError):
                os.rmdir(cfg.out)
        raise
    print(f"Wrote {len(files)} picture{'s' if len(files) != 1 else ''} to {cfg.out} "
          f"(Grad-CAM at {layer})")
    return 0


def main(argv=None):
    return cli.run_main("explain.py", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

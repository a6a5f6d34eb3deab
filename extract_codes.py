"""Run a network from its weights file over every image of a data set once and save one "code" per
image (the output of one layer), for a classifier trained on the codes instead of the images.

    python extract_codes.py --arch vgg16 --weights pretrained/vgg16.npy --layer fc6 \\
        --dataset folder --data-dir flower_photos --image-size 224 --out codes/flowers

Writes CODES_DIR/<split>.npz for each split the data set has (train, val, test) with ``codes``
(float32 [N, D], pool5 flattened), ``labels`` (int [N]) and ``files`` (str [N]: the path relative
to the data dir, or ``data_batch_1.bin:17`` for a CIFAR-10 record), then CODES_DIR/manifest.json:
network, layer, image size, preprocessing, SHA-256 of the weights file, class names and a
fingerprint of the images (paths, sizes, modification times). Run again with the same manifest,
it touches nothing; anything changed recomputes. Files are written through temporary names and the
manifest last, so a killed extraction never leaves codes that a later run would take as complete.

``--projector`` also writes what TensorBoard's embedding projector reads into CODES_DIR (see
inference/projector.py): the codes of one split (``--projector-split``; test, else val, else
train), at most ``--projector-max`` of them (a stable sample by a hash of the file names),
their files and class names and a sprite of their thumbnails, for ``tensorboard --logdir
CODES_DIR``. Codes that are up to date stay untouched; only a projector that is missing, or was
made of another split, count or codes, is written.
"""

import dataclasses
import os
import sys

from common import cli
from common import files as written
from common import json_files
from common.progress import Progress

if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line
    cli.quiet_interrupt("extract_codes.py")

# (the heavy imports come after that)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import devices  # noqa: E402
from inference import codes  # noqa: E402
from inference import projector  # noqa: E402
import input_data  # noqa: E402
import model  # noqa: E402
import nets  # noqa: E402
import weights  # noqa: E402

tf1 = tf.compat.v1


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_flags(p, "arch", choices={"arch": nets.NAMES})
    p.add_argument("--weights", required=True, help="the network's weights file (.npy)")
    p.add_argument("--layer", help="whose output is the code: one of the network's code layers "
                   "(VGG and AlexNet: pool5, fc6 and fc7 after their ReLU; default fc6)")
    cli.add_flags(p, "dataset", "data-dir", "skip-bad-images", "crop-roi", "val-size",
                  "image-size", "resize", "batch-size", "precision", "verbose", batch_size=100,
                  choices={"dataset": tuple(input_data.SOURCES)})
    p.add_argument("--out", type=cli.path, required=True,
                   help="folder for the codes and their manifest")
    p.add_argument("--projector", action="store_true",
                   help="also write TensorBoard's embedding projector of one split's codes into "
                   "--out (projector_config.pbtxt, a checkpoint of the codes, metadata.tsv, "
                   "sprite.png): tensorboard --logdir OUT")
    p.add_argument("--projector-split", choices=codes.SPLITS,
                   help="the split whose codes --projector shows (default: test when the data "
                   "set has one, else val, else train)")
    p.add_argument("--projector-max", type=cli.at_least(1),
                   help=f"at most this many images in the projector (default "
                   f"{projector.DEFAULT_MAX}); of a larger split, a sample chosen by a hash of "
                   "each file's name: the same images every run")
    args = p.parse_args(argv)
    if not args.projector and (args.projector_split or args.projector_max is not None):
        p.error("--projector-split and --projector-max go with --projector")
    projector_max = args.projector_max or projector.DEFAULT_MAX
    if projector_max > projector.MAX_POINTS:
        p.error(f"--projector-max {projector_max}: at most {projector.MAX_POINTS} (their "
                f"{projector.MIN_SIDE}x{projector.MIN_SIDE} thumbnails fill TensorBoard's "
                f"{projector.SPRITE_LIMIT}x{projector.SPRITE_LIMIT} sprite)")
    network, image_size = nets.check_image_size(p, args.arch, args.image_size)
    layer = args.layer or network.codes_default
    if layer not in network.code_layers:
        p.error(f"--layer {layer}: {args.arch} gives codes at "
                f"{', '.join(network.code_layers)}")
    try:
        input_data.data_options(args)
    except cli.UsageError as e:
        p.error(str(e))
    return cli.freeze(args, projector_max=projector_max, image_size=image_size,
                      resize=args.resize or "squash", layer=layer)


def resolve(flags, source):
    """The extraction's configuration, frozen: the checked ``flags`` (``parse_args``) with
    --val-size the data set's default when not given, once ``source`` has made the data
    available (CIFAR-10 downloads)."""
    source.prepare(flags.data_dir)
    if flags.val_size is not None:
        return flags
    return dataclasses.replace(flags, val_size=source.default_val_size(flags.data_dir))


def manifest_for(cfg, source):
    try:
        weights_sha = codes.sha256(cfg.weights)
    except OSError as e:
        raise cli.UsageError(f"--weights {cfg.weights}: cannot read it ({e.strerror})") from None
    return {"network": cfg.arch, "layer": cfg.layer, "image_size": cfg.image_size,
            "preprocessing": nets.get(cfg.arch).preprocess, "weights_sha256": weights_sha,
            "dataset": cfg.dataset, "val_size": cfg.val_size, "crop_roi": cfg.crop_roi,
            "resize": cfg.resize,
            "class_names": source.class_names(cfg.data_dir),
            "images": codes.fingerprint(cfg.data_dir, leave_out=[cfg.out]),
            "weights_file": os.path.abspath(cfg.weights),
            "data_dir": os.path.abspath(cfg.data_dir)}


def extract(cfg, source, splits, options):
    """``(split, codes, labels)`` of every image of each of ``splits`` in turn, in the order of
    ``source.image_names``: one network on the splits' one iterator, the weights read once."""
    network = nets.get(cfg.arch)
    with tf.Graph().as_default():
        images, labels, starts = model.split_inputs(
            {"arch": cfg.arch, "image_size": cfg.image_size}, source, cfg.data_dir, splits,
            cfg.batch_size, cfg.val_size, options, resize=cfg.resize)
        _, end_points = network.make(images, None, fc_size=cli.default("fc-size"),
                                     until=cfg.layer)
        values = tf.reshape(end_points[cfg.layer], [tf.shape(images)[0], -1])  # pool5: flat
        with tf1.Session(config=devices.session_config(cfg.precision)) as session:
            report = weights.load_pretrained(cfg.weights, session, skip=(), verbose=False)
            # the layers with variables up to the code's, in graph order (end_points' order)
            before = list(end_points)[:list(end_points).index(cfg.layer) + 1]
            needed = [layer for layer in before if layer in network.layers]
            missing = [f"{layer} ({status})" for layer, status, _ in report
                       if layer in needed and status != "loaded"]
            if missing:
                raise cli.UsageError(f"--weights {cfg.weights} does not give {cfg.layer} at "
                                     f"{cfg.image_size}x{cfg.image_size}: {', '.join(missing)}"
                                     + (f"; use --image-size {network.imagenet_image_size} "
                                        f"or --layer {network.code_layers[0]}"
                                        if network.imagenet_image_size else ""))
            for split in splits:
                session.run(starts[split])
                total = source.num_examples(cfg.data_dir, split, cfg.val_size, **options)
                out_codes, out_labels = [], []
                with Progress(split, total) as progress:
                    for batch_codes, batch_labels in model.each_batch(session, [values, labels]):
                        out_codes.append(batch_codes)
                        out_labels.append(batch_labels)
                        progress.update(sum(len(b) for b in out_labels))
                yield (split, np.concatenate(out_codes).astype(np.float32),
                       np.concatenate(out_labels))


def present_splits(cfg, source, options):
    splits = []
    for split in codes.SPLITS:
        if split == "val" and cfg.val_size == 0:
            continue
        try:
            source.validate(cfg.data_dir, split, **options)
        except input_data.DataError as e:
            if split == "train":
                raise
            print(f"{split}: none ({e})")
            continue
        splits.append(split)
    return splits


def write_projector(cfg, source, options, manifest, split):
    """The projector (``--projector``) of ``split`` of the codes ``manifest`` describes, unless
    it is there already."""
    record, written = projector.write(cfg.out, manifest, split, cfg.projector_max, source,
                                      cfg.data_dir, cfg.batch_size, cfg.val_size, options)
    what = f"{record['count']} of the {record['of']} {split} images"
    if written:
        print(f"Wrote the projector of {what} ({record['tensor_name']}, thumbnails "
              f"{record['side']}x{record['side']}): tensorboard --logdir {cfg.out}")
    else:
        print(f"The projector in {cfg.out} is up to date ({what}); nothing was written.")


def run(flags):
    source = input_data.SOURCES[flags.dataset]
    cfg = resolve(flags, source)
    options = input_data.data_options(cfg)
    manifest = manifest_for(cfg, source)
    path = os.path.join(cfg.out, codes.MANIFEST)
    old = codes.intact(cfg.out) if os.path.exists(path) else None
    if old and codes.same_codes(old, manifest):
        if cfg.projector:
            shown = projector.choose_split(old["splits"], cfg.projector_split)
        print(f"The codes in {cfg.out} are up to date ({', '.join(old['splits'])}); nothing "
              f"was written{' to them' if cfg.projector else ''}.")
        if projector.remove_stale(cfg.out, old):  # (a run killed as the codes gave way)
            print(f"Removed the projector of other codes from {cfg.out}")
        if cfg.projector:
            write_projector(cfg, source, options, old, shown)
        return 0
    splits = present_splits(cfg, source, options)
    if cfg.projector:  # (a split it cannot show stops the run before anything is written)
        shown = projector.choose_split(splits, cfg.projector_split)
    os.makedirs(cfg.out, exist_ok=True)
    counts, parts = {}, {}
    try:
        for split, values, labels in extract(cfg, source, splits, options):
            files = np.array(source.image_names(cfg.data_dir, split, cfg.val_size, **options))
            parts[split] = os.path.join(cfg.out, f".{split}.npz.part")
            with written.naming(os.path.join(cfg.out, f"{split}.npz"), parts[split]), \
                    open(parts[split], "wb") as f:
                np.savez(f, codes=values, labels=labels, files=files)
            counts[split] = len(labels)
            print(f"{split}: {len(labels)} codes of {values.shape[1]} values")
    except BaseException:
        for part in parts.values():  # (what this run made; the old codes stay)
            if os.path.exists(part):
                os.remove(part)
        raise
    # Every split is made: only now do the old codes give way (a failure before this point
    # leaves them as they were), the manifest last, so that a folder with one is complete. A
    # projector shows the old codes: it goes with them.
    if projector.discard(cfg.out) and not cfg.projector:
        print(f"Removed the projector of the old codes from {cfg.out} (--projector makes one "
              "of the new)")
    if os.path.exists(path):
        os.remove(path)
    for split, part in parts.items():
        os.replace(part, os.path.join(cfg.out, f"{split}.npz"))
    json_files.write_json(path, {**manifest, "splits": counts})
    print(f"Wrote {cfg.out}")
    if cfg.projector:
        write_projector(cfg, source, options, {**manifest, "splits": counts}, shown)
    return 0


def main(argv=None):
    return cli.run_main("extract_codes.py", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

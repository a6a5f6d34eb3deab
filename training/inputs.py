"""What a training run reads, behind one interface: the images of a data set (``Images``: the
network trains on them) or the codes extract_codes.py cached (``Codes``: a head trains on them,
the network below it fixed). ``training.config.resolve`` asks ``select(flags, run)`` for one
(which prepares the data or reads the codes' manifest) and takes what it fixes of the run's
configuration from its ``fixed``; train_and_val.py never looks at which it got.

    data = inputs.select(flags, run)       # prepares the data; data.fixed: num_classes, ...
    images, labels = data.train_batches(cfg, config, shard=None, seed=0)
    trainable = data.trainable_layers(cfg)
    val_images, val_labels, iterator = data.val_batches(cfg, config)

Both say what they are (``describe``), how many training images there are, their class names,
what to set once the session exists (``warm_start``) and what config.json must remember of
them (``record``). Codes fix the network (its layer, image size, data set and validation split
come from the codes' manifest), so flags that say otherwise are refused (``Codes.check_flags``).
"""

import os

import numpy as np
import tensorflow as tf

from common import cli
from common import json_files
from datasets import base
from inference import codes
import input_data
import model
import nets

tf1 = tf.compat.v1


class Images:
    """The images of ``--dataset`` in ``--data-dir``. ``fixed``: what they fix of the run's
    configuration: ``val_size`` (the data set's default when not given), ``num_classes``, the
    ``augment``, ``bn_refresh`` and from scratch the ``learning_rate`` (the data set's own when
    not given) and the ``resize`` (a resumed run's own when not given, else squash)."""

    codes = False

    def __init__(self, flags, run):
        self.source = input_data.SOURCES[flags.dataset]
        self.options = input_data.data_options(flags)
        augment = flags.augment or ",".join(self.source.AUGMENT) or "none"  # its default
        resize = flags.resize
        if resize is None:  # a resumed run's own
            last = ((run.config() or {}).get("runs") or [{}])[-1]
            resize = last.get("resize") or "squash"
        self.data_dir = flags.data_dir
        self.source.prepare(self.data_dir)
        self.val_size = flags.val_size
        if self.val_size is None:
            self.val_size = self.source.default_val_size(self.data_dir)
        bn_refresh = self.source.BN_REFRESH if flags.bn_refresh is None else flags.bn_refresh
        self.fixed = {"augment": augment, "resize": resize, "val_size": self.val_size,
                      "num_classes": self.source.num_classes(self.data_dir),
                      "bn_refresh": bn_refresh, "learning_rate": learning_rate(
                          flags, self.source.SCRATCH_LEARNING_RATE)}
        self.train_split = "trainval" if self.val_size == 0 else "train"
        self.source.validate(self.data_dir, self.train_split, **self.options)
        self.train_images = self.source.num_examples(self.data_dir, self.train_split,
                                                     self.val_size, **self.options)
        if self.val_size != 0:  # (a val split that cannot be read: said before any write)
            self.source.num_examples(self.data_dir, "val", self.val_size, **self.options)
        self.class_names = self.source.class_names(self.data_dir)

    def describe(self, cfg):
        return f"{cfg.arch} on {self.train_images} images ({self.train_split})"

    @staticmethod
    def check_flags(parser, args, image_size):
        """--augment against --no-augment, --scale-jitter against them and the image size;
        returns the --augment asked (``none`` for --no-augment; None: the data set's own)."""
        if args.no_augment and args.augment not in (None, "none"):
            parser.error(f"--no-augment and --augment {args.augment} say different things; "
                         "give one")
        augment = "none" if args.no_augment else args.augment
        jitter = args.scale_jitter
        if jitter and augment == "none":
            parser.error("--scale-jitter is an augmentation: it does not go with --no-augment "
                         "or --augment none")
        if jitter and jitter[0] < image_size:
            parser.error(f"--scale-jitter {jitter[0]},{jitter[1]}: MIN must be at least "
                         f"--image-size ({image_size}), or the crop would not fit; such as "
                         f"{image_size},{image_size * 5 // 4}")
        return augment

    def train_batches(self, cfg, config, shard, seed, augment=True):
        """Shuffled, repeating training batches; ``augment`` False reads them as validation
        reads them (what --bn-refresh measures)."""
        images, labels, _ = model.split_input(
            config, self.source, cfg.data_dir, self.train_split, cfg.batch_size,
            cfg.val_size, self.options, shuffle=True, augment=cfg.augment if augment else False,
            repeat=True, seed=seed, shard=shard, resize=cfg.resize,
            scale_jitter=cfg.scale_jitter if augment else None)
        return images, labels

    def trainable_layers(self, cfg):
        return nets.get(cfg.arch).trainable_layers(cfg.trainable)

    def summarize(self, images, preprocess):
        tf1.summary.image("input", input_data.unprocess_batch(images[:4], preprocess) / 255.0,
                          max_outputs=4)

    def class_counts(self):
        return self.source.class_counts(self.data_dir, self.train_split, self.val_size,
                                        **self.options)

    def val_batches(self, cfg, config):
        return model.split_input(config, self.source, cfg.data_dir, "val", cfg.batch_size,
                                 cfg.val_size, self.options, initializable=True,
                                 resize=cfg.resize)

    def warm_start(self, session):
        pass

    def record(self):
        return None


# What a codes folder's manifest fixes: (flag, its configuration's key); and the manifest's key
# for each.
CODES_FIX = (("--arch", "arch"), ("--image-size", "image_size"), ("--dataset", "dataset"),
             ("--data-dir", "data_dir"), ("--val-size", "val_size"))
MANIFEST_KEYS = {"arch": "network", "image_size": "image_size", "dataset": "dataset",
                 "data_dir": "data_dir", "val_size": "val_size"}


class Codes:
    """The cached codes in ``--codes``: the network, layer, image size, data set and validation
    split come from their manifest; the weights file the backbone loads from must be the one
    they were made with. ``fixed``: what they fix of the run's configuration (those, with the
    ``codes_layer``, ``num_classes``, ``fc_size`` and the ``pretrained`` weights file)."""

    codes = True

    @staticmethod
    def given_flags(args):
        """The flags the manifest fixes that were given (before defaults fill the rest in)."""
        return {flag: getattr(args, key) for flag, key in CODES_FIX
                if getattr(args, key) is not None}

    @staticmethod
    def check_flags(parser, args, network, skip):
        """Refuse the flags that change the network (only the head trains); returns what the
        head's run has instead: its ``head`` and ``head_size``, and no layer to ``skip``."""
        given = [flag for flag, value in (("--batch-norm", args.batch_norm),
                                          ("--fold-fc6", args.fold_fc6),
                                          ("--skip", tuple(skip) != (network.head,)),
                                          ("--trainable", args.trainable != "all"),
                                          ("--fc-size", args.fc_size is not None),
                                          ("--pretrained none", args.pretrained == "none"),
                                          ("--skip-bad-images", args.skip_bad_images),
                                          ("--crop-roi", args.crop_roi),
                                          ("--resize", args.resize),
                                          ("--scale-jitter", args.scale_jitter),
                                          ("--no-augment", args.no_augment),
                                          ("--augment", args.augment)) if value]
        if given:
            parser.error(f"{', '.join(given)} do not go with --codes: the codes fix the network "
                         "(only the head trains)")
        head = args.head or "linear"
        return {"head": head, "head_size": args.head_size if head == "mlp" else 0, "skip": ()}

    def __init__(self, flags, run=None):
        manifest = codes.read_manifest(flags.codes)
        fixed = {}
        for flag, key in CODES_FIX:
            wanted = manifest.get(MANIFEST_KEYS[key])
            given = flags.codes_flags.get(flag)
            if key == "data_dir" and given is not None:
                given = os.path.abspath(given)
            if given is not None and given != wanted:
                raise cli.UsageError(f"{flag} {flags.codes_flags[flag]}: the codes in "
                                     f"{flags.codes} were made with {flag} {wanted}; leave the "
                                     "flag out (the codes say it) or make codes for it with "
                                     "extract_codes.py")
            fixed[key] = wanted
        fixed["codes_layer"] = manifest["layer"]
        fixed["num_classes"] = len(manifest["class_names"])
        network = nets.get(fixed["arch"])
        fixed["fc_size"] = cli.default("fc-size") if (
            "fc_size" in network.build_args and fixed["codes_layer"] in network.fc_layers) else 0
        path = manifest.get("weights_file") if flags.pretrained == "auto" else flags.pretrained
        if not path or not os.path.isfile(path):
            raise cli.UsageError(f"the weights file the codes in {flags.codes} were made from "
                                 f"({path}) is not there; pass it with --pretrained (the "
                                 "checkpoint holds the whole network: those layers and the "
                                 "head)")
        if codes.sha256(path) != manifest.get("weights_sha256"):
            raise cli.UsageError(f"--pretrained {path} is not the weights file the codes in "
                                 f"{flags.codes} were made from (its SHA-256 differs); pass "
                                 "that one")
        fixed["pretrained"] = path
        fixed["learning_rate"] = learning_rate(flags, cli.default("learning-rate"))
        self.fixed, self.manifest, self.folder = fixed, manifest, flags.codes
        self.train_split = "trainval" if fixed["val_size"] == 0 else "train"
        self.train_images = manifest["splits"]["train"]
        self.class_names = manifest["class_names"]
        self.train_values = None

    def class_counts(self):
        num_classes = self.fixed["num_classes"]
        labels = codes.load(self.folder, "train", num_classes=num_classes)[1]
        return np.bincount(labels, minlength=num_classes).tolist()

    def describe(self, cfg):
        return (f"a {cfg.head} head on {cfg.arch}'s {cfg.codes_layer} codes of "
                f"{self.train_images} images ({cfg.codes})")

    def train_batches(self, cfg, config, shard, seed):
        values, labels = codes.load(cfg.codes, "train", num_classes=cfg.num_classes)[:2]
        if shard:
            values, labels = values[shard[1]::shard[0]], labels[shard[1]::shard[0]]
        self.train_values = values
        images, labels, _ = model.inputs(lambda: codes.dataset(
            values, labels, cfg.batch_size, shuffle=True, repeat=True, seed=seed))
        # The whole network, never run here: its checkpoints restore into a graph on images.
        _, end_points = model.inference(config, tf1.placeholder(
            tf.float32, [None, cfg.image_size, cfg.image_size, 3], "images"))
        width = int(np.prod(end_points[cfg.codes_layer].shape[1:]))
        if width != values.shape[1]:
            raise cli.UsageError(f"the codes in {cfg.codes} have {values.shape[1]} values "
                                 f"each, where {cfg.arch}'s {cfg.codes_layer} at "
                                 f"{cfg.image_size}x{cfg.image_size} gives {width}: its "
                                 "manifest does not describe them; make them again with "
                                 "extract_codes.py")
        return images, labels

    def trainable_layers(self, cfg):
        return model.HEADS[cfg.head]

    def summarize(self, images, preprocess):
        pass  # (codes are no pictures)

    def val_batches(self, cfg, config):
        values, labels = codes.load(cfg.codes, "val", num_classes=cfg.num_classes)[:2]
        return model.inputs(lambda: codes.dataset(values, labels, cfg.batch_size),
                            initializable=True)

    def warm_start(self, session):
        model.set_head_input(session, self.train_values)

    def record(self):
        """What evaluate.py --codes checks codes against."""
        return {k: self.manifest[k] for k in ("network", "layer", "image_size",
                                              "weights_sha256")}


def learning_rate(flags, scratch):
    """--learning-rate when given; else ``scratch`` (the data set's own) from scratch
    (--pretrained none), 0.01 from pretrained weights."""
    if flags.learning_rate is not None:
        return flags.learning_rate
    return scratch if flags.pretrained == "none" else cli.default("learning-rate")


def select(flags, run):
    """The training input the checked flags ask for: ``Codes`` with --codes, else ``Images``
    (``run``: the run's folder, whose config.json a resumed run's resize comes from)."""
    return Codes(flags, run) if flags.codes else Images(flags, run)


LARGEST_WEIGHT = float(np.finfo(np.float32).max)  # (a larger one is infinite in the loss)


def class_weights(given, counts, names):
    """[weight of each class] for --class-weights GIVEN (None: None): 'balanced' gives class c
    N / (classes x count c) of the training split's COUNTS (0 for a class without images), a
    JSON file {class name: weight} those weights (1 for the classes it leaves out)."""
    if not given:
        return None
    if given == "balanced":
        return [sum(counts) / (len(counts) * c) if c else 0.0 for c in counts]
    try:
        table = json_files.read_json(given)
    except cli.UsageError:
        raise cli.UsageError(f"--class-weights {given}: not readable JSON; give 'balanced' or "
                             "a JSON file {class name: weight}") from None
    if table is None:
        raise cli.UsageError(f"--class-weights {given}: no such file; give 'balanced' or a JSON "
                             "file {class name: weight}")
    if not isinstance(table, dict) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= LARGEST_WEIGHT
            for w in table.values()):
        raise cli.UsageError(f"--class-weights {given}: not a JSON object of class name: weight "
                             f"(numbers from 0 to {LARGEST_WEIGHT:.3g}, which float32 holds)")
    unknown = [name for name in table if name not in names]
    if unknown:
        raise cli.UsageError(f"--class-weights {given}: {', '.join(map(str, unknown[:3]))} "
                             f"not among the classes ({base.few(list(names))})")
    weights = [float(table.get(name, 1.0)) for name in names]
    if not any(weight and count for weight, count in zip(weights, counts)):
        raise cli.UsageError(f"--class-weights {given}: every class with training images has "
                             "the weight 0, so no image would count and nothing would be "
                             "learned; give at least one of them a weight above 0")
    return weights

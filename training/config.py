"""A training run's configuration, resolved once: ``RunConfig``, a frozen dataclass with one field
for every value train_and_val.py uses, the flags and what follows from them, and the two steps
that make it. Nothing writes it after that: what a run used is what this object says, and
config.json's entry of the run is this object written out (``run_entry``).

    flags = config.check_flags(parser, parser.parse_args(argv))   # the command line, checked
    cfg, data = config.resolve(flags, runs.RunDir(flags.log_dir))  # + the data, codes, the run

``check_flags`` checks the flags (``parser.error``: one line, exit 2) and completes them from
themselves alone (the network's image size, the layers to skip, the schedule's defaults, ...),
into a frozen ``cli.freeze`` object; it runs in ``parse_args``, before TensorFlow works.
``resolve`` adds what only the files can say: the data set (prepared: CIFAR-10 may download),
its number of classes and validation split, the codes' manifest with --codes (which fixes the
network), the class weights, and a resumed run's own resize and fc size. It runs inside the
program's ``main()`` trap (its errors are one line too), before the run's folder is made and
before any graph is built; a parameter server never calls it (it reads no data).
"""

import dataclasses
from typing import Optional
from typing import Tuple

from common import cli
import input_data
import nets
from training import from_run
from training import inputs
from training import schedules

# What config.json's entry of a run holds beyond its RunConfig (``run_entry``).
RUN_EXTRAS = ("pretrained_file", "start_step", "max_steps", "train_split", "train_images",
              "started")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every value a training run uses, named as its flag's destination (``--lr-steps``:
    ``lr_steps``), in the order of the flags, then the values only resolution gives."""

    # The data: with --codes, dataset and data_dir are the codes' manifest's
    dataset: str
    data_dir: str
    skip_bad_images: bool
    crop_roi: bool
    log_dir: str
    # Where the weights start: a weights file, a run, or none; the layers not loaded from it
    pretrained: str
    init_layers: str
    fold_fc6: bool
    skip: Tuple[str, ...]  # --skip, or the network's last layer, plus init_skipped
    # The network and its inputs: with --codes, arch and image_size are the manifest's
    arch: str
    batch_norm: bool
    fc_size: int  # --fc-size, or a resumed run's own, or by the image size (resolve_fc_size)
    image_size: int  # --image-size, or the network's own
    resize: Optional[str]  # --resize, or a resumed run's own, or squash (None with --codes)
    scale_jitter: Optional[Tuple[int, int]]
    batch_size: int
    # The recipe: the learning rate and its schedule, the loss, the averages
    learning_rate: float
    lr_schedule: str
    lr_steps: Optional[Tuple[float, ...]]  # epochs, with --lr-schedule step
    plateau_patience: int  # (the plateau's three: their defaults when not given)
    plateau_factor: float
    plateau_decays: int
    warmup_steps: Optional[int]
    warmup_fraction: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    class_weights: Optional[str]
    ema_decay: float
    clip_norm: float
    dropout_keep_prob: float
    # --bn-refresh, or the data set's BN_REFRESH: batches of training images (no augmentation)
    # whose batch-norm statistics replace the moving averages at the last step; at most one
    # pass, 0 without batch norm, with --codes and in a cluster (training.statistics)
    bn_refresh: int
    augment: Optional[str]  # --augment, none for --no-augment, or the data set's own
    no_augment: bool
    # The length of the run, its validation split, how often it saves, validates and reports
    epochs: float
    max_steps: Optional[int]  # the flag (config.json's entry holds the run's resolved one)
    val_size: int  # --val-size, or the data set's default, or the manifest's
    val_every: int
    save_every: int
    summary_every: int
    log_every: int
    seed: int
    histograms: bool
    # How it runs, and which layers train
    precision: str
    xla: bool
    verbose: bool
    trainable: str
    # A head on cached codes instead of the network on images
    codes: Optional[str]
    head: Optional[str]  # linear or mlp with --codes, else None
    head_size: int  # 0 but for an mlp head
    # Several devices, several machines
    num_gpus: int
    tower_device: str
    variables_on: str
    job_name: Optional[str]
    task_index: Optional[int]
    ps_hosts: Optional[str]
    worker_hosts: Optional[str]
    async_updates: bool
    ps_wait: int
    # Only resolution gives these
    init_skipped: Tuple[str, ...]  # the layers --init-layers paper leaves out (in skip too)
    codes_layer: Optional[str]  # the layer the codes are of (--codes), else None
    num_classes: int
    class_weight_values: Optional[Tuple[float, ...]]  # each class's --class-weights weight


def check_flags(parser, args):
    """The flags of train_and_val.py (``args``, as argparse parsed them) checked where their
    types alone cannot check them, ``parser.error`` on a bad one, and completed from themselves
    alone: a frozen ``cli.freeze`` object (``Flags``) with the network's defaults filled in,
    ``skip`` a tuple (with ``init_skipped``), the schedule's values, the --augment asked, the
    head, and with --codes the flags the manifest fixes that were given (``codes_flags``)."""
    # With --codes these come from the codes' manifest: only those given are compared with it.
    codes_flags = inputs.Codes.given_flags(args) if args.codes else None
    filled = {key.replace("-", "_"): cli.default(key) for key in ("arch", "dataset", "data-dir")
              if getattr(args, key.replace("-", "_")) is None}
    arch, dataset = filled.get("arch", args.arch), filled.get("dataset", args.dataset)
    network, image_size = nets.check_image_size(parser, arch, args.image_size)
    if args.epochs <= 0 or (args.learning_rate is not None and args.learning_rate <= 0):
        parser.error("--epochs and --learning-rate must be positive")
    if not 0 < args.dropout_keep_prob <= 1:
        parser.error("--dropout-keep-prob must be in (0, 1]")
    if args.clip_norm < 0 or args.weight_decay < 0 or args.momentum < 0:
        parser.error("--clip-norm, --weight-decay and --momentum must not be negative")
    for flag in ("warmup_fraction", "label_smoothing", "ema_decay"):
        if not 0 <= getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 0 and below 1")
    skip = (network.head,) if args.skip is None else tuple(s for s in args.skip.split(",") if s)
    init_skipped = from_run.check_flags(parser, args, network, skip)
    skip += init_skipped
    unknown = [s for s in skip if s not in network.layers]
    if unknown:
        parser.error(f"--skip: {', '.join(unknown)} not a layer of {arch} "
                     f"({', '.join(network.layers)})")
    if args.fold_fc6 and ("fc6" not in network.layers
                          or image_size != network.default_image_size
                          or network.default_image_size == network.imagenet_image_size):
        parser.error("--fold-fc6 needs pool5 to be 1x1 where the public fc6 reads 7x7: VGG at "
                     "--image-size 32")
    try:
        input_data.data_options(args, dataset)
    except cli.UsageError as e:
        parser.error(str(e))
    try:
        network.trainable_layers(args.trainable)
    except ValueError as e:
        parser.error(f"--trainable: {e}")
    if args.head and not args.codes:
        parser.error("--head goes with --codes (a head on cached codes)")
    schedule = schedules.check_flags(parser, args)
    if args.batch_size % args.num_gpus:
        parser.error(f"--batch-size {args.batch_size} does not split into --num-gpus "
                     f"{args.num_gpus} equal parts; give a multiple of {args.num_gpus}")
    if args.codes:
        head = inputs.Codes.check_flags(parser, args, network, skip)
    else:
        head = {"augment": inputs.Images.check_flags(parser, args, image_size), "head_size": 0}
    return cli.freeze(args, **filled, image_size=image_size, **schedule,
                      **{"skip": skip, **head}, init_skipped=init_skipped,
                      codes_flags=codes_flags)


def resolve(flags, run, chief=True, cluster=False):
    """``(RunConfig, the run's input)`` of the checked ``flags`` (``check_flags``) and the
    run's folder ``run`` (a ``runs.RunDir``): the input (``inputs.select``: the data prepared,
    or the codes' manifest read) fixes what it fixes; the class weights come from its classes;
    the fc size, when neither the flags nor the codes give it, from a run the ``chief`` will
    resume (``resolve_fc_size``); --bn-refresh (or the data set's own) cut to one pass of the
    training split, 0 where there is no batch norm to refresh or in a ``cluster``. UsageError
    or DataError on what the files do not allow."""
    data = inputs.select(flags, run)
    values = {field.name: getattr(flags, field.name) for field in dataclasses.fields(flags)
              if field.name != "codes_flags"}
    values["codes_layer"] = None  # (but for codes, which fix it)
    values.update(data.fixed)
    weights = inputs.class_weights(
        flags.class_weights, data.class_counts() if flags.class_weights else None,
        data.class_names)
    values["class_weight_values"] = None if weights is None else tuple(weights)
    if values["fc_size"] is None:
        values["fc_size"] = resolve_fc_size(flags, run, chief and run.will_resume())
    one_pass = -(-data.train_images // flags.batch_size)
    values["bn_refresh"] = 0 if data.codes or cluster or not flags.batch_norm else min(
        values["bn_refresh"], one_pass)
    return RunConfig(**values), data


def resolve_fc_size(flags, run, resuming):
    """--fc-size when given; else a resumed run's own; else the paper's 4096 where pretrained
    fc6/fc7 can load (224x224, or --fold-fc6) and 0 (fc8 on pool5) otherwise: measured on real
    CIFAR-10 images from scratch, that head beats 4096-wide fc6/fc7 (README, Recipes)."""
    if flags.fc_size is not None:
        return flags.fc_size
    config = (run.config() or {}) if resuming else {}
    if "model" in config:
        return config["model"]["fc_size"]
    return cli.default("fc-size") if flags.fold_fc6 or \
        flags.image_size == nets.get(flags.arch).imagenet_image_size else 0


def run_entry(cfg, **extras):
    """config.json's entry of a run: its configuration written out, then ``extras`` (those of
    ``RUN_EXTRAS``: the weights file it started from, its first and last step, ...; a key of
    both, ``max_steps``, keeps its place and takes the resolved value)."""
    unknown = set(extras) - set(RUN_EXTRAS)
    if unknown:
        raise TypeError(f"not extras of a run's entry: {', '.join(sorted(unknown))}")
    return {**dataclasses.asdict(cfg), **extras}

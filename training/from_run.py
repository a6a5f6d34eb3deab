"""What ``--pretrained`` names (``pretrained_file``: a weights file, ``auto``'s
pretrained/ARCH.npy, or a run), and warm-starting from another run: ``--pretrained`` given a
run's log dir (its newest checkpoint in train/), a folder of checkpoints (its newest) or a
checkpoint prefix. Every variable of a
layer whose variables all match by name and shape is copied from the checkpoint (batch-norm
parameters and moving statistics too); the optimizer's slots, the moving averages, the step and
the learning-rate schedule's state are not: the new run starts its own.

``PAPER_LAYERS`` is the VGG paper's set (section 3.1): the deeper configurations started from
configuration A's first four convolutional layers and its three fully connected layers. In this
project's names those are conv1_1, conv2_1, conv3_1, conv3_2 and fc6-fc8, with the same shapes in
VGG11, VGG13, VGG16 and VGG19 (in the deeper ones conv1_2 and conv2_2 sit between them, so the
layers of the same name are at other depths, as they were in the paper).
"""

import os
import re

import tensorflow as tf

from common.cli import UsageError
from training import runs
import weights

tf1 = tf.compat.v1

PAPER_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8")
_NOT_COPIED = re.compile(r"(^|/)(Momentum|ExponentialMovingAverage)(_\d+)?$|^global_step$|"
                         r"^lr_schedule/")


def check_flags(p, args, network, skip):
    """--init-layers paper: the layers of ``network`` outside the paper's set and not in
    ``skip`` already, which join the skipped ones (a tuple; empty for --init-layers all);
    ``p.error`` for a network without them (or a head on codes)."""
    if args.init_layers != "paper":
        return ()
    if args.codes or not set(PAPER_LAYERS) <= set(network.layers):
        p.error(f"--init-layers paper: the VGG paper's layers ({', '.join(PAPER_LAYERS)}) are "
                "layers of VGG trained on images, not of "
                f"{'a head on codes' if args.codes else network.name}")
    return tuple(s for s in network.layers if s not in PAPER_LAYERS and s not in skip)


def skips(cfg):
    """``{layer: why}`` of the layers --pretrained does not give: asked (--skip), or outside
    the paper's set (--init-layers paper)."""
    paper = set(cfg.init_skipped)
    return {layer: "not in the paper's set (--init-layers paper)" if layer in paper else "asked"
            for layer in cfg.skip}


def is_run(path):
    """Whether ``--pretrained path`` names a run or a checkpoint rather than a weights file."""
    return os.path.isdir(path) or not os.path.isfile(path) and tf1.train.checkpoint_exists(
        path) or bool(re.search(r"\.(index|data-\d+-of-\d+)$", path))


def find(path):
    """The checkpoint ``--pretrained path`` names; UsageError when there is none."""
    try:
        if os.path.isdir(runs.RunDir(path).train):  # a run's log dir
            return runs.find_checkpoint(path, flag="--pretrained")
        return runs.find_checkpoint(None, checkpoint=path, flag="--pretrained")
    except UsageError as e:
        why = re.sub(r"^--pretrained \S+: ", "", str(e)).replace(
            "(give the prefix", "(give a run's log dir or the prefix")
        raise UsageError(f"--pretrained {path}: {why}") from None


def copied(name):
    return not _NOT_COPIED.search(name)


def load(checkpoint, session, layers, skip=(), verbose=True):
    """Copy the variables of the network's ``layers`` (outside ``skip``) from ``checkpoint`` into
    the session's graph, a layer whole or not at all; ``[(layer, status, detail)]`` like
    ``weights.load_pretrained``'s, printed one line a layer unless ``verbose`` is False."""
    reader = tf1.train.load_checkpoint(checkpoint)
    saved = reader.get_variable_to_shape_map()
    by_layer = {}
    for variable in tf1.global_variables():
        name = variable.op.name
        if copied(name) and name.split("/")[0] in layers:
            by_layer.setdefault(name.split("/")[0], []).append(variable)
    in_checkpoint = {name.split("/")[0] for name in saved if copied(name)}
    report, values = [], []  # values: (variable, value) to set, in one run
    for layer in layers:
        variables = by_layer.get(layer, [])
        if layer in skip:
            report.append((layer, "skipped", skip[layer] if isinstance(skip, dict) else "asked"))
        elif not variables:
            if layer in in_checkpoint:
                report.append((layer, "not in graph", ""))
        elif layer not in in_checkpoint:
            report.append((layer, "not in checkpoint", "left at its initial value"))
        else:
            names = {v.op.name for v in variables}
            extra = sorted(n for n in saved if n.split("/")[0] == layer and copied(n)
                           and n not in names)
            if extra:  # (batch norm in the checkpoint and not in the graph: another function)
                report.append((layer, "not loaded", f"the checkpoint also has {', '.join(extra)}"
                               ", which this graph has no place for (batch norm?); left at "
                               "its initial value"))
                continue
            missing = [v.op.name for v in variables if v.op.name not in saved]
            wrong = [f"{v.op.name} {saved[v.op.name]} vs graph {v.shape.as_list()}"
                     for v in variables if v.op.name in saved
                     and saved[v.op.name] != v.shape.as_list()]
            if missing or wrong:
                report.append((layer, "not loaded", "; ".join(
                    ([f"{', '.join(missing)} not in the checkpoint"] if missing else []) + wrong)
                    + "; left at its initial value"))
                continue
            values += [(v, reader.get_tensor(v.op.name)) for v in variables]
            report.append((layer, "loaded", f"{len(variables)} variables"))
    weights.set_variables(session, values)
    if verbose:
        weights.print_report(f"Weights from {checkpoint}:", report)
    return report


def pretrained_file(pretrained, network, image_size, fold_fc6, skip):
    """What ``--pretrained`` names for ``network`` (a nets.py entry): a run or checkpoint as
    given, a weights file, or None (``none``); ``auto`` is pretrained/ARCH.npy, made from
    Keras's ImageNet weights when missing if it can (with fc6-fc8 where they fit: at the
    network's ImageNet side, or ``fold_fc6``, and fc6 not in ``skip``)."""
    if pretrained == "none":
        return None
    if pretrained != "auto":
        if is_run(pretrained):
            return pretrained
        if not os.path.isfile(pretrained):
            raise UsageError(f"--pretrained {pretrained}: no such file (give a weights file, a "
                             "run's log dir or checkpoint, 'auto', or 'none' to train from "
                             "scratch)")
        return pretrained
    path = os.path.join("pretrained", f"{network.name}.npy")
    if not os.path.exists(path) and not network.keras_application:
        print(f"{path} is missing and Keras has no ImageNet weights for {network.name} to write "
              "it from: training from scratch (put the public file there, e.g. bvlc_alexnet.npy "
              "renamed, to start from it).")
        return None
    if not os.path.exists(path):
        # fc6 only fits 224x224 inputs (or, summed, 32x32 with --fold-fc6); otherwise the small
        # convolution-only weights suffice.
        include_top = (image_size == network.imagenet_image_size or fold_fc6) \
            and "fc6" not in skip
        print(f"{path} is missing: writing it from Keras's ImageNet weights "
              f"({'with' if include_top else 'without'} fc6-fc8).")
        try:
            weights.convert(network, path, include_top=include_top)
        except (weights.ConversionError, OSError) as e:
            raise UsageError(
                f"{path} is missing and could not be made: {e}. Put the public "
                f"{network.name}.npy at that path, or train from scratch with --pretrained "
                "none") from None
    return path

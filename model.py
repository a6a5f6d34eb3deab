"""The model API the programs share, in the TensorFlow CIFAR-10 tutorial's order:

    images, labels, iterator = model.inputs(lambda: input_data.read_cifar10(...))
    tower = model.tower(config, images, labels, is_training=True, weight_decay=5e-4)
    grads = tools.compute_gradients(optimizer, tower.total_loss, ...)  # then average, if towers
    train_op = tools.apply_gradients(optimizer, grads, global_step)
    result = model.run_split(session, iterator, tower)                 # every image once

``config`` is the ``model`` entry a run saves in its config.json (``MODEL_KEYS``): which network
from nets.py, with batch norm or not, at which image size, for how many classes; for a head
trained on codes, the layer the network is cut at and the head on top of it (``HEADS``).
"""

import contextlib
import typing

import numpy as np
import tensorflow as tf

from common import devices
import input_data
import nets
import tools

tf1 = tf.compat.v1

# What fixes the shapes of the variables; a checkpoint only restores into the same.
MODEL_KEYS = ("arch", "batch_norm", "image_size", "num_classes", "fc_size", "codes_layer", "head",
              "head_size")
# What a run's config.json had before a key was added, for runs written before it.
MODEL_DEFAULTS = {"fc_size": 4096, "codes_layer": None, "head": None, "head_size": 0}
# Heads on a network cut at ``codes_layer`` (train_and_val.py --codes --head): softmax regression,
# or one hidden layer of ``head_size`` ReLUs with dropout. Their layers, in graph order:
HEADS = {"linear": ("head_logits",), "mlp": ("head_hidden", "head_logits")}
HEAD_INPUT = "head_input"  # the head's fixed standardization of the codes (not trained)


def model_config(cfg):
    """The ``model`` entry of config.json from a run's configuration (``training.config``)."""
    return {key: getattr(cfg, key, MODEL_DEFAULTS.get(key)) for key in MODEL_KEYS}


def inputs(make_dataset, initializable=False):
    """``(images, labels, iterator)`` of the ``tf.data.Dataset`` that ``make_dataset()`` returns,
    built on the CPU with its iterator (TensorFlow keeps an iterator where its dataset is, so
    the dataset itself must be made in the CPU's scope). An initializable iterator (for
    validation and evaluation) restarts the split on each run of ``iterator.initializer``;
    otherwise it runs once through (training repeats its data). tf.data's autotuning model is
    off (``input_data.fixed_parallelism``)."""
    with tf.device(devices.INPUT_DEVICE):
        dataset = input_data.fixed_parallelism(make_dataset())
        if initializable:
            iterator = tf1.data.make_initializable_iterator(dataset)
        else:
            iterator = tf1.data.make_one_shot_iterator(dataset)
        images, labels = iterator.get_next()
    return images, labels, iterator


def split_dataset(config, source, data_dir, split, batch_size, val_size=None, options=None,
                  **reading):
    """The ``tf.data.Dataset`` of a split of a data set (``source``: an entry of
    ``input_data.SOURCES``, or its name) read for the configured network: resized to its
    image size and preprocessed its way. ``options`` are the data set's own (``crop_roi``,
    ``skip_bad_images``); ``reading`` the reader's (``shuffle``, ``augment``, ``repeat``,
    ``seed``, ``shard``)."""
    source = input_data.SOURCES[source] if isinstance(source, str) else source
    return source.read(data_dir, split, batch_size, preprocess=nets.get(config["arch"]).preprocess,
                       image_size=config["image_size"], val_size=val_size, **(options or {}),
                       **reading)


def split_input(config, source, data_dir, split, batch_size, val_size=None, options=None,
                initializable=False, **reading):
    """``(images, labels, iterator)`` of a split of a data set read as ``split_dataset`` reads
    it. Every program reads its images through here or ``split_inputs``."""
    return inputs(lambda: split_dataset(config, source, data_dir, split, batch_size, val_size,
                                        options, **reading), initializable)


def split_inputs(config, source, data_dir, splits, batch_size, val_size=None, options=None,
                 **reading):
    """``(images, labels, {split: initializer})``: several splits read as ``split_dataset``
    reads one, through one iterator, so that one network built on it serves them all. Running
    a split's initializer starts that split and frees the one before, its cached images with
    it."""
    with tf.device(devices.INPUT_DEVICE):
        datasets = {split: input_data.fixed_parallelism(split_dataset(
            config, source, data_dir, split, batch_size, val_size, options, **reading))
            for split in splits}
        first = datasets[splits[0]]
        shapes = tf.nest.map_structure(lambda shape: tf.TensorShape([None]).concatenate(
            shape[1:]), tf1.data.get_output_shapes(first))  # (batches of any size)
        iterator = tf1.data.Iterator.from_structure(tf1.data.get_output_types(first), shapes)
        starts = {split: iterator.make_initializer(data) for split, data in datasets.items()}
        images, labels = iterator.get_next()
    return images, labels, starts


def inference(config, images, is_training=False, dropout_keep_prob=0.5, codes=False):
    """``(logits, end_points)`` of the configured network; variables are shared between calls.
    With a head (``config["head"]``) the network stops at ``config["codes_layer"]`` and the head
    reads that layer's output; ``codes=True`` takes ``images`` to be that output already (cached
    codes, [batch, D]) and builds the head alone."""
    config = {**MODEL_DEFAULTS, **config}
    network = nets.get(config["arch"])
    options = dict(batch_norm=config["batch_norm"], fc_size=config["fc_size"])
    if not config["head"]:
        return network.make(images, config["num_classes"], is_training=is_training,
                            dropout_keep_prob=dropout_keep_prob, **options)
    end_points = {}
    if codes:
        features = images
    else:
        features, end_points = network.make(images, None, until=config["codes_layer"],
                                            **options)
    logits = head(features, config, is_training, dropout_keep_prob)
    end_points["logits"] = logits
    return logits, end_points


def head(features, config, is_training=False, dropout_keep_prob=0.5):
    """The logits of the configured head on ``features`` (flattened when 4-D, as the codes
    are): standardized value by value (``head_input``, see ``set_head_input``), then
    ``head_logits`` alone, or ``head_hidden`` (ReLU, then dropout while training) first."""
    with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
        width = int(np.prod(features.shape[1:]))
        net = tf.reshape(features, [-1, width])
        with tf1.variable_scope(HEAD_INPUT):
            mean = tf1.get_variable("mean", [width], initializer=tf1.zeros_initializer(),
                                    trainable=False)
            scale = tf1.get_variable("scale", [width], initializer=tf1.ones_initializer(),
                                     trainable=False)
        net = (net - mean) / scale
        if config["head"] == "mlp":
            net = tools.fc("head_hidden", net, config["head_size"])
            net = tools.dropout(net, dropout_keep_prob, is_training)
        return tools.fc("head_logits", net, config["num_classes"], relu=False)


def dense_side(config, side=None):
    """The side of the map the network's first fully connected layer reads (pool5 for VGG and
    AlexNet) on SIDE x SIDE images (default: the configured image size): the window of its
    dense form; 0 when the images are too small for one."""
    network = nets.get(config["arch"])
    side = side or config["image_size"]
    with tf.Graph().as_default():
        try:
            features, _ = network.make(tf1.placeholder(tf.float32, [1, side, side, 3]), None,
                                       fc_size=0, dense=1)
        except ValueError:  # a pool or convolution without a window that fits
            return 0
    return int(features.shape[1]) if features.shape.ndims == 4 else 0


def check_dense(config, scales):
    """ValueError saying why the configured network cannot be applied densely at each of
    ``scales`` (shorter sides), if it cannot."""
    network = nets.get(config["arch"])
    if config.get("head") or not network.dense:
        raise ValueError(f"{config['arch']}{' with a head on codes' if config.get('head') else ''}"
                         " has no dense form (its fully connected layers as convolutions)")
    window = dense_side(config)
    small = [q for q in scales if dense_side(config, q) < window]
    if small:
        raise ValueError(f"scale {small[0]} is too small: {config['arch']} trained at "
                         f"{config['image_size']}x{config['image_size']} needs a shorter side "
                         f"of at least {config['image_size']}")


def dense_logits(config, images, scales, flip=False):
    """The network applied densely (the VGG paper's test time): ``images`` (preprocessed, any
    height and width, equal within the batch) resized so that their shorter side is each of
    ``scales`` (aspect kept), the fully connected layers as convolutions over the whole image
    (``nets.Network.dense``), the class posterior averaged over the score map (and with
    ``flip`` over the image and its mirror), then over the scales. Returns the log of that mean
    posterior [B, classes]: logits whose softmax is it. At the trained size the score map is
    one position, and this is the ordinary network's log-softmax."""
    config = {**MODEL_DEFAULTS, **config}
    network = nets.get(config["arch"])
    window = dense_side(config)
    options = dict(batch_norm=config["batch_norm"], fc_size=config["fc_size"])
    means = []
    for side in scales:
        scaled = input_data.shorter_side(images, side)
        for mirrored in ((False, True) if flip else (False,)):
            score_map, _ = network.make(tf.reverse(scaled, axis=[2]) if mirrored else scaled,
                                        config["num_classes"], dense=window, **options)
            log_posterior = tf.nn.log_softmax(tf.cast(score_map, tf.float32))
            positions = tf.cast(tf.reduce_prod(tf.shape(log_posterior)[1:3]), tf.float32)
            means.append(tf.reduce_logsumexp(log_posterior, axis=[1, 2]) -
                         tf.math.log(positions))
    return tf.reduce_logsumexp(tf.stack(means), axis=0) - tf.math.log(float(len(means)))


def layer_variables(layers=None):
    """The trainable variables of the named layers (all of them for None)."""
    return [v for v in tf1.trainable_variables()
            if layers is None or v.op.name.split("/")[0] in layers]


class Tower(typing.NamedTuple):
    """What one copy of the network computes on a batch."""
    logits: tf.Tensor
    end_points: dict
    total_loss: tf.Tensor  # cross-entropy + weight decay: what training minimizes
    cross_entropy: tf.Tensor  # mean over the batch
    accuracy: tf.Tensor  # fraction of the batch
    losses: tf.Tensor  # cross-entropy of each image
    predictions: tf.Tensor  # the class with the highest logit, int32
    labels: tf.Tensor
    var_list: list  # the variables that train (and are decayed)


def set_head_input(session, train_codes):
    """Set the head's standardization from the training codes: each value's mean, and its
    standard deviation, no smaller than a tenth of the average one (so that a value nearly
    constant in training is not blown up where it varies). Codes of a fixed network come in
    scales that differ by layer and network; standardized, one learning rate fits them all."""
    mean = train_codes.mean(axis=0, dtype=np.float64)
    std = train_codes.std(axis=0, dtype=np.float64)
    scale = np.maximum(std, 0.1 * std.mean()) if std.mean() > 0 else np.ones_like(std)
    variables = {v.op.name: v for v in session.graph.get_collection(
        tf1.GraphKeys.GLOBAL_VARIABLES)}
    for name, value in (("mean", mean), ("scale", scale)):
        variable = variables[f"{HEAD_INPUT}/{name}"]
        session.run(variable.initializer,
                    {variable.initializer.inputs[1]: value.astype(np.float32)})


def tower(config, images, labels, is_training=False, weight_decay=0.0, trainable_layers=None,
          dropout_keep_prob=0.5, label_smoothing=0.0, flip_average=False, codes=False,
          dense_scales=None, class_weights=None):
    """The network on ``images`` and its loss against ``labels``. Only the variables of
    ``trainable_layers`` (default: all layers) train, and weight decay covers their weights;
    ``label_smoothing`` softens the targets of the total loss and ``class_weights`` weigh its
    images by class (see ``tools.loss``).
    ``flip_average`` (evaluation): each image's class probabilities are the mean of the
    network's on the image and on its mirror image; ``logits`` are their logarithms.
    ``codes``: ``images`` are cached codes and the tower is the head alone (see ``inference``).
    ``dense_scales`` (evaluation): the network applied densely at those shorter sides
    (``dense_logits``, with ``flip_average`` over mirrors too); ``end_points`` is then empty."""
    if flip_average and codes:
        raise ValueError("flip_average needs images, not codes")
    if dense_scales:
        logits, end_points = dense_logits(config, images, dense_scales, flip_average), {}
        flip_average = False
    else:
        logits, end_points = inference(config, images, is_training, dropout_keep_prob, codes)
    if flip_average:
        mirrored, _ = inference(config, tf.reverse(images, axis=[2]), is_training,
                                dropout_keep_prob)
        # log of the mean probability, computed in log space so that it stays finite
        logits = tf.reduce_logsumexp(tf.stack([tf.nn.log_softmax(logits),
                                               tf.nn.log_softmax(mirrored)]), axis=0) \
            - tf.math.log(2.0)
    labels = tf.cast(labels, tf.int32)
    var_list = layer_variables(trainable_layers)
    total_loss, cross_entropy = tools.loss(logits, labels, weight_decay, var_list,
                                           label_smoothing, class_weights)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return Tower(logits, end_points, total_loss, cross_entropy, tools.accuracy(logits, labels),
                 losses, tf.argmax(logits, axis=-1, output_type=tf.int32), labels, var_list)


def moving_average(decay, global_step, train_op, variables):
    """An exponential moving average of ``variables`` after each run of ``train_op``. Returns
    ``(ema, train_op that also updates it, op copying the variables into it)``; the decay ramps
    up from 0.1 as (1 + step) / (10 + step) until it reaches ``decay``, so short runs average
    what they learned rather than where they started."""
    ema = tf1.train.ExponentialMovingAverage(decay, num_updates=global_step)
    with tf.control_dependencies([train_op]):
        update = ema.apply(variables)
    sync = tf.group([ema.average(v).assign(v) for v in variables])
    return ema, update, sync


@contextlib.contextmanager
def averaged_weights(ema):
    """Inside, networks are built on the moving averages of their variables (``ema``) where
    there is one, on the variables themselves otherwise (e.g. batch-norm statistics)."""
    def read_average(getter, name, *args, **kwargs):  # (TensorFlow passes ``getter=``)
        variable = getter(name, *args, **kwargs)
        average = ema.average(variable)
        return variable if average is None else average
    with tf1.variable_scope(tf1.get_variable_scope(), custom_getter=read_average):
        yield


class Mistake(typing.NamedTuple):
    """A wrongly classified image of a split (``run_split`` with ``details``)."""
    index: int  # its position in the split
    label: int
    prediction: int
    probability: float  # the network's probability of the (wrong) predicted class
    pixels: typing.Optional[np.ndarray] = None  # uint8 RGB [S, S, 3] as the network saw it


class SplitResult(typing.NamedTuple):
    """Every image of a split: its label, the predicted class and its cross-entropy; with
    ``run_split``'s ``details`` also the probability of the predicted class, the top classes
    and the most confident mistakes (None and () without)."""
    labels: np.ndarray
    predictions: np.ndarray
    losses: np.ndarray
    probabilities: typing.Optional[np.ndarray] = None  # float32 [N]: of the predicted class
    top_k: typing.Optional[np.ndarray] = None  # int32 [N, k]: classes by decreasing logit
    mistakes: tuple = ()  # ``Mistake``s, most probable first (ties: earlier image first)

    @property
    def count(self):
        return len(self.labels)

    @property
    def loss(self):
        return float(self.losses.mean())

    @property
    def accuracy(self):
        return float(np.mean(self.labels == self.predictions))


class SplitDetails(typing.NamedTuple):
    """The tensors ``run_split`` fetches beyond a tower's labels, predictions and losses (see
    ``split_details``)."""
    probabilities: tf.Tensor
    top_k: typing.Optional[tf.Tensor]
    mistakes: int
    mistake_index: typing.Optional[tf.Tensor]
    mistake_pixels: typing.Optional[tf.Tensor]


def split_details(tower, top_k=0, mistakes=0, pixels=None):
    """What ``run_split(..., details=)`` reports beyond labels, predictions and losses, built
    into the tower's graph (before a session finalizes it): each image's probability of its
    predicted class, its ``top_k`` classes (0: none), and the ``mistakes`` most confident
    mistakes of the split. ``pixels``: the tower's input images as RGB 0..255 (e.g.
    ``input_data.unprocess_batch`` of them), to keep the pixels of those mistakes; None (cached
    codes) keeps none. Each batch picks its own most confident mistakes in the graph, so only
    those pixels ever leave it."""
    probability = tf.reduce_max(tf.nn.softmax(tf.cast(tower.logits, tf.float32)), axis=-1)
    ranked = tf.math.top_k(tower.logits, k=top_k).indices if top_k else None
    index = image_pixels = None
    if mistakes:
        wrong = tf.not_equal(tower.predictions, tower.labels)
        count = tf.minimum(mistakes, tf.reduce_sum(tf.cast(wrong, tf.int32)))
        # (top_k keeps the earlier of equal values first; right answers rank below any mistake)
        index = tf.math.top_k(tf.where(wrong, probability, -1.0), k=count).indices
        if pixels is not None:
            image_pixels = tf.cast(tf.round(tf.clip_by_value(tf.gather(pixels, index), 0, 255)),
                                   tf.uint8)
    return SplitDetails(probability, ranked, mistakes, index, image_pixels)


def each_batch(session, fetches):
    """Run ``fetches`` until the input pipeline is at its end; yield each batch's values."""
    while True:
        try:
            yield session.run(fetches)
        except tf.errors.OutOfRangeError:
            return


def most_confident(mistakes, limit):
    """The ``limit`` most probable of ``mistakes``, most probable first, earlier image first
    among equals."""
    return tuple(sorted(mistakes, key=lambda m: (-m.probability, m.index))[:limit])


def run_split(session, iterator, tower, details=None):
    """Run ``tower`` over its whole split once (from ``iterator.initializer`` to the end of the
    data) and return a ``SplitResult`` of every image, the last partial batch included. With
    ``details`` (``split_details`` of the tower) also each image's probability and top classes,
    and the split's most confident mistakes, kept as the batches go by: never more than
    ``details.mistakes`` images' pixels at a time, plus one batch's."""
    session.run(iterator.initializer)
    fetches = {"labels": tower.labels, "predictions": tower.predictions, "losses": tower.losses}
    if details is not None:
        fetches.update((name, value) for name, value in details._asdict().items()
                       if isinstance(value, tf.Tensor))
    columns = {name: [] for name in fetches if not name.startswith("mistake_")}
    mistakes, seen = (), 0
    for batch in each_batch(session, fetches):
        if "mistake_index" in batch:
            pixels = batch.get("mistake_pixels")
            mistakes = most_confident(mistakes + tuple(
                Mistake(seen + int(i), int(batch["labels"][i]), int(batch["predictions"][i]),
                        float(batch["probabilities"][i]), None if pixels is None else pixels[n])
                for n, i in enumerate(batch["mistake_index"])), details.mistakes)
        for name, column in columns.items():
            column.append(batch[name])
        seen += len(batch["labels"])
    if not seen:
        k = fetches["top_k"].shape[-1] if "top_k" in fetches else 0
        empty = {"labels": np.zeros(0, np.int32), "predictions": np.zeros(0, np.int32),
                 "losses": np.zeros(0, np.float32), "probabilities": np.zeros(0, np.float32),
                 "top_k": np.zeros((0, k), np.int32)}
        return SplitResult(**{name: empty[name] for name in columns})
    return SplitResult(**{name: np.concatenate(column) for name, column in columns.items()},
                       mistakes=mistakes)


def classify(config, images, dense_scales=None):
    """``(probabilities float32 [B, classes], classes int64 [B], logits)`` of the network (not
    training: no dropout, batch norm from its moving statistics, so an image gets the same
    answer alone as in any batch) on preprocessed ``images``; applied densely at
    ``dense_scales`` when given (``dense_logits``). Rank classes by the logits: probabilities
    that round to 0 (or 1) no longer tell their classes apart."""
    logits = dense_logits(config, images, dense_scales) if dense_scales else \
        inference(config, images)[0]
    logits = tf.cast(logits, tf.float32)
    return tf.nn.softmax(logits), tf.argmax(logits, axis=-1), logits


def serving_inputs(config, images):
    """uint8 RGB ``images`` [B, H, W, 3] of any size -> what the network reads: resized (the
    ``config``'s "resize", squash when it has none) and preprocessed inside the graph, as the
    input pipeline does for evaluation."""
    return input_data.preprocess_batch(
        input_data.resize(images, config["image_size"], config.get("resize", "squash")),
        nets.get(config["arch"]).preprocess)


def load_checkpoint(session, checkpoint, use_averages=True):
    """Set every global variable of the session's graph from ``checkpoint``: from its moving
    average where the checkpoint holds one and ``use_averages``, from itself otherwise. The
    values go through the variables' own initializers, so no saver is added to the graph (an
    exported graph stays without one). Returns whether moving averages were used."""
    reader = tf1.train.NewCheckpointReader(checkpoint)
    saved = reader.get_variable_to_shape_map()
    averaged = False
    for variable in session.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES):
        name = variable.op.name
        average = f"{name}/ExponentialMovingAverage"
        if use_averages and average in saved:
            name, averaged = average, True
        session.run(variable.initializer,
                    {variable.initializer.inputs[1]: reader.get_tensor(name)})
    return averaged


# ----------------------------------------------------------------------------------------------
# Towers: one copy of the network per device, sharing variables (--num-gpus)
# ----------------------------------------------------------------------------------------------

VARIABLE_OPS = ("VarHandleOp", "VariableV2")


def place(device, variable_device):
    """A device function: variables on ``variable_device``, every other op on ``device``. With
    ``variable_device`` None (a cluster's worker), variables stay where the device function
    around it put them (the parameter servers) and the other ops go to ``device`` of the
    worker the ops are placed on (its job and task, the tower's device)."""
    def device_of(op):
        if op.type in VARIABLE_OPS:
            return op.device if variable_device is None else variable_device
        if variable_device is None:
            return tf.DeviceSpec.from_string(op.device or "").make_merged_spec(
                tf.DeviceSpec.from_string(device)).to_string()
        return device
    return device_of


def towers(config, images, labels, devices, variable_device, **tower_args):
    """``[Tower]``, one per device of ``devices``, each on its equal share of the batch (the
    batch size must divide by their number), sharing the variables, which live on
    ``variable_device``. Towers are named ``tower_0``, ``tower_1`` ...; ``tower_args`` go to
    ``tower``. The input pipeline stays where it is: the batch is read once and split."""
    count = len(devices)
    made = []
    for i, (device, part_images, part_labels) in enumerate(zip(
            devices, tf.split(images, count), tf.split(labels, count))):
        with tf.name_scope(f"tower_{i}"), tf1.device(place(device, variable_device)):
            made.append(tower(config, part_images, part_labels, **tower_args))
    return made


def tower_gradients(optimizer, made, devices, variable_device):
    """Each tower's ``[(gradient, variable)]``, computed on its own device."""
    result = []
    for tower_made, device in zip(made, devices):
        with tf1.device(place(device, variable_device)):
            result.append(optimizer.compute_gradients(
                tower_made.total_loss, var_list=tower_made.var_list,
                colocate_gradients_with_ops=True))
    return result


def average_gradients(tower_grads):
    """The mean over towers of each variable's gradient (towers of equal batches: the gradient
    of the mean loss over the whole batch); a variable no tower reaches keeps None."""
    averaged = []
    for pairs in zip(*tower_grads):
        grads = [g for g, _ in pairs if g is not None]
        averaged.append((tf.add_n(grads) / float(len(grads)) if grads else None, pairs[0][1]))
    return averaged

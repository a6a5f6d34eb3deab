"""Batch-norm statistics re-estimated at the end of a run (train_and_val.py --bn-refresh).

During training each batch-norm layer keeps moving averages of its batches' means and
variances (``tools.BATCH_NORM_DECAY``: a horizon of about 100 steps), which validation,
evaluation and every export read. In a short run the weights move a lot within that horizon,
and augmented batches (the padded crop's black borders) are not the images validation reads,
so the averages do not fit the final network. ``Refresh`` builds the network once more in
training mode on training images read as validation reads them (no augmentation) and, at the
last step, sets every layer's moving mean and variance to those of ``batches`` such batches,
weighted equally (the variance is the pooled one: the mean of the batches' variances plus the
spread of their means), before the last validation and the last checkpoint.
"""

import numpy as np
import tensorflow as tf

import model
import tools

tf1 = tf.compat.v1


class Refresh:
    """The ops that measure the batch-norm statistics of the configured network on ``images``
    (a repeating input of training images) and load their averages into the moving averages."""

    def __init__(self, config, images, batches):
        self.batches = batches
        graph = tf1.get_default_graph()
        before = len(graph.get_collection(tools.BATCH_NORM_STATISTICS))
        with tools.measuring_statistics():
            model.inference(config, images, is_training=True, dropout_keep_prob=1.0)
        layers = graph.get_collection(tools.BATCH_NORM_STATISTICS)[before:]
        self.variables = [(mean, var) for mean, var, _, _ in layers]  # the moving ones
        self.measured = [(mean, var) for _, _, mean, var in layers]  # one batch's
        self.values = [tuple(tf1.placeholder(tf.float32, v.shape) for v in pair)
                       for pair in self.variables]
        self.load = tf.group([variable.assign(value)
                              for pair, values in zip(self.variables, self.values)
                              for variable, value in zip(pair, values)])

    def run(self, session):
        """Measure ``batches`` batches and set the moving averages to their averages."""
        # each layer's sums over the batches of the mean and of the mean square (var + mean^2)
        sums = [(0.0, 0.0)] * len(self.measured)
        for _ in range(self.batches):
            measured = session.run(self.measured)
            sums = [(total + mean, square + var + mean ** 2)
                    for (total, square), (mean, var) in zip(sums, measured)]
        feed = {}
        for (total, square), (mean_value, var_value) in zip(sums, self.values):
            mean = total / self.batches
            feed[mean_value] = mean
            feed[var_value] = np.maximum(square / self.batches - mean ** 2, 0.0)
        session.run(self.load, feed)

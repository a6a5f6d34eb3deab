"""benchmark.py --summaries: what TensorBoard's pictures of the network (filters, histograms,
activation images) add to a training step."""

import json
import statistics
import time

import tensorflow as tf

from benchmarks import measure
from benchmarks.step import bare_step
import nets
from training import summaries

tf1 = tf.compat.v1


def summary_costs(cfg):
    """Seconds of a training step with batch norm, alone and with each kind of summary run in
    the same ``session.run`` (as MonitoredTrainingSession runs them every --summary-every
    steps), measured in turns so that the machine's load falls on all alike; and of the
    activation images a validation makes (a batch forward to a few layers, their maps drawn and
    encoded)."""
    network = nets.get(cfg.arch)
    with bare_step(cfg, batch_norm=True) as (session, step, grads, tower):
        kinds = {"step": [], "filters": [summaries.filters(network)],
                 "histograms": summaries.histograms(grads)}
        maps = {layer: tower.end_points[layer] for layer in summaries.activation_layers(network)}
        times = {kind: [] for kind in kinds}
        for repeat in range(cfg.repeats + 1):  # side by side, in turns (the first: warm-up)
            for kind, extra in kinds.items():
                start = time.perf_counter()
                session.run([step, *extra])
                if repeat:
                    times[kind].append(time.perf_counter() - start)
        seconds = {kind: statistics.median(values) for kind, values in times.items()}
        seconds["activations"] = 1 / measure.median_rate(
            lambda: summaries.activation_summary(session.run(maps)).SerializeToString(), 1,
            cfg.repeats)
    print(f"{cfg.arch} {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, with batch "
          f"norm; medians of {cfg.repeats} after warm-up")
    print(f"  training step                   {seconds['step'] * 1000:8.1f} ms")
    for kind in ("filters", "histograms"):
        extra = seconds[kind] - seconds["step"]
        print(f"  + {kind:29s} {extra * 1000:+8.1f} ms  ({extra / seconds['step']:+.1%} of a "
              f"step; every --summary-every 100 steps: {extra / seconds['step'] / 100:+.2%})")
    print(f"  activation images (a validation) {seconds['activations'] * 1000:7.1f} ms  "
          f"({seconds['activations'] / seconds['step']:.2f} steps, once a validation)")
    print(json.dumps({f"{k}_seconds": round(v, 5) for k, v in seconds.items()}))
    return 0

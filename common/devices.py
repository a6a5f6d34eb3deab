"""Where and how the graph runs: the session configuration for a precision (fp32, bf16 on CPUs
with bfloat16 instructions, fp16 on GPUs) and XLA, and the device of the input pipeline.

    with tf.device(devices.INPUT_DEVICE): ...      # tf.data stays on the CPU
    config = devices.session_config("bf16")         # UsageError where the machine cannot
    tower_devices = devices.towers(2, "gpu")        # UsageError without two GPUs
"""

import numpy as np
import tensorflow as tf

from common.cli import PRECISIONS
from common.cli import UsageError

tf1 = tf.compat.v1

# The input pipeline runs here whatever devices the model uses; TensorFlow places the model on a
# GPU by itself when there is one.
INPUT_DEVICE = "/cpu:0"


def cpu_has_bf16():
    """Whether the CPU computes in bfloat16 natively (AVX512_BF16 or AMX), read on Linux."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def session_config(precision="fp32", xla=False, cpus=None):
    """A ConfigProto for ``precision``: ``bf16`` turns on oneDNN's bfloat16 mixed-precision
    rewrite (CPUs with bfloat16 instructions), ``fp16`` expects a GPU (the float16 rewrite is
    enabled with loss scaling by ``tools.make_optimizer``). ``cpus``: split the CPU into that
    many logical devices, /cpu:0 ... (towers on CPU devices, for tests and measurements).
    Raises UsageError where the machine cannot."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    gpus = tf.config.list_physical_devices("GPU")
    if precision == "bf16" and (gpus or not cpu_has_bf16()):
        raise UsageError("--precision bf16 runs on CPUs with AVX512_BF16 or AMX "
                         + ("(this machine has a GPU: use --precision fp16)" if gpus else
                            "and this CPU has neither: use --precision fp32"))
    if precision == "fp16" and not gpus:
        raise UsageError("--precision fp16 needs a GPU and TensorFlow sees none: use "
                         f"--precision {'bf16' if cpu_has_bf16() else 'fp32'}")
    config = tf1.ConfigProto(allow_soft_placement=True)
    if cpus:
        config.device_count["CPU"] = cpus
    config.gpu_options.allow_growth = True
    from tensorflow.core.protobuf import rewriter_config_pb2
    rewrites = config.graph_options.rewrite_options
    if precision == "bf16":
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == "fp16":
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf1.OptimizerOptions.ON_1
    return config


def available_memory():
    """Bytes of memory the model may take on this machine: Linux's MemAvailable and free swap,
    within the container's limit (cgroup v2 memory.max) when there is one; None when that is
    not known here or the model runs on a GPU (TensorFlow then says itself)."""
    if tf.config.list_physical_devices("GPU"):
        return None
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        free = (int(fields["MemAvailable"].split()[0])
                + int(fields.get("SwapFree", "0 kB").split()[0])) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def towers(count, kind="gpu"):
    """The devices of ``count`` towers: /gpu:0 ... (UsageError when the machine has fewer GPUs),
    or ``kind="cpu"``: /cpu:0 ..., logical devices that ``session_config(cpus=count)`` makes."""
    if kind == "gpu":
        found = len(tf.config.list_physical_devices("GPU"))
        if count > found:
            raise UsageError(f"--num-gpus {count}: TensorFlow sees "
                             f"{found or 'no'} GPU{'' if found == 1 else 's'} on this machine; "
                             + (f"ask for at most {found}, " if found else "")
                             + "or add --tower-device cpu to run the towers on CPU devices")
    return [f"/{kind}:{i}" for i in range(count)]


def check_fits(var_list, images, end_points, batch_size, what):
    """UsageError, before anything runs, when the training step cannot fit in the machine's
    memory: the variables (with their optimizer slots) and their gradients, and per image the
    input batches in flight and every layer's output, kept for the backward pass and its
    gradient. A rough floor of what TensorFlow needs, so a run that passes may still not fit;
    one that fails would be killed by the machine (or fail in TensorFlow) partway. ``var_list``:
    the trained variables; ``images``: the input batch; ``end_points``: every layer's output;
    ``what``: the network and batch, as the message names them."""
    available = available_memory()
    if available is None:
        return

    def size(shape):  # (a dimension not known when the graph is built counts as 1)
        return int(np.prod([d if d is not None else 1 for d in shape.as_list()] or [1]))

    variables = sum(size(v.shape) for v in tf1.global_variables())
    trained = sum(size(v.shape) for v in var_list)
    fixed = 4 * (variables + trained)
    per_image = 4 * (3 * size(images.shape[1:]) + 2 * sum(
        size(t.shape[1:]) for t in end_points.values()))
    need = fixed + per_image * batch_size
    if need <= available:
        return
    gib = 1 << 30
    fits = (available - fixed) // per_image
    advice = (f"--batch-size {fits} or less would" if fits >= 1 else
              "no batch size would: the variables alone take " f"{fixed / gib:.1f} GiB; a "
              "smaller network (--fc-size, --image-size, --arch) might")
    raise UsageError(f"{what} needs at least {need / gib:.1f} GiB of memory and this machine "
                     f"has {available / gib:.1f} GiB free: {advice}")

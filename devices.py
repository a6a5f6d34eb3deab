"""Where and how the graph runs: the session configuration for a precision (fp32, bf16 on CPUs
with bfloat16 instructions, fp16 on GPUs) and XLA, and the device of the input pipeline.

    with tf.device(devices.INPUT_DEVICE): ...      # tf.data stays on the CPU
    config = devices.session_config("bf16")         # UsageError where the machine cannot
"""

import tensorflow as tf

from cli import PRECISIONS, UsageError

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


def session_config(precision="fp32", xla=False):
    """A ConfigProto for ``precision``: ``bf16`` turns on oneDNN's bfloat16 mixed-precision
    rewrite (CPUs with bfloat16 instructions), ``fp16`` expects a GPU (the float16 rewrite is
    enabled with loss scaling by ``tools.make_optimizer``). Raises UsageError where the machine
    cannot."""
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

"""Make the flat project modules importable from the tests, and keep TensorFlow quiet."""

import os
import sys

from helpers import ENV, ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ENV["TF_CPP_MIN_LOG_LEVEL"])
# Every test runs on the CPU, in-process and in the programs it starts, so results compare exactly
# (a GPU's TF32 matmuls would not meet the tests' tolerances).
os.environ["CUDA_VISIBLE_DEVICES"] = ENV["CUDA_VISIBLE_DEVICES"]
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

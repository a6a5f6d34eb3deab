"""Make the flat project modules importable from the tests, and keep TensorFlow quiet."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every test runs on the CPU, in-process and in the programs it starts, so results compare exactly
# (a GPU's TF32 matmuls would not meet the tests' tolerances).
os.environ["CUDA_VISIBLE_DEVICES"] = ""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

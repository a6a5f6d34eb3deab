"""What the tests share: the project's root, running a program as a user does (in this process
through its ``main(argv)``, or as a process where a process is the point), and small
CIFAR-10-format data sets written here (1 label byte + 3072 pixel bytes a record: the red plane,
then green, then blue, each 32x32 row-major)."""

import concurrent.futures
import contextlib
import functools
import http.server
import importlib
import io
import multiprocessing
import multiprocessing.forkserver
import os
import re
import runpy
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
PALETTE = np.random.default_rng(1234).integers(30, 225, (10, 3))  # each class's colour

# Programs run on the CPU, quietly, like the tests themselves (conftest.py).
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def command(program, *args):
    return [sys.executable, os.path.join(ROOT, program), *map(str, args)]


def call(program, *args, cwd=ROOT):
    """Run a program of the project to the end in this process, through its ``main(argv)``, as
    its ``__main__`` would, in ``cwd``: a CompletedProcess with its exit code and what it
    printed (an exception it did not handle is printed as Python would, with exit code 1)."""
    module = importlib.import_module(os.path.splitext(program)[0])
    out, err = io.StringIO(), io.StringIO()
    here, argv = os.getcwd(), sys.argv
    os.chdir(cwd)
    sys.argv = [os.path.join(ROOT, program), *map(str, args)]  # argparse names the program
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main([str(a) for a in args])
            except SystemExit as e:  # argparse's --help and its errors
                code = e.code
            except Exception:  # noqa: BLE001 (what a user would see: a traceback)
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        sys.argv = argv
    code = 0 if code is None else code if isinstance(code, int) else 1
    return subprocess.CompletedProcess([program, *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


def run(program, *args, cwd=ROOT, timeout=300):
    """Run a program of the project to the end as a process of its own (where a process is the
    point: signals, locks, a clean Python); the CompletedProcess with its text output."""
    return subprocess.run(command(program, *args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **ENV})


def start(program, *args, cwd=ROOT):
    """Start a program of the project in the background as a process of its own, as Popen would
    (``pid``, ``stdout`` to read lines from, ``poll``, ``kill``, ``send_signal``,
    ``communicate``, ``returncode``), forked from a Python that has already imported TensorFlow
    and the programs (a fresh start costs seconds of imports, most of a short run; a fork costs
    milliseconds). The child runs the program's file as ``__main__`` with its own stdout and
    stderr, signal handlers and working directory."""
    return Started(program, args, cwd)


def start_afresh(program, *args, cwd=ROOT):
    """Start a program in a Python of its own from the beginning (where its start-up is the
    point: Ctrl-C while TensorFlow loads); the Popen."""
    return subprocess.Popen(command(program, *args), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV})


def _zygote():
    """The multiprocessing context whose server process forks every started program: started
    once per test process, it imports TensorFlow and the programs first."""
    global _ZYGOTE
    if _ZYGOTE is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tensorflow", "helpers", "tiny_net", *PROGRAMS])
        # (Python 3.11's server does not take the parent's sys.path: it gets the tests' and the
        # project's folders through PYTHONPATH, for itself only)
        here = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.dirname(__file__)])
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            if here is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = here
        _ZYGOTE = context
    return _ZYGOTE


_ZYGOTE = None
PROGRAMS = ("train_and_val", "evaluate", "extract_codes")


def _run_program(path, argv, cwd, out, err_path):
    """In the forked child: stdout to the pipe, stderr to a file, then the program as its
    ``__main__``; its exit code is the process's."""
    os.dup2(out.fileno(), 1)
    out.close()
    with open(err_path, "wb") as err:
        os.dup2(err.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.update(ENV)
    register_networks()  # (as in the tests' process)
    os.chdir(cwd)
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class Started:
    """A program running in a forked process (see ``start``)."""

    def __init__(self, program, args, cwd):
        context = _zygote()
        read, write = context.Pipe(duplex=False)
        fd, self._err_path = tempfile.mkstemp(prefix="stderr-", suffix=".txt")
        os.close(fd)
        self._process = context.Process(
            target=_run_program, daemon=False,
            args=(os.path.join(ROOT, program), [str(a) for a in args], str(cwd), write,
                  self._err_path))
        self._process.start()
        write.close()
        self.pid = self._process.pid
        self.stdout = open(os.dup(read.fileno()), "r", encoding="utf-8", errors="replace")
        read.close()
        self.returncode = None

    def poll(self):
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def send_signal(self, number):
        if self.poll() is None:
            os.kill(self.pid, number)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.pid, timeout)
        return self.poll()

    def communicate(self, timeout=None):
        """(stdout, stderr) to the end, once the process has ended."""
        reader = concurrent.futures.ThreadPoolExecutor(1)
        rest = reader.submit(self.stdout.read)
        try:
            out = rest.result(timeout)
        except concurrent.futures.TimeoutError:
            raise subprocess.TimeoutExpired(self.pid, timeout) from None
        finally:
            reader.shutdown(wait=False)
        self.wait(timeout)
        self.stdout.close()
        with open(self._err_path, encoding="utf-8", errors="replace") as err:
            text = err.read()
        os.remove(self._err_path)
        return out, text


def own_lines(result, program):
    """The program's own lines on stderr (TensorFlow's C++ start-up lines go there too)."""
    return [line for line in result.stderr.splitlines() if line.startswith(program)]


def records(images, labels):
    """Bytes of CIFAR records from HWC RGB uint8 images and their labels."""
    images = np.asarray(images, np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # CHW, flattened
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()


def learnable_images(count, rng):
    """Images whose class shows in their colour and a bright quadrant, plus noise: a network
    learns them within a few dozen steps."""
    labels = rng.integers(0, 10, count)
    images = rng.normal(0, 25, (count, 32, 32, 3)) + PALETTE[labels][:, None, None, :]
    for i, label in enumerate(labels):
        row, col = divmod(label % 4, 2)
        images[i, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] += 60 if label < 4 else -60
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_dataset(data_dir, per_file=100, test_count=203, seed=0):
    """A learnable data set in DATA_DIR/cifar-10-batches-bin; returns the batches folder."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(data_dir, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    for name in TRAIN_FILES:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(records(*learnable_images(per_file, rng)))
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(records(*learnable_images(test_count, rng)))
    return folder


# ----------------------------------------------------------------------------------------------
# Training runs: VGG11 on the workspace that conftest.py's ``workspace`` fixture writes
# ----------------------------------------------------------------------------------------------

COMMON = ["--arch", "vgg11", "--batch-size", "16", "--val-size", "100", "--log-every", "10",
          "--warmup-steps", "5", "--fc-size", "0"]  # fc8 on pool5: small, quick checkpoints


def train_args(root, tmp_path, *flags):
    """A VGG11 run on the workspace's data and weights, logging under TMP_PATH/logs; later
    flags override earlier ones."""
    return [*COMMON, "--pretrained", root / "vgg11.npy", "--data-dir", root / "data",
            "--log-dir", tmp_path / "logs", *flags]


# The tests of a program's behaviour (resume, signals, locks, damaged files, progress lines)
# train tests/tiny_net.py, registered in every test process (conftest.py) and in the programs
# ``start`` forks, on the same workspace: a third of VGG11's time a run. The tests of VGG
# itself, of pretrained weights and of codes train VGG11.
TINY = ["--arch", "tinynet", "--pretrained", "none", "--batch-size", "16", "--val-size", "100",
        "--log-every", "10", "--warmup-steps", "5", "--learning-rate", "0.05"]


def tiny_args(root, tmp_path, *flags):
    """A tinynet run (16x16) on the workspace's data, logging under TMP_PATH/logs; later flags
    override earlier ones."""
    return [*TINY, "--data-dir", root / "data", "--log-dir", tmp_path / "logs", *flags]


def tiny_run(root, where, *flags):
    """A short tinynet run on the workspace ROOT's data (``tiny_args``), logging under
    WHERE/logs, run in WHERE and checked to succeed; its log dir."""
    result = call("train_and_val.py", *tiny_args(root, where, *flags), cwd=where)
    assert result.returncode == 0, result.stderr[-3000:]
    return where / "logs"


def register_networks():
    """The tests' own networks in the network table (every program then takes --arch tinynet)."""
    import nets
    import tiny_net

    nets.register(tiny_net.NETWORK)


def he_weights(arch, seed=0):
    """Weights for every layer of ``arch`` at 32x32 with 10 classes, He-initialized, fc7
    scaled down so that inputs in the hundreds (VGG's preprocessing) give logits near 1."""
    import tensorflow as tf

    import vgg16
    from weights import graph_layers

    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        vgg16.build(tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3]), 10, arch)
        shapes = {layer: [v.shape.as_list() for v in pair]
                  for layer, pair in graph_layers().items()}
    weights = {layer: (rng.normal(0, np.sqrt(2.0 / np.prod(w[:-1])), w).astype(np.float32),
                       rng.normal(0, 0.01, b).astype(np.float32))
               for layer, (w, b) in shapes.items()}
    weights["fc7"] = (weights["fc7"][0] / 100, weights["fc7"][1])
    return weights


def idx_bytes(array, magic=None, count=None, shape=None):
    """The bytes of an IDX file (MNIST's format) of uint8 images [N, 28, 28] or labels [N];
    the header's magic number, count and image shape may be given wrong."""
    array = np.asarray(array, np.uint8)
    images = array.ndim == 3
    magic = magic if magic is not None else (2051 if images else 2049)
    header = [magic, len(array) if count is None else count]
    if images:
        header += list(shape or array.shape[1:])
    return struct.pack(f">{len(header)}I", *header) + array.tobytes()


def write_folder(root, classes, per_class=12, seed=0, sizes=((8, 8),)):
    """ROOT/<class>/<n>.png: images of one colour a class, plus noise; image n is
    ``sizes[n % len(sizes)]`` (height, width) pixels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            colour = np.array([80 * k % 256, 255 - 70 * k % 256, 40 + 60 * k % 200])
            shape = (*sizes[n % len(sizes)], 3)
            pixels = np.clip(colour + rng.normal(0, 10, shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{n}.png")


def write_png(path, size=(8, 8), seed=0):
    """A PNG of noise at ``path``; returns the path."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def randomize_keras(model, rng):
    """He-normal kernels and non-zero biases in every layer of a Keras model, so every weight
    matters to the logits; ``{layer name: [kernel, bias]}`` (float32) of the values set."""
    layers = {}
    for layer in model.layers:
        if layer.weights:
            kernel, bias = (tuple(w.shape) for w in layer.weights)
            scale = np.float32(np.sqrt(2.0 / np.prod(kernel[:-1])))
            values = [rng.standard_normal(kernel, np.float32) * scale,
                      rng.standard_normal(bias, np.float32) * np.float32(0.1)]
            layer.set_weights(values)
            layers[layer.name] = values
    return layers


def numpy_test_images(data_dir):
    """``(labels, images)`` of DATA_DIR/cifar-10-batches-bin/test_batch.bin decoded and
    VGG-preprocessed here with NumPy (BGR minus the ImageNet mean), not by input_data."""
    raw = np.fromfile(os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin"), np.uint8)
    raw = raw.reshape(-1, 3073)
    rgb = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32)
    return raw[:, 0].astype(np.int64), rgb[..., ::-1] - np.array([103.939, 116.779, 123.68],
                                                                  np.float32)


def python_json(code):
    """Run ``code`` (which prints one JSON document last) in this process, with what it prints
    captured, and return that document: many cases of a program's own functions at once."""
    import json
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<python_json>", "exec"), {"__name__": "python_json"})
    return json.loads(out.getvalue().strip().splitlines()[-1])


def one_line_error(result, program="train_and_val.py", code=2):
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = own_lines(result, program)
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def steps(folder):
    """Steps of the complete checkpoints in ``folder``."""
    return sorted(int(m.group(1)) for m in (re.fullmatch(r"model\.ckpt-(\d+)\.index", n)
                                            for n in os.listdir(folder)) if m)


def resumed_step(stdout):
    match = re.search(r"Resuming from \S+ \(step (\d+)\)", stdout)
    return int(match.group(1)) if match else None


class Server:
    """A local HTTP server over a folder, counting the requests."""

    def __init__(self, folder):
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

"""Pretrained weights files: read them safely, load them into a graph, write them from Keras.

The public ``vgg16.npy`` layout is a 0-d object array holding ``{layer: [weights, biases]}``,
pickled by Python 2. ``read_weights`` unpickles it with an allow-list of NumPy's array-rebuilding
callables and nothing else, so a hostile file is refused before any of it runs; ``load_pretrained``
copies it into the variables named ``LAYER/weights`` and ``LAYER/biases``; ``convert`` writes the
same layout from Keras's copy of the ImageNet weights (convert_weights.py is its command line).
"""

import os
import pickle
import re
import tempfile

import numpy as np
import tensorflow as tf

from common.cli import UserError

tf1 = tf.compat.v1


class WeightsFileError(UserError, ValueError):
    """A weights file that cannot be used; the message names the file and what to do."""


class ConversionError(UserError, RuntimeError):
    """Keras's weights could not be fetched or written; the message says what to do instead."""


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def _numpy_callables():
    """The only callables a weights pickle may use, under every name NumPy has pickled them."""
    try:
        from numpy._core import multiarray
        from numpy._core import numeric
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
        from numpy.core import numeric
    import _codecs
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               # Python 3 bytes under pickle protocol 2.
               ("_codecs", "encode"): _codecs.encode}
    for module in ("numpy.core", "numpy._core"):
        allowed[(module + ".multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(module + ".numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


_ALLOWED = _numpy_callables()


class RefusedPickle(pickle.UnpicklingError):
    """A pickle that asks for something outside the allow-list (raised before it runs)."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f"it asks for {module}.{name}, which is not a NumPy array") from None

    def persistent_load(self, pid):
        raise RefusedPickle("it uses persistent ids")


def unpickle_arrays(file):
    """Unpickle one object from the open binary FILE (at the pickle's start) allowing only NumPy
    arrays and what pickle builds without calling anything (dicts, lists, tuples, strings,
    numbers); Python 2 strings are read as latin-1. Anything else raises ``RefusedPickle`` (a
    ``pickle.UnpicklingError``) before any of it runs; a corrupt stream raises what pickle
    raises. The weights reader and the GTSRB pickles (input_data.py) both read through here."""
    return _ArraysOnlyUnpickler(file, encoding="latin1").load()


def _as_pair(layer, entry, path):
    if isinstance(entry, dict):
        entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
        if set(entry) != {"weights", "biases"}:
            raise WeightsFileError(f"{path}: layer {layer!r} has keys {sorted(entry)}, "
                                   "expected 'weights' and 'biases'")
        entry = [entry["weights"], entry["biases"]]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(
            isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in entry):
        raise WeightsFileError(f"{path}: layer {layer!r} is not a [weights, biases] pair of "
                               "float arrays; this is not a VGG weights file")
    weights, biases = (np.asarray(a, np.float32) for a in entry)
    if biases.ndim != 1 or weights.shape[-1] != biases.shape[0]:
        raise WeightsFileError(f"{path}: layer {layer!r} has weights {weights.shape} and biases "
                               f"{biases.shape}, which do not belong together")
    return weights, biases


def read_weights(path):
    """Read a VGG weights ``.npy`` into ``{layer: (weights, biases)}`` of float32 arrays.

    Accepts the public Python 2 file (a 0-d object array holding ``{layer: [weights, biases]}``,
    pickle protocol 2, ``str`` keys), the same written by Python 3's ``np.save``, and entries that
    are ``{"weights": ..., "biases": ...}``. The pickle may only rebuild NumPy arrays: a file that
    asks for anything else is refused before any of it runs. Raises ``WeightsFileError``.
    """
    try:
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            except ValueError as e:
                raise WeightsFileError(f"{path}: not a .npy file ({e})") from None
            if dtype != np.dtype(object) or shape not in ((), (1,)):
                raise WeightsFileError(f"{path}: holds a {dtype} array of shape {shape}, not a "
                                       "dict of layers; this is not a VGG weights file")
            try:
                array = unpickle_arrays(f)
            except pickle.UnpicklingError as e:
                raise WeightsFileError(f"{path}: refused: {e}. A weights file holds only NumPy "
                                       "arrays; nothing from it was run") from None
            except (EOFError, ValueError, TypeError, AttributeError, IndexError,
                    KeyError) as e:
                raise WeightsFileError(f"{path}: truncated or corrupt ({type(e).__name__}: {e}); "
                                       "download or convert it again") from None
    except OSError as e:
        raise WeightsFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    content = array.item() if isinstance(array, np.ndarray) and array.size == 1 else array
    if not isinstance(content, dict) or not content:
        raise WeightsFileError(f"{path}: holds {type(content).__name__}, not a dict of layers; "
                               "this is not a VGG weights file")
    layers = {}
    for layer, entry in content.items():
        layer = layer.decode("latin1") if isinstance(layer, bytes) else str(layer)
        layers[layer] = _as_pair(layer, entry, path)
    return layers


# ----------------------------------------------------------------------------------------------
# Loading into a graph
# ----------------------------------------------------------------------------------------------

def graph_layers(graph=None):
    """``{layer: (weights_variable, biases_variable)}`` for the layers in the graph: every
    top-level scope that owns a ``weights`` and a ``biases`` variable."""
    graph = graph or tf1.get_default_graph()
    found = {}
    for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES):
        scope, _, leaf = v.op.name.rpartition("/")
        if leaf in ("weights", "biases") and "/" not in scope:
            found.setdefault(scope, {})[leaf] = v
    return {layer: (vs["weights"], vs["biases"]) for layer, vs in found.items()
            if len(vs) == 2}


def _layer_order(name):
    """Layer names in natural order, digits as numbers: conv1 < conv1_1 < conv1_2 < conv2_1 <
    ... < conv5_3 < fc6 < fc7 < fc8 (the order of the networks' graphs; any names sort)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def check_finite(layers, path, skip=()):
    """WeightsFileError naming every layer (outside ``skip``) of ``read_weights``' result that
    holds NaN or infinity: such weights would only train to NaN."""
    bad = [layer for layer, arrays in sorted(layers.items(), key=lambda item: _layer_order(
        item[0])) if layer not in skip and not all(np.isfinite(a).all() for a in arrays)]
    if bad:
        several = len(bad) > 1
        raise WeightsFileError(f"{path}: layer{'s' if several else ''} {', '.join(bad)} "
                               f"hold{'' if several else 's'} NaN or infinite values; get the "
                               "file again, or leave th" + ("ose layers" if several else "at layer")
                               + " out with --skip")
    return layers


def fold_positions(weights, in_size):
    """Weights of a fully connected layer that read a HxWxC map (rows in height, width, channel
    order, as the public fc6's 7x7x512), summed over the HxW positions so that they read a
    1x1xC map: on a C-vector f they give what the original gives on f copied to every position.
    None when the rows are not a whole number of ``in_size`` blocks."""
    rows, out = weights.shape
    if rows % in_size or rows == in_size:
        return None
    return weights.reshape(rows // in_size, in_size, out).sum(axis=0)


def set_variables(session, pairs):
    """Set each ``(variable, value)`` of ``pairs`` through the variable's own initializer, all in
    one session run: no constant or assign op is added to the graph, so a finalized graph works
    too."""
    pairs = list(pairs)
    if pairs:
        session.run([v.initializer for v, _ in pairs],
                    {v.initializer.inputs[1]: value for v, value in pairs})


def print_report(heading, report):
    """``heading``, then a line a layer of a ``[(layer, status, detail)]`` load report."""
    print(heading)
    for layer, status, detail in report:
        print(f"  {layer:8s} {status}{': ' + detail if detail else ''}")


def load_pretrained(path, session, skip=("fc8",), strict=False, verbose=True, layers=None,
                    fold=()):
    """Copy a weights file into the layers of the session's graph (``graph_layers``).

    The values are fed into the variables' own initializers, so no constant is added to the graph
    (and a finalized graph works). Returns ``[(layer, status, detail)]``, one per layer of the file
    or the graph, with status ``loaded``, ``skipped``, ``shape mismatch``, ``not in file`` or
    ``not in graph``, and prints one line each unless ``verbose`` is False. A shape mismatch
    leaves that layer at its initial value; with ``strict=True`` it raises ``WeightsFileError``.
    ``layers``: the file's contents when they were read already (``read_weights(path)``).
    ``fold``: layers whose file weights read a larger map than the graph's 1x1 one (fc6 of the
    public file at 32x32 inputs) and are loaded summed over its positions (``fold_positions``).
    """
    weights = read_weights(path) if layers is None else layers
    variables = graph_layers(session.graph)
    skip = skip if isinstance(skip, dict) else dict.fromkeys(skip or (), "asked")  # layer: why
    report, values = [], []  # values: (variable, value) to set, in one run
    for layer in sorted(set(weights) | set(variables), key=_layer_order):
        if layer in skip:
            report.append((layer, "skipped", skip[layer]))
        elif layer not in variables:
            report.append((layer, "not in graph", ""))
        elif layer not in weights:
            report.append((layer, "not in file", "left at its initial value"))
        else:
            pairs = list(zip(variables[layer], weights[layer]))
            shapes = [(tuple(v.shape.as_list()), a.shape) for v, a in pairs]
            folded = None
            if layer in fold and len(shapes[0][0]) == 2 and shapes[1][0] == shapes[1][1]:
                folded = fold_positions(pairs[0][1], shapes[0][0][0])
            if folded is not None and folded.shape == shapes[0][0]:
                values += [(pairs[0][0], folded), pairs[1]]
                report.append((layer, "loaded", f"weights {shapes[0][1]} summed over "
                               f"{shapes[0][1][0] // shapes[0][0][0]} positions to "
                               f"{shapes[0][0]}"))
            elif any(g != f for g, f in shapes):
                detail = ", ".join(f"{n} file {f} vs graph {g}"
                                   for n, (g, f) in zip(("weights", "biases"), shapes) if g != f)
                report.append((layer, "shape mismatch", detail + "; left at its initial value"))
            else:
                values += pairs
                report.append((layer, "loaded", f"weights {shapes[0][1]}"))
    set_variables(session, values)
    if verbose:
        print_report(f"Pretrained weights from {path}:", report)
    mismatched = [layer for layer, status, _ in report if status == "shape mismatch"]
    if strict and mismatched:
        raise WeightsFileError(f"{path}: shapes do not fit the graph for {', '.join(mismatched)} "
                               "(pass them in skip, or use a matching image size)")
    return report


# ----------------------------------------------------------------------------------------------
# Writing the layout from Keras's ImageNet weights
# ----------------------------------------------------------------------------------------------

# The 1000 ImageNet classes in the order of the public fc8's outputs (and Keras's): one line each,
# "WordNet id, space, name" (the first n01440764 tench, the last n15075141 toilet tissue).
IMAGENET_CLASSES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "imagenet_classes.txt")


def imagenet_classes():
    """``[(wordnet_id, name)]`` of the 1000 ImageNet classes, in fc8's order."""
    with open(IMAGENET_CLASSES, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split(" ", 1)) for line in f if line.strip()]


_KERAS_TO_PUBLIC = {"fc1": "fc6", "fc2": "fc7", "predictions": "fc8"}


def public_name(keras_name):
    """The public weights-file name of a Keras VGG layer, or None for layers without weights:
    ``block{b}_conv{i}`` -> ``conv{b}_{i}``, ``fc1``/``fc2``/``predictions`` -> fc6/fc7/fc8."""
    match = re.fullmatch(r"block(\d)_conv(\d)", keras_name)
    if match:
        return f"conv{match.group(1)}_{match.group(2)}"
    return _KERAS_TO_PUBLIC.get(keras_name)


def keras_layers(model):
    """``{public_name: [weights, biases]}`` (float32) from a Keras VGG16/VGG19 model."""
    layers = {}
    for layer in model.layers:
        name = public_name(layer.name)
        if name is not None:
            kernel, bias = layer.get_weights()
            layers[name] = [np.asarray(kernel, np.float32), np.asarray(bias, np.float32)]
    return layers


def write_weights(path, layers):
    """Save ``{layer: [weights, biases]}`` as a 0-d object array in an .npy, like the public
    file. Written to a temporary file first, so an interrupted run leaves nothing half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    array = np.empty((), dtype=object)
    array[()] = layers
    fd, tmp = tempfile.mkstemp(suffix=".npy.part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # (mkstemp's 0600 would keep the file from others)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def keras_model(application, include_top=True, keras_weights=None):
    """Keras's ImageNet model ``keras.applications.<application>``, from ``keras_weights`` (a
    file) or downloaded by Keras."""
    import keras  # Imported here: building the graph programs does not need Keras.

    constructor = getattr(keras.applications, application)
    try:
        return constructor(weights=keras_weights or "imagenet", include_top=include_top,
                           classifier_activation=None)
    except Exception as e:  # Keras reports a failed download as a bare Exception.
        if keras_weights:
            raise ConversionError(f"could not read {application} weights from {keras_weights}: "
                                  f"{e}") from None
        raise ConversionError(f"could not download Keras's {application} ImageNet weights ({e}); "
                              "on a machine with a network, fetch them and pass --keras-weights "
                              "FILE, or put the public weights file in place yourself") from None


def convert(network, out, include_top=True, keras_weights=None):
    """Write the ImageNet weights of ``network`` (an entry of ``nets.NETWORKS``) to ``out`` in the
    public layout; returns the layers. Never overwrites ``out``."""
    if not network.keras_application:
        raise ConversionError(f"Keras has no ImageNet weights for {network.name}")
    if os.path.exists(out):
        raise ConversionError(f"{out} exists already; it is left as it is "
                              "(remove it yourself or choose another --out)")
    layers = keras_layers(keras_model(network.keras_application, include_top, keras_weights))
    if not set(layers) <= set(network.layers) or not layers:
        raise ConversionError(f"Keras's {network.keras_application} layers do not map onto "
                              f"{network.name}'s ({', '.join(network.layers)}); nothing written")
    write_weights(out, layers)
    return layers

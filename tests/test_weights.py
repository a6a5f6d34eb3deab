"""Reading the public weights layout safely, and loading it into the graph."""

import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

import py2_npy
import tools
import vgg16
import weights

tf1 = tf.compat.v1

# The order of the keys in the real vgg16.npy (shared/formats/vgg16-npy-layout.md).
REAL_KEY_ORDER = ["conv5_1", "fc6", "conv5_3", "conv5_2", "fc8", "fc7", "conv4_1", "conv4_2",
                  "conv4_3", "conv3_3", "conv3_2", "conv3_1", "conv1_1", "conv1_2", "conv2_2",
                  "conv2_1"]


def random_layers(side=32, num_classes=1000, seed=0, fc6_in=None, fc_size=vgg16.FC_SIZE):
    """Random weights with the shapes of VGG16 at ``side`` (fc6 input overridable)."""
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        vgg16.build(tf1.placeholder(tf.float32, [None, side, side, 3]), num_classes,
                    fc_size=fc_size)
        shapes = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
    layers = {}
    for layer in vgg16.layer_names("vgg16"):
        w_shape, b_shape = shapes[f"{layer}/weights"], shapes[f"{layer}/biases"]
        if layer == "fc6" and fc6_in:
            w_shape = [fc6_in, w_shape[1]]
        layers[layer] = (rng.standard_normal(w_shape, np.float32),
                         rng.standard_normal(b_shape, np.float32))
    return layers


@pytest.fixture(scope="module")
def layers():
    return random_layers()


@pytest.fixture(scope="module")
def py2_file(layers, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("weights") / "vgg16.npy")
    py2_npy.write(path, layers, REAL_KEY_ORDER)
    return path


def session_with_vgg16(num_classes=1000, fc_size=vgg16.FC_SIZE):
    graph = tf.Graph()
    with graph.as_default():
        vgg16.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), num_classes, fc_size=fc_size)
        init = tf1.global_variables_initializer()
    sess = tf1.Session(graph=graph)
    sess.run(init)
    return sess


def values(sess):
    return {layer: sess.run(pair) for layer, pair in weights.graph_layers(sess.graph).items()}


def test_python2_file_reads_equal_to_the_arrays_it_was_written_from(layers, py2_file):
    with open(py2_file, "rb") as f:
        head = f.read(10)
    assert head == b"\x93NUMPY\x01\x00" + bytes([70, 0])
    read = tools.read_weights(py2_file)
    assert list(read) == REAL_KEY_ORDER
    for layer, (kernel, biases) in layers.items():
        np.testing.assert_array_equal(read[layer][0], kernel)
        np.testing.assert_array_equal(read[layer][1], biases)
        assert read[layer][0].dtype == np.float32


def test_load_pretrained_copies_every_layer_but_the_skipped_one(layers, py2_file):
    with session_with_vgg16() as sess:
        before = values(sess)
        ops_before = len(sess.graph.get_operations())
        sess.graph.finalize()  # loading must add nothing to the graph
        report = tools.load_pretrained(py2_file, sess, skip=("fc8",), verbose=False)
        after = values(sess)
        assert len(sess.graph.get_operations()) == ops_before
    statuses = {layer: status for layer, status, _ in report}
    assert statuses == {**{layer: "loaded" for layer in vgg16.layer_names("vgg16")},
                        "fc8": "skipped"}
    for layer in vgg16.layer_names("vgg16"):
        if layer == "fc8":
            np.testing.assert_array_equal(after[layer][0], before[layer][0])
            assert not np.array_equal(after[layer][0], layers[layer][0][:, :1000])
        else:
            np.testing.assert_array_equal(after[layer][0], layers[layer][0])
            np.testing.assert_array_equal(after[layer][1], layers[layer][1])


def test_report_names_mismatches_and_missing_layers(tmp_path, capsys):
    layers = random_layers(fc6_in=1024, seed=1)
    del layers["conv3_2"]
    layers["fc9"] = layers["fc8"]
    path = str(tmp_path / "w.npy")
    py2_npy.write(path, layers)
    with session_with_vgg16(num_classes=10) as sess:
        before = values(sess)
        report = tools.load_pretrained(path, sess)
        after = values(sess)
        with pytest.raises(tools.WeightsFileError, match="fc6"):
            tools.load_pretrained(path, sess, skip=(), strict=True, verbose=False)
    statuses = {layer: (status, detail) for layer, status, detail in report}
    assert statuses["fc6"][0] == "shape mismatch"
    assert "file (1024, 4096) vs graph (512, 4096)" in statuses["fc6"][1]
    assert statuses["conv3_2"][0] == "not in file"
    assert statuses["fc9"][0] == "not in graph"
    assert statuses["fc8"][0] == "skipped"
    assert statuses["fc7"][0] == "loaded"
    np.testing.assert_array_equal(after["fc6"][0], before["fc6"][0])
    np.testing.assert_array_equal(after["conv3_2"][0], before["conv3_2"][0])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Pretrained weights from {path}:"
    assert len(printed) == 1 + len(report)
    assert any(line.split()[:3] == ["fc6", "shape", "mismatch:"] for line in printed)


def test_python3_np_save_and_dict_entries_are_accepted(tmp_path):
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((3, 3, 3, 64), np.float32), rng.standard_normal(64, np.float32)
    path = str(tmp_path / "py3.npy")
    np.save(path, {"conv1_1": {"weights": w, "biases": b}, "conv1_2": [w[..., :3], b[:3]]},
            allow_pickle=True)
    read = tools.read_weights(path)
    np.testing.assert_array_equal(read["conv1_1"][0], w)
    np.testing.assert_array_equal(read["conv1_1"][1], b)
    np.testing.assert_array_equal(read["conv1_2"][1], b[:3])


class _RunsCode:
    """Unpickles as ``call(*args)``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def npy_with_pickle(path, obj, protocol=2):
    with open(path, "wb") as f:
        f.write(py2_npy.npy_bytes(pickle.dumps(obj, protocol=protocol)))


@pytest.mark.parametrize("where", ["top", "inside a layer"])
def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = _RunsCode(os.system, f"touch {marker}")
    if where == "top":
        obj = payload
    else:
        obj = np.empty((), dtype=object)
        obj[()] = {"conv1_1": [np.zeros((3, 3, 3, 64), np.float32), payload]}
    path = tmp_path / "evil.npy"
    npy_with_pickle(path, obj)
    with pytest.raises(tools.WeightsFileError) as info:
        tools.read_weights(str(path))
    message = str(info.value)
    assert str(path) in message and "refused" in message and "system" in message
    assert not marker.exists()
    # the payload is real: NumPy's own unpickling runs it
    np.load(path, allow_pickle=True, encoding="latin1")
    assert marker.exists()


def test_pickle_that_writes_a_file_is_refused(tmp_path):
    target = tmp_path / "written.txt"
    path = tmp_path / "evil.npy"
    npy_with_pickle(path, _RunsCode(open, str(target), "w"))
    with pytest.raises(tools.WeightsFileError, match="refused"):
        tools.read_weights(str(path))
    assert not target.exists()


def test_truncated_file_is_a_clear_error(tmp_path, py2_file):
    with open(py2_file, "rb") as f:
        data = f.read()
    for cut in (len(data) // 2, 200, 20):
        path = tmp_path / f"cut{cut}.npy"
        path.write_bytes(data[:cut])
        with pytest.raises(tools.WeightsFileError, match=str(path)):
            tools.read_weights(str(path))


@pytest.mark.parametrize("content,message", [
    (b"not a numpy file at all", "not a .npy file"),
    ("float array", "not a dict of layers"),
    ("list", "not a dict of layers"),
    ("strings", "not a \\[weights, biases\\] pair"),
])
def test_files_that_are_not_weights_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "other.npy"
    if content == "float array":
        np.save(path, np.zeros((4, 4), np.float32))
    elif content == "list":
        np.save(path, np.array([1, 2], dtype=object), allow_pickle=True)
    elif content == "strings":
        np.save(path, {"conv1_1": ["a", "b"]}, allow_pickle=True)
    else:
        path.write_bytes(content)
    with pytest.raises(tools.WeightsFileError, match=message) as info:
        tools.read_weights(str(path))
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(tools.WeightsFileError, match="cannot read it"):
        tools.read_weights(str(tmp_path / "absent.npy"))


def test_fc6_summed_over_positions_reads_a_1x1_map_as_the_original_reads_copies(tmp_path):
    rng = np.random.default_rng(6)
    public = rng.standard_normal((7 * 7 * 512, 64)).astype(np.float32)  # fc6, 64 wide here
    folded = weights.fold_positions(public, 512)
    assert folded.shape == (512, 64)
    f = rng.standard_normal(512).astype(np.float32)
    copies = np.tile(f, 49)  # a 7x7x512 map with f at every position, flattened H, W, C
    np.testing.assert_allclose(f @ folded, copies @ public, rtol=1e-4, atol=1e-3)
    assert weights.fold_positions(public, 500) is None
    # and the loader does it for fc6 when asked, reporting it
    layers = random_layers(fc6_in=7 * 7 * 512, seed=7, fc_size=64)  # (fc6 64 wide: quick)
    path = str(tmp_path / "w.npy")
    py2_npy.write(path, layers)
    with session_with_vgg16(num_classes=10, fc_size=64) as sess:
        report = tools.load_pretrained(path, sess, skip=("fc8",), verbose=False,
                                       fold=("fc6",))
        fc6 = values(sess)["fc6"]
    status = {layer: (s, d) for layer, s, d in report}["fc6"]
    assert status[0] == "loaded" and "summed over 49 positions" in status[1]
    np.testing.assert_allclose(fc6[0], weights.fold_positions(layers["fc6"][0], 512),
                               rtol=1e-6)
    np.testing.assert_array_equal(fc6[1], layers["fc6"][1])

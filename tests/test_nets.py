"""The networks of the table in nets.py: every one is checked the same way (names, shapes, reuse,
features without the last layer, dropout, image sizes), then VGG's exact names and parameter
counts against the paper."""

import numpy as np
import pytest
import tensorflow as tf

import nets
import tools
import vgg16

tf1 = tf.compat.v1


# ----------------------------------------------------------------------------------------------
# Every network of the table
# ----------------------------------------------------------------------------------------------

def build_network(name, num_classes=10, side=None, **kwargs):
    network = nets.get(name)
    side = side or network.default_image_size
    images = tf1.placeholder(tf.float32, [None, side, side, 3])
    return (images, *network.build(images, num_classes, **kwargs))


@pytest.mark.parametrize("name", nets.NAMES)
def test_variables_are_named_after_the_table_layers(name):
    network = nets.get(name)
    with tf.Graph().as_default():
        _, logits, end_points = build_network(name, 7)
        names = [v.op.name for v in tf1.global_variables()]
        assert names == [f"{layer}/{leaf}" for layer in network.layers
                         for leaf in ("weights", "biases")]
        assert logits.shape.as_list() == [None, 7] and end_points["logits"] is logits
        assert network.head == network.layers[-1]


@pytest.mark.parametrize("name", nets.NAMES)
def test_no_classes_gives_the_features_without_the_head(name):
    network = nets.get(name)
    for num_classes in (None, 0):
        with tf.Graph().as_default():
            _, features, end_points = build_network(name, num_classes)
            scopes = {v.op.name.split("/")[0] for v in tf1.global_variables()}
            assert scopes == set(network.layers) - {network.head}
            assert "logits" not in end_points
            assert features is end_points[network.layers[-2]]  # not training: no dropout


@pytest.mark.parametrize("name", nets.NAMES)
def test_until_stops_after_that_layer_with_its_output(name):
    network = nets.get(name)
    rng = np.random.default_rng(0)
    side = network.default_image_size
    x = rng.uniform(-100, 100, (2, side, side, 3)).astype(np.float32)
    layers = network.layers[-3:-1]  # the two layers before the head (VGG: fc6, fc7)
    with tf.Graph().as_default():
        images, full, end_points = build_network(name, 10)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            expected = sess.run({layer: end_points[layer] for layer in layers}, {images: x})
            values = {v.op.name: sess.run(v) for v in tf1.global_variables()}
    for layer in layers:
        with tf.Graph().as_default():
            images, cut, cut_points = build_network(name, 10, until=layer)
            scopes = [v.op.name.split("/")[0] for v in tf1.global_variables()]
            assert sorted(set(scopes)) == sorted(
                network.layers[:network.layers.index(layer) + 1])
            assert cut is cut_points[layer] and "logits" not in cut_points
            with tf1.Session() as sess:
                for v in tf1.global_variables():
                    v.load(values[v.op.name], sess)
                np.testing.assert_array_equal(sess.run(cut, {images: x}), expected[layer])
    with tf.Graph().as_default(), pytest.raises(ValueError, match="not a layer"):
        build_network(name, 10, until="fc9")


@pytest.mark.parametrize("name", nets.NAMES)
def test_second_build_shares_variables_and_runs_any_batch(name):
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        images, train_logits, _ = build_network(name, is_training=True)
        count = len(tf1.global_variables())
        eval_logits, _ = nets.get(name).build(images, 10)
        assert len(tf1.global_variables()) == count
        side = images.shape[1]
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for batch in (1, 3):
                x = rng.uniform(-120, 130, (batch, side, side, 3)).astype(np.float32)
                e1, e2 = sess.run(eval_logits, {images: x}), sess.run(eval_logits, {images: x})
                np.testing.assert_array_equal(e1, e2)
                assert e1.shape == (batch, 10)
            t1, t2 = sess.run(train_logits, {images: x}), sess.run(train_logits, {images: x})
            assert not np.allclose(t1, t2)  # dropout while training


@pytest.mark.parametrize("name", nets.NAMES)
def test_image_size_rule_matches_what_builds(name):
    network = nets.get(name)
    assert network.image_size_error(network.default_image_size) is None
    # the largest side below the default that the rule refuses must fail to build too
    bad = max(side for side in range(1, network.default_image_size)
              if network.image_size_error(side))
    assert network.image_size_error(bad)
    with tf.Graph().as_default():
        with pytest.raises(ValueError):
            build_network(name, side=bad)


@pytest.mark.parametrize("name", nets.NAMES)
def test_trainable_layers(name):
    network = nets.get(name)
    assert network.trainable_layers("all") == list(network.layers)
    assert network.trainable_layers("fc") == [n for n in network.layers if n.startswith("fc")]
    assert network.trainable_layers(network.layers[-2]) == list(network.layers[-2:])
    with pytest.raises(ValueError, match="not 'all', 'fc' or a layer"):
        network.trainable_layers("conv9_9")


def test_unknown_network_names_the_choices():
    with pytest.raises(ValueError, match="vgg16"):
        nets.get("vgg15")


# ----------------------------------------------------------------------------------------------
# VGG
# ----------------------------------------------------------------------------------------------

VGG16_CONV = [  # (layer, in, out) of configuration D
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)]


def expected_variables(fc6_in, num_classes):
    expected = []
    for layer, cin, cout in VGG16_CONV:
        expected += [(f"{layer}/weights", [3, 3, cin, cout]), (f"{layer}/biases", [cout])]
    expected += [("fc6/weights", [fc6_in, 4096]), ("fc6/biases", [4096]),
                 ("fc7/weights", [4096, 4096]), ("fc7/biases", [4096]),
                 ("fc8/weights", [4096, num_classes]), ("fc8/biases", [num_classes])]
    return expected


def graph_variables(side, num_classes, arch="vgg16", **kwargs):
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, side, side, 3])
        logits, end_points = vgg16.build(images, num_classes, arch, **kwargs)
        variables = [(v.op.name, v.shape.as_list()) for v in tf1.global_variables()]
        trainable = sum(int(np.prod(v.shape)) for v in tf1.trainable_variables())
        shapes = {k: v.shape.as_list() for k, v in end_points.items()}
    return variables, trainable, shapes


@pytest.mark.parametrize("side,fc6_in", [(32, 512), (224, 25088)])
def test_vgg16_variable_names_and_shapes(side, fc6_in):
    variables, _, shapes = graph_variables(side, 10)
    assert variables == expected_variables(fc6_in, 10)
    assert shapes["pool5"] == [None, side // 32, side // 32, 512]
    assert shapes["fc6"] == shapes["fc7"] == [None, 4096]
    assert shapes["logits"] == [None, 10]
    assert set(shapes) == ({name for name, _, _ in VGG16_CONV}
                           | {f"pool{b}" for b in range(1, 6)} | {"fc6", "fc7", "logits"})


@pytest.mark.parametrize("arch,count", [("vgg16", 138_357_544), ("vgg19", 143_667_240)])
def test_imagenet_parameter_counts(arch, count):
    _, trainable, _ = graph_variables(224, 1000, arch)
    assert trainable == count


@pytest.mark.parametrize("arch,convs", [("vgg11", 8), ("vgg13", 10), ("vgg16", 13),
                                        ("vgg19", 16)])
def test_table_gives_the_papers_depths(arch, convs):
    variables, _, _ = graph_variables(32, 10, arch)
    layers = [name.split("/")[0] for name, _ in variables if name.endswith("/weights")]
    assert len(layers) == convs + 3
    assert layers == vgg16.layer_names(arch)
    assert layers[-3:] == ["fc6", "fc7", "fc8"]


def test_batch_norm_variables_and_update_ops():
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg16.build(images, 10, "vgg11", is_training=True, batch_norm=True)
        names = [v.op.name for v in tf1.global_variables()]
        assert "conv1_1/batch_norm/moving_mean" in names
        assert "conv1_1/batch_norm/gamma" in names
        trainable = [v.op.name for v in tf1.trainable_variables()]
        assert "conv1_1/batch_norm/moving_mean" not in trainable
        # two moving averages for each of the 8 convolutions
        assert len(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)) == 16


def test_logits_can_be_negative_and_any_batch_size_runs():
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, _ = vgg16.build(images, 10, "vgg16", is_training=False)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for batch in (1, 7):
                x = rng.uniform(-120, 130, (batch, 32, 32, 3)).astype(np.float32)
                out = sess.run(logits, {images: x})
                assert out.shape == (batch, 10)
            assert (out < 0).any() and (out > 0).any()


def test_second_build_reuses_variables_and_dropout_only_while_training():
    rng = np.random.default_rng(1)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        train_logits, _ = vgg16.build(images, 10, "vgg11", is_training=True)
        count = len(tf1.global_variables())
        eval_logits, eval_points = vgg16.build(images, 10, "vgg11", is_training=False)
        assert len(tf1.global_variables()) == count
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            x = rng.uniform(-120, 130, (4, 32, 32, 3)).astype(np.float32)
            e1, e2 = sess.run(eval_logits, {images: x}), sess.run(eval_logits, {images: x})
            np.testing.assert_array_equal(e1, e2)
            t1, t2 = sess.run(train_logits, {images: x}), sess.run(train_logits, {images: x})
            assert not np.allclose(t1, t2)  # dropout while training
            fc7 = sess.run(eval_points["fc7"], {images: x})
            assert (fc7 >= 0).all()  # codes are after ReLU


def test_bad_arguments_are_clear_errors():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="unknown arch 'vgg15'"):
            vgg16.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), arch="vgg15")
        with pytest.raises(ValueError, match="multiples of 32"):
            vgg16.build(tf1.placeholder(tf.float32, [None, 40, 40, 3]))


def test_weight_decay_covers_trainable_conv_and_fc_weights_only():
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, _ = vgg16.build(images, 10, "vgg11", batch_norm=True, is_training=True)
        vgg16.build(images, 10, "vgg11", batch_norm=True)
        decayed = tf1.get_collection(tools.WEIGHT_DECAY_COLLECTION)
        assert [w.op.name for w in decayed] == [f"{n}/weights"
                                                for n in vgg16.layer_names("vgg11")]
        labels = tf.zeros([2], tf.int32)
        fc_only = [v for v in tf1.trainable_variables() if v.op.name.startswith("fc")]
        total, cross_entropy = tools.loss(logits, labels, weight_decay=0.5, var_list=fc_only)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            x = np.zeros((2, 32, 32, 3), np.float32)
            t, c, ws = sess.run([total, cross_entropy, [v for v in fc_only
                                                       if v.op.name.endswith("weights")]],
                                {images: x})
        np.testing.assert_allclose(t - c, 0.5 * sum((w ** 2).sum() / 2 for w in ws), rtol=1e-4)


@pytest.mark.parametrize("fc_size,fc_shapes", [
    (0, [("fc8/weights", [512, 10])]),
    (256, [("fc6/weights", [512, 256]), ("fc7/weights", [256, 256]), ("fc8/weights", [256, 10])]),
])
def test_fc_size_sets_or_removes_the_hidden_fully_connected_layers(fc_size, fc_shapes):
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, end_points = vgg16.build(images, 10, "vgg11", fc_size=fc_size)
        shapes = [(v.op.name, v.shape.as_list()) for v in tf1.global_variables()
                  if v.op.name.startswith("fc") and v.op.name.endswith("weights")]
    assert shapes == fc_shapes
    assert logits.shape.as_list() == [None, 10]
    assert ("fc6" in end_points) == bool(fc_size)


def test_a_run_saved_before_fc_size_reads_as_the_papers_head():
    from training import runs

    config = {"model": {"arch": "vgg16", "batch_norm": False, "image_size": 32,
                        "num_classes": 10}, "runs": [{"val_size": 5000}]}
    assert runs.check_config(config, "config.json")["model"]["fc_size"] == 4096

"""The shared model API (model.py) and the two-step optimizer in tools.py."""

import numpy as np
import pytest
import tensorflow as tf

import model
import tools

tf1 = tf.compat.v1
CONFIG = {"arch": "vgg11", "batch_norm": False, "image_size": 32, "num_classes": 10}
TINY = {**CONFIG, "arch": "tinynet"}  # (tests/tiny_net.py: where any network will do)


def quadratic(values):
    """A variable ``w`` and the loss sum((w - target)^2) / 2, whose gradient is w - target."""
    w = tf1.get_variable("w", initializer=np.zeros(len(values), np.float32))
    target = tf.constant(values, tf.float32)
    return w, tf.reduce_sum(tf.square(w - target)) / 2


def test_gradients_are_clipped_then_applied_once():
    with tf.Graph().as_default():
        w, loss = quadratic([3.0, 4.0])  # gradient at 0: (-3, -4), norm 5
        step = tf1.train.get_or_create_global_step()
        optimizer = tools.make_optimizer(0.1, momentum=0.9)
        grads = tools.compute_gradients(optimizer, loss, [w], clip_norm=1.0)
        train_op = tools.apply_gradients(optimizer, grads, step)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            g = sess.run(grads[0][0])
            np.testing.assert_allclose(g, [-0.6, -0.8], rtol=1e-6)  # norm 1
            sess.run(train_op)
            np.testing.assert_allclose(sess.run(w), [0.06, 0.08], rtol=1e-6)
            assert sess.run(step) == 1


def test_gradients_averaged_between_the_two_steps_make_one_update():
    with tf.Graph().as_default():
        w, loss_a = quadratic([2.0, 0.0])
        loss_b = tf.reduce_sum(tf.square(w - tf.constant([0.0, 4.0]))) / 2
        optimizer = tools.make_optimizer(1.0, momentum=0.0)
        tower_grads = [tools.compute_gradients(optimizer, loss, [w]) for loss in (loss_a, loss_b)]
        mean = tf.add_n([grads[0][0] for grads in tower_grads]) / 2
        train_op = tools.apply_gradients(optimizer, [(mean, w)],
                                         tf1.train.get_or_create_global_step())
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(train_op)
            np.testing.assert_allclose(sess.run(w), [1.0, 2.0])


@pytest.mark.parametrize("clip_norm", [None, 5.0])
def test_non_finite_gradients_fail_before_any_weight_changes(clip_norm):
    with tf.Graph().as_default():
        w = tf1.get_variable("w", initializer=np.ones(2, np.float32))
        scale = tf1.placeholder(tf.float32, [])
        loss = tf.reduce_sum(w * scale)
        optimizer = tools.make_optimizer(0.1)
        grads = tools.compute_gradients(optimizer, loss, [w], clip_norm=clip_norm)
        train_op = tools.apply_gradients(optimizer, grads, tf1.train.get_or_create_global_step())
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            with pytest.raises(tf.errors.InvalidArgumentError, match=tools.NAN_GRADIENTS):
                sess.run(train_op, {scale: np.nan})
            np.testing.assert_array_equal(sess.run(w), [1.0, 1.0])
            sess.run(train_op, {scale: 1.0})
            np.testing.assert_allclose(sess.run(w), [0.9, 0.9])


@pytest.mark.parametrize("clip_norm", [None, 1.0])
def test_a_variable_the_loss_does_not_reach_is_left_alone(clip_norm):
    with tf.Graph().as_default():
        w, loss = quadratic([1.0, 1.0])
        unused = tf1.get_variable("unused", initializer=np.ones(2, np.float32))
        optimizer = tools.make_optimizer(0.5, momentum=0.0)
        grads = tools.compute_gradients(optimizer, loss, [w, unused], clip_norm=clip_norm)
        assert grads[1][0] is None
        train_op = tools.apply_gradients(optimizer, grads, tf1.train.get_or_create_global_step())
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(train_op)
            np.testing.assert_array_equal(sess.run(unused), [1.0, 1.0])
            assert (sess.run(w) > 0).all()


def test_tower_trains_and_decays_only_the_named_layers():
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        labels = tf1.placeholder(tf.int32, [None])
        tower = model.tower(CONFIG, images, labels, is_training=True, weight_decay=0.5,
                            trainable_layers=["fc7", "fc8"])
        assert [v.op.name for v in tower.var_list] == ["fc7/weights", "fc7/biases",
                                                       "fc8/weights", "fc8/biases"]
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            feed = {images: np.zeros((2, 32, 32, 3), np.float32), labels: [1, 2]}
            total, cross_entropy, fc7, fc8 = sess.run(
                [tower.total_loss, tower.cross_entropy, tower.var_list[0], tower.var_list[2]],
                feed)
    np.testing.assert_allclose(total - cross_entropy,
                               0.5 * ((fc7 ** 2).sum() + (fc8 ** 2).sum()) / 2, rtol=1e-4)


def test_run_split_sees_every_image_once_with_a_partial_last_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 100, (23, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 23).astype(np.int32)
    with tf.Graph().as_default():
        images, labels, iterator = model.inputs(
            lambda: tf.data.Dataset.from_tensor_slices((x, y)).batch(5), initializable=True)
        pipeline = [op for op in tf1.get_default_graph().get_operations()
                    if "Dataset" in op.type or "Iterator" in op.type]
        assert pipeline and all("CPU" in op.device for op in pipeline)
        tower = model.tower(CONFIG, images, labels)
        direct = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        logits, _ = model.inference(CONFIG, direct)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            first = model.run_split(sess, iterator, tower)
            second = model.run_split(sess, iterator, tower)  # the iterator starts again
            expected = sess.run(logits, {direct: x})
    assert first.count == second.count == 23
    np.testing.assert_array_equal(first.labels, y)
    np.testing.assert_array_equal(first.predictions, expected.argmax(1))
    np.testing.assert_array_equal(first.predictions, second.predictions)
    shifted = expected - expected.max(1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(23), y]
    assert first.loss == pytest.approx(losses.mean(), rel=1e-4)
    assert first.accuracy == pytest.approx(np.mean(expected.argmax(1) == y))


# ----------------------------------------------------------------------------------------------
# Recipe options: label smoothing, test-time flips, moving averages of the weights
# ----------------------------------------------------------------------------------------------

def test_label_smoothing_changes_the_loss_as_the_formula_says():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 6).astype(np.int32)
    with tf.Graph().as_default():
        total, plain = tools.loss(tf.constant(logits), tf.constant(labels), label_smoothing=0.2)
        with tf1.Session() as sess:
            total, plain = sess.run([total, plain])
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    targets = np.full((6, 10), 0.2 / 10)
    targets[np.arange(6), labels] += 0.8
    assert total == pytest.approx(-(targets * log_p).sum(1).mean(), rel=1e-5)
    assert plain == pytest.approx(-log_p[np.arange(6), labels].mean(), rel=1e-5)
    assert total != pytest.approx(plain)


def test_flip_average_is_the_mean_of_two_predictions():
    rng = np.random.default_rng(4)
    x = rng.uniform(-100, 100, (3, 32, 32, 3)).astype(np.float32)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        labels = tf.constant([0, 1, 2])
        tower = model.tower(CONFIG, images, labels, flip_average=True)
        logits, _ = model.inference(CONFIG, images)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            averaged = sess.run(tf.exp(tower.logits), {images: x})
            plain = sess.run(tf.nn.softmax(logits), {images: x})
            mirrored = sess.run(tf.nn.softmax(logits), {images: x[:, :, ::-1]})
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-4, atol=1e-7)
    assert not np.allclose(plain, mirrored, atol=1e-3)  # the mirror image does change them


def test_moving_averages_are_what_evaluation_restores(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(-100, 100, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([1, 2, 3, 4], np.int32)
    prefix = str(tmp_path / "model.ckpt")
    config = {**CONFIG, "fc_size": 64}  # (fc6 and fc7 of 64: a small checkpoint)
    with tf.Graph().as_default():
        step = tf1.train.get_or_create_global_step()
        tower = model.tower(config, tf.constant(x), tf.constant(y), is_training=True)
        optimizer = tools.make_optimizer(0.01)
        train_op = tools.apply_gradients(
            optimizer, tools.compute_gradients(optimizer, tower.total_loss, clip_norm=5.0), step)
        ema, train_op, _ = model.moving_average(0.5, step, train_op, model.layer_variables())
        with model.averaged_weights(ema):
            averaged_logits, _ = model.inference(config, tf.constant(x))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for _ in range(3):
                sess.run(train_op)
            expected = sess.run(averaged_logits)
            tf1.train.Saver().save(sess, prefix, global_step=3)
    checkpoint = prefix + "-3"
    with tf.Graph().as_default():
        logits, _ = model.inference(config, tf.constant(x))
        tf1.train.get_or_create_global_step()
        with tf1.Session() as sess:
            assert model.load_checkpoint(sess, checkpoint)  # (it holds moving averages)
            fc7 = sess.run(tf1.trainable_variables("fc7")[0])
            got = sess.run(logits)
    np.testing.assert_array_equal(
        fc7, tf1.train.load_variable(checkpoint, "fc7/weights/ExponentialMovingAverage"))
    assert not np.array_equal(fc7, tf1.train.load_variable(checkpoint, "fc7/weights"))
    np.testing.assert_allclose(got, expected, rtol=1e-5)  # validation saw the same network


def test_moving_averages_start_from_loaded_weights_and_cover_only_what_trains(tmp_path):
    loaded = np.full([3, 2], 7.0, np.float32)
    with tf.Graph().as_default():
        step = tf1.train.get_or_create_global_step()
        with tf1.variable_scope("fc7"):
            frozen = tf1.get_variable("weights", [3, 2])
        with tf1.variable_scope("fc8"):
            trained = tf1.get_variable("weights", [3, 2])
        loss = tf.reduce_sum(tf.square(trained)) + tf.reduce_sum(frozen)
        optimizer = tools.make_optimizer(0.1)
        train_op = tools.apply_gradients(optimizer, tools.compute_gradients(
            optimizer, loss, var_list=[trained]), step)
        ema, train_op, sync = model.moving_average(0.9, step, train_op, [trained])
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(trained.initializer, {trained.initializer.inputs[1]: loaded})  # as loaded
            sess.run(sync)
            np.testing.assert_array_equal(sess.run(ema.average(trained)), loaded)
            sess.run(train_op)
            after = sess.run(trained)
            average = sess.run(ema.average(trained))
            # one update moves the average from the loaded weights towards the new ones
            share = np.sum((average - loaded) * (after - loaded)) / np.sum((after - loaded) ** 2)
            np.testing.assert_allclose(average, loaded + share * (after - loaded), rtol=1e-6)
            assert 0 < share < 1 and ema.average(frozen) is None
            prefix = tf1.train.Saver().save(sess, str(tmp_path / "model.ckpt"), global_step=1)
            expected_frozen = sess.run(frozen)
    with tf.Graph().as_default():
        with tf1.variable_scope("fc7"):
            frozen = tf1.get_variable("weights", [3, 2])
        with tf1.variable_scope("fc8"):
            trained = tf1.get_variable("weights", [3, 2])
        with tf1.Session() as sess:
            assert model.load_checkpoint(sess, prefix)
            np.testing.assert_array_equal(sess.run(trained), average)
            np.testing.assert_array_equal(sess.run(frozen), expected_frozen)


def one_update(towers, x, y, start=None, batch_norm=False):
    """Variables before and after one update by ``towers`` towers on CPU devices, from the
    values ``start`` (name -> array) or the initial ones; and the batch-norm moving mean."""
    from common import devices

    config = {**TINY, "batch_norm": batch_norm}
    with tf.Graph().as_default():
        step = tf1.train.get_or_create_global_step()
        places = devices.towers(towers, "cpu")
        made = model.towers(config, tf.constant(x), tf.constant(y), places, "/cpu:0",
                            is_training=True, weight_decay=5e-4, dropout_keep_prob=1.0)
        optimizer = tools.make_optimizer(0.01)
        grads = tools.check_and_clip(model.average_gradients(
            model.tower_gradients(optimizer, made, places, "/cpu:0")), clip_norm=5.0)
        train_op = tools.apply_gradients(optimizer, grads, step, update_ops=tf1.get_collection(
            tf1.GraphKeys.UPDATE_OPS, "tower_0"))
        trained = {v.op.name: v for v in tf1.global_variables() if "Momentum" not in v.op.name}
        with tf1.Session(config=devices.session_config(cpus=towers)) as sess:
            sess.run(tf1.global_variables_initializer())
            for name, value in (start or {}).items():
                trained[name].load(value, sess)
            before = sess.run(trained)
            sess.run(train_op)
            return before, sess.run(trained), [t.device for t in made[-1].logits.op.inputs]


def test_two_towers_of_half_the_batch_make_the_update_of_one_tower():
    rng = np.random.default_rng(7)
    x = rng.uniform(-100, 100, (8, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.int32)
    before, after_one, _ = one_update(1, x, y)
    _, after_two, placed = one_update(2, x, y, start=before)
    assert any(d.endswith("CPU:1") or d.endswith("cpu:1") for d in placed)  # the 2nd tower
    for name in before:
        if name == "global_step":
            continue
        change_one, change_two = after_one[name] - before[name], after_two[name] - before[name]
        assert np.abs(change_one).max() > 0, name
        # (float32 sums in another order: up to 1.2e-5 measured over 80 repeats of this update,
        # and 8e-6 in VGG11; the update of one tower's half of the batch alone is off by 0.5
        # or more)
        assert (np.linalg.norm(change_two - change_one) / np.linalg.norm(change_one)) < 1e-4, name
    assert after_two["global_step"] == after_one["global_step"] == 1


def test_with_batch_norm_the_moving_averages_move_once_a_step():
    rng = np.random.default_rng(8)
    x = rng.uniform(-100, 100, (8, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.int32)
    before, after, _ = one_update(2, x, y, batch_norm=True)
    name = "conv1/batch_norm/moving_mean"
    # one update from tower 0's batch statistics: mean' = decay * mean + (1 - decay) * m0
    moved = after[name] - before[name]
    assert np.abs(moved).max() > 0
    _, single, _ = one_update(1, x[:4], y[:4], start=before, batch_norm=True)
    np.testing.assert_allclose(after[name], single[name], rtol=1e-5, atol=1e-6)

"""The FLOP count behind benchmark.py's achieved GFLOP/s, and the bytes of a cluster step."""

from benchmarks.bandwidth import step_bytes
from benchmarks.step import flops_per_image


def test_vgg16_forward_flops_match_the_published_count():
    # 15,470,264,320 multiply-adds for VGG16 at 224x224 with 1000 classes
    forward, training = flops_per_image("vgg16", 224, num_classes=1000)
    assert forward == 2 * 15_470_264_320
    first_layer = 2 * 224 * 224 * 9 * 3 * 64
    assert training == 3 * forward - first_layer


def test_flops_scale_with_the_image_area_for_the_convolutions():
    conv_32 = flops_per_image("vgg11", 32)[0] - 2 * (512 * 4096 + 4096 * 4096 + 40960)
    conv_64 = flops_per_image("vgg11", 64)[0] - 2 * (2048 * 4096 + 4096 * 4096
                                                               + 40960)
    assert conv_64 == 4 * conv_32


def test_a_cluster_step_moves_every_variable_and_the_trained_gradients():
    # VGG16 at 224x224 with 1000 classes has the paper's 138,357,544 parameters
    read, sent = step_bytes("vgg16", 224, 4096, "all", num_classes=1000)
    assert read == sent == 4 * 138_357_544
    # --trainable fc: every variable is still read; only fc6-fc8's gradients go back
    read, sent = step_bytes("vgg16", 224, 4096, "fc", num_classes=1000)
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert read == 4 * 138_357_544 and sent == 4 * fc

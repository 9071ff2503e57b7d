"""The convolutional recogniser's arithmetic: its convolution, its gradients and its
weights file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocr.digits import (
    KERNEL,
    N_CLASSES,
    N_EXTRA,
    SIDE,
    DigitModel,
    conv_same,
    load_model,
    pool2,
    save_model,
)
from seeds.train_digits import cnn_gradients, mlp_gradients, train_cnn, train_mlp


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.sampled_from([(4, 6), (8, 8), (28, 28)]),
    channels=st.integers(1, 3),
    out=st.integers(1, 4),
)
def test_the_convolution_is_a_zero_padded_correlation_per_channel(
    seed: int, size: tuple[int, int], channels: int, out: int
) -> None:
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(2, *size, channels))
    kernel = rng.normal(size=(KERNEL, KERNEL, channels, out))
    bias = rng.normal(size=out)
    got = conv_same(maps, kernel.reshape(-1, out), bias)
    for n in range(2):
        for o in range(out):
            want = bias[o] + sum(
                cv2.filter2D(
                    maps[n, :, :, c], -1, kernel[:, :, c, o], borderType=cv2.BORDER_CONSTANT
                )
                for c in range(channels)
            )
            np.testing.assert_allclose(got[n, :, :, o], want, atol=1e-9)


def test_pooling_keeps_each_two_by_two_blocks_maximum() -> None:
    maps = np.arange(32.0).reshape(1, 4, 4, 2)
    pooled = pool2(maps)
    assert pooled.shape == (1, 2, 2, 2)
    assert pooled[0, :, :, 0].tolist() == [[10.0, 14.0], [26.0, 30.0]]


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random feature rows: an image in [0, 1) and standard normal extras."""
    image, extra = rng.random((n, SIDE * SIDE)), rng.normal(size=(n, N_EXTRA))
    return np.concatenate([image, extra], axis=1).astype(np.float32)


def _small_params(rng: np.random.Generator) -> list[np.ndarray]:
    flat = 3 * (SIDE // 4) ** 2 + N_EXTRA
    shapes = [(KERNEL * KERNEL, 2), (2,), (KERNEL * KERNEL * 2, 3), (3,), (flat, 6), (6,),
              (6, 5), (5,), (5, N_CLASSES), (N_CLASSES,)]  # fmt: skip
    return [rng.normal(0, 0.3, s) for s in shapes]


def _small_mlp(rng: np.random.Generator) -> list[np.ndarray]:
    shapes = [(SIDE * SIDE + N_EXTRA, 6), (6,), (6, 5), (5,), (5, N_CLASSES), (N_CLASSES,)]
    return [rng.normal(0, 0.3, s) for s in shapes]


@pytest.mark.parametrize("network", ["cnn", "mlp"])
def test_the_training_gradients_are_the_losss_derivatives(network: str) -> None:
    """Each parameter's gradient against central differences of the loss, in float64:
    the convolutional network's, and the perceptron's (the same dense head)."""
    rng = np.random.default_rng(5)
    params = _small_params(rng) if network == "cnn" else _small_mlp(rng)
    gradients = cnn_gradients if network == "cnn" else mlp_gradients
    z = _rows(rng, 4).astype(np.float64)
    y = np.array([0, 3, 7, 10])
    _, grads = gradients(params, z, y)
    eps = 1e-6
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        assert g.shape == p.shape
        for _ in range(6):
            idx = tuple(int(rng.integers(s)) for s in p.shape)
            old = p[idx]
            p[idx] = old + eps
            up = gradients(params, z, y)[0]
            p[idx] = old - eps
            down = gradients(params, z, y)[0]
            p[idx] = old
            assert abs(g[idx] - (up - down) / (2 * eps)) < 1e-6 + 1e-4 * abs(g[idx]), (i, idx)


def test_the_models_scores_are_what_it_was_trained_with_and_survive_its_file(
    tmp_path: Path,
) -> None:
    """A few steps of training lower the loss; the model's own forward pass gives
    the training's loss; saving and loading keeps its scores (dense weights stored
    in float16)."""
    rng = np.random.default_rng(2)
    x = _rows(rng, 64)
    y = rng.integers(0, N_CLASSES, 64)
    model = train_cnn(x, y, np.random.default_rng(0), channels=(2, 3), hidden=(6, 5), epochs=1)
    assert model.k1.shape == (KERNEL * KERNEL, 2) and model.w1.shape[0] == 3 * 49 + N_EXTRA
    z = ((x - model.mean) / model.scale).astype(np.float32)
    params = [model.k1, model.c1, model.k2, model.c2, model.w1, model.b1, model.w2, model.b2,
              model.w3, model.b3]  # fmt: skip
    loss, _ = cnn_gradients(params, z, y)
    logits = model.logits(x).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert abs(-logp[np.arange(64), y].mean() - loss) < 1e-4
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert isinstance(loaded, DigitModel) and loaded.k2.shape == model.k2.shape
    np.testing.assert_allclose(loaded.logits(x), model.logits(x), atol=0.05)


def test_the_committed_model_averages_a_convolutional_network_and_a_perceptron() -> None:
    model = load_model()
    assert model.k1.shape[0] == KERNEL * KERNEL
    assert model.k2.shape[0] == KERNEL * KERNEL * len(model.c1)
    assert model.partner is not None and model.partner.k1.size == 0
    assert model.partner.w1.shape[0] == SIDE * SIDE + N_EXTRA


def test_an_ensembles_scores_are_its_two_networks_mean_and_survive_its_file(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    x = _rows(rng, 40)
    y = rng.integers(0, N_CLASSES, 40)
    cnn = train_cnn(x, y, np.random.default_rng(0), channels=(2, 3), hidden=(6, 5), epochs=1)
    mlp = train_mlp(x, y, np.random.default_rng(1), hidden=(8, 6), epochs=1)
    both = replace(cnn, partner=mlp, temperature=1.3)
    np.testing.assert_allclose(both.logits(x), (cnn.logits(x) + mlp.logits(x)) / 2, rtol=1e-6)
    path = tmp_path / "both.npz"
    save_model(both, path)
    loaded = load_model(path)
    assert loaded.partner is not None and loaded.partner.k1.size == 0
    assert loaded.temperature == np.float32(1.3)
    np.testing.assert_allclose(loaded.logits(x), both.logits(x), atol=0.05)

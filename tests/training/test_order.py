"""Walks reshuffled every epoch (benchmark/training/order.py): each item once per epoch, a new
order each epoch, the same order for a member whatever its population or step count."""

from __future__ import annotations

import pytest
import torch

from benchmark.training.order import EpochWalk
from tests.helpers import tiny, tiny_images


def test_a_walk_takes_each_item_at_most_once_per_epoch_and_reshuffles():
    walk = EpochWalk([3, 4], n=50, batch=8, name="data", device="cpu")
    assert walk.batches == 6  # 48 of the 50 items a epoch; 2 left over, different each epoch
    for member in (0, 1):
        epochs = [torch.cat([walk.indices(member, e * 6 + k) for k in range(6)]) for e in range(3)]
        for order in epochs:
            assert len(order) == 48 and len(set(order.tolist())) == 48
        assert not torch.equal(epochs[0], epochs[1])
    # members walk their own orders; a walk is a function of (seed, name, epoch) alone
    assert not torch.equal(walk.indices(0, 0), walk.indices(1, 0))
    alone = EpochWalk([4], n=50, batch=8, name="data", device="cpu")
    assert torch.equal(alone.indices(0, 13), walk.indices(1, 13))
    assert not torch.equal(EpochWalk([4], 50, 8, "z", "cpu").indices(0, 0), alone.indices(0, 0))


def test_a_walk_needs_one_batch():
    with pytest.raises(ValueError, match="at least one batch"):
        EpochWalk([0], n=4, batch=8, name="data", device="cpu")


def test_a_trial_walking_its_data_sees_every_image_once_per_epoch():
    from benchmark.training.step import GANTraining

    trial = tiny("ns", batch_size=32, data_order="epochs", latent_pool=64)
    training = GANTraining(trial, tiny_images(256, 0), torch.device("cpu"))
    seen = []
    for step in range(8):  # one epoch of 256 images in batches of 32
        training.step = step
        seen += training._indices()[0].tolist()
    assert sorted(seen) == list(range(256))
    pool = training.latent_pool
    assert pool.shape == (64, trial.z_dim)
    training.step = 0
    first, second = training.sample_z()[0], None
    training.step = 1
    second = training.sample_z()[0]
    rows = {tuple(z.tolist()) for z in torch.cat([first, second])}
    assert rows == {tuple(z.tolist()) for z in pool}  # the pool's 64 z, once each, in 2 steps

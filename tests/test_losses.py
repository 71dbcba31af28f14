"""Loss values on hand-computed logits, and what separates MM from NS."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import softplus
from torch.testing import assert_close

from benchmark.losses import LOSSES, Loss, discriminator_targets
from benchmark.training.stacked import single_stream_uniform

REAL = torch.tensor([0.0, 1.0, -2.0])
FAKE = torch.tensor([0.5, -1.0])


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def value(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64)


def test_saturating_d_loss_pinned():
    expected = mean(sp(-r) for r in REAL.tolist()) + mean(sp(f) for f in FAKE.tolist())
    assert expected == pytest.approx(1.688115, abs=1e-6)  # worked by hand
    for name in ("mm", "ns"):
        assert_close(
            value(LOSSES.get(name).d(REAL, FAKE, {})), torch.tensor(expected, dtype=torch.float64)
        )


def test_mm_and_ns_generator_losses_pinned():
    mm = LOSSES.get("mm").g(FAKE, {})
    ns = LOSSES.get("ns").g(FAKE, {})
    assert float(mm) == pytest.approx(-mean(sp(f) for f in FAKE.tolist()), abs=1e-6)
    assert float(mm) == pytest.approx(-0.643670, abs=1e-6)
    assert float(ns) == pytest.approx(mean(sp(-f) for f in FAKE.tolist()), abs=1e-6)
    assert float(ns) == pytest.approx(0.893669, abs=1e-6)
    # sp(l) - sp(-l) = l, so NS = -MM - E l: the two differ by the mean logit.
    assert float(ns) == pytest.approx(-float(mm) - float(FAKE.mean()), abs=1e-6)


def test_mm_saturates_where_ns_does_not():
    """At a confident fake (l = -10) MM's gradient vanishes; NS keeps a unit gradient."""
    logit = torch.tensor([-10.0], requires_grad=True)
    (grad_mm,) = torch.autograd.grad(LOSSES.get("mm").g(logit, {}), logit)
    (grad_ns,) = torch.autograd.grad(LOSSES.get("ns").g(logit, {}), logit)
    assert float(grad_mm) == pytest.approx(-sig(-10.0), rel=1e-5)  # -4.54e-5
    assert float(grad_ns) == pytest.approx(sig(-10.0) - 1, rel=1e-5)  # about -1
    assert float(grad_mm) < 0 and float(grad_ns) < 0  # both push the logit up


def test_least_squares_on_sigmoid_output():
    d = LOSSES.get("ls").d(REAL, FAKE, {})
    g = LOSSES.get("ls").g(FAKE, {})
    expected_d = 0.5 * (
        mean((sig(r) - 1) ** 2 for r in REAL.tolist()) + mean(sig(f) ** 2 for f in FAKE.tolist())
    )
    assert float(d) == pytest.approx(expected_d, abs=1e-6)
    assert float(d) == pytest.approx(0.297968, abs=1e-6)
    assert float(g) == pytest.approx(0.5 * mean((sig(f) - 1) ** 2 for f in FAKE.tolist()), abs=1e-6)
    assert float(g) == pytest.approx(0.169246, abs=1e-6)


def test_wasserstein_and_hinge():
    wgan, hinge = LOSSES.get("wgan"), LOSSES.get("hinge")
    assert float(wgan.d(REAL, FAKE, {})) == pytest.approx(1 / 3 - 0.25, abs=1e-6)
    assert float(wgan.g(FAKE, {})) == pytest.approx(0.25, abs=1e-6)
    # relu(1 - [0, 1, -2]) = [1, 0, 3]; relu(1 + [0.5, -1]) = [1.5, 0]
    assert float(hinge.d(REAL, FAKE, {})) == pytest.approx(4 / 3 + 0.75, abs=1e-6)
    assert float(hinge.g(FAKE, {})) == pytest.approx(0.25, abs=1e-6)


def test_began_losses_and_k_update():
    began = LOSSES.get("began")
    real_err, fake_err = torch.tensor([0.2, 0.4]), torch.tensor([0.1, 0.5])
    state = {"k": torch.tensor(0.5)}
    assert float(began.d(real_err, fake_err, state)) == pytest.approx(0.3 - 0.5 * 0.3, abs=1e-7)
    assert float(began.g(fake_err, state)) == pytest.approx(0.3, abs=1e-7)
    hp = {"lambda_k": torch.tensor(1e-3), "gamma": torch.tensor(0.75)}
    new = began.after_step(state, real_err, fake_err, hp)
    assert float(new["k"]) == pytest.approx(0.5 + 1e-3 * (0.75 * 0.3 - 0.3), rel=1e-7)
    assert float(began.initial_state(torch.device("cpu"))["k"]) == 0.0
    # No clipping: k may go negative, as in the reference code.
    negative = began.after_step({"k": torch.tensor(0.0)}, real_err, fake_err, hp)
    assert float(negative["k"]) == pytest.approx(-7.5e-5, abs=1e-9)


def test_registering_a_new_loss_needs_no_trainer_change():
    LOSSES.register(
        "test_squared", Loss(d=lambda r, f, s: (r - f).square().mean(), g=lambda f, s: -f.mean())
    )
    assert "test_squared" in LOSSES.names()
    with pytest.raises(ValueError, match="already registered"):
        LOSSES.register("test_squared", Loss(d=lambda r, f, s: r.mean(), g=lambda f, s: f.mean()))


def test_unknown_loss_error_lists_the_allowed_names():
    with pytest.raises(
        ValueError, match=r"loss='nope' is not allowed; expected one of \[.*'hinge'"
    ):
        LOSSES.get("nope", "loss")


# ---- relativistic losses (Jolicoeur-Martineau 2018) -----------------------------------------

PAIRED_REAL = torch.tensor([0.0, 1.0, -2.0])
PAIRED_FAKE = torch.tensor([0.5, -1.0, 2.0])


def test_rsgan_pinned_on_pairs():
    rsgan = LOSSES.get("rsgan")
    assert rsgan.g_needs_real
    pairs = list(zip(PAIRED_REAL.tolist(), PAIRED_FAKE.tolist(), strict=True))
    d = float(rsgan.d(PAIRED_REAL, PAIRED_FAKE, {}))
    g = float(rsgan.g(PAIRED_FAKE, {}, PAIRED_REAL))
    # f - r = [0.5, -2, 4]: (sp(0.5) + sp(-2) + sp(4)) / 3 = (0.974077 + 0.126928 + 4.018150) / 3
    assert d == pytest.approx(mean(sp(-(r - f)) for r, f in pairs), abs=1e-6)
    assert d == pytest.approx(1.706385, abs=1e-6)
    assert g == pytest.approx(mean(sp(-(f - r)) for r, f in pairs), abs=1e-6)
    assert g == pytest.approx(0.873052, abs=1e-6)
    # sp(t) - sp(-t) = t: the two losses differ by the mean pairwise difference E(l(x^) - l(x)).
    assert d - g == pytest.approx(float((PAIRED_FAKE - PAIRED_REAL).mean()), abs=1e-6)


def test_rsgan_compares_each_real_sample_with_its_own_partner():
    rsgan = LOSSES.get("rsgan")
    swapped = PAIRED_FAKE[[1, 0, 2]]
    pairs = zip(PAIRED_REAL.tolist(), swapped.tolist(), strict=True)
    assert float(rsgan.d(PAIRED_REAL, swapped, {})) == pytest.approx(
        mean(sp(f - r) for r, f in pairs), abs=1e-6
    )
    assert float(rsgan.d(PAIRED_REAL, swapped, {})) != pytest.approx(1.706385, abs=1e-3)


def test_ragan_pinned_against_the_other_batch_mean():
    ragan = LOSSES.get("ragan")
    assert ragan.g_needs_real
    real, fake = PAIRED_REAL.tolist(), PAIRED_FAKE.tolist()
    mean_real, mean_fake = mean(real), mean(fake)  # -1/3 and 0.5
    d = float(ragan.d(PAIRED_REAL, PAIRED_FAKE, {}))
    g = float(ragan.g(PAIRED_FAKE, {}, PAIRED_REAL))
    expected_d = 0.5 * (
        mean(sp(-(r - mean_fake)) for r in real) + mean(sp(f - mean_real) for f in fake)
    )
    expected_g = 0.5 * (
        mean(sp(-(f - mean_real)) for f in fake) + mean(sp(r - mean_fake) for r in real)
    )
    # By hand: 1/2 ((0.974077 + 0.474077 + 2.578890) / 3 + (1.194218 + 0.414370 + 2.425887) / 3)
    assert d == pytest.approx(expected_d, abs=1e-6)
    assert d == pytest.approx(1.343587, abs=1e-6)
    assert g == pytest.approx(expected_g, abs=1e-6)
    assert g == pytest.approx(0.510253, abs=1e-6)


def test_ragan_is_the_standard_gan_on_logits_relative_to_the_other_batch_mean():
    """D~(x_r) = sigmoid(l(x_r) - E l(x_f)), D~(x_f) = sigmoid(l(x_f) - E l(x_r)); L_D is the
    standard GAN's D loss on them (halved, as the author's code), and L_G swaps the roles."""
    ragan, ns = LOSSES.get("ragan"), LOSSES.get("ns")
    real, fake = torch.randn(7, generator=torch.Generator().manual_seed(1)), torch.randn(5)
    relative_real, relative_fake = real - fake.mean(), fake - real.mean()
    assert_close(ragan.d(real, fake, {}), 0.5 * ns.d(relative_real, relative_fake, {}))
    assert_close(ragan.g(fake, {}, real), 0.5 * ns.d(relative_fake, relative_real, {}))
    # Only the other batch's mean matters: reorder it, or change it at the same mean.
    assert_close(ragan.d(real, fake.flip(0), {}), ragan.d(real, fake, {}))
    same_mean = torch.full_like(fake, float(fake.mean()))
    assert_close(
        ragan.d(real, fake, {}) - 0.5 * softplus(fake - real.mean()).mean(),
        ragan.d(real, same_mean, {}) - 0.5 * softplus(same_mean - real.mean()).mean(),
    )


@pytest.mark.parametrize("name", ["rsgan", "ragan"])
def test_relativistic_losses_ignore_a_common_shift_of_the_logits(name):
    loss = LOSSES.get(name)
    shift = 3.7
    assert_close(
        loss.d(PAIRED_REAL + shift, PAIRED_FAKE + shift, {}), loss.d(PAIRED_REAL, PAIRED_FAKE, {})
    )
    assert_close(
        loss.g(PAIRED_FAKE + shift, {}, PAIRED_REAL + shift),
        loss.g(PAIRED_FAKE, {}, PAIRED_REAL),
    )


# ---- targets: label smoothing and flipping ---------------------------------------------------


@pytest.mark.parametrize("name", ["mm", "ns", "ls"])
def test_loss_with_targets_one_and_zero_is_the_loss(name):
    loss = LOSSES.get(name)
    ones, zeros = torch.ones_like(REAL), torch.zeros_like(FAKE)
    assert_close(loss.d_targets(REAL, FAKE, ones, zeros, {}), loss.d(REAL, FAKE, {}))


def test_smoothed_targets_pinned():
    """Real target 0.9 (one-sided smoothing with alpha = 0.1), fake target 0."""
    real_t, fake_t = torch.full_like(REAL, 0.9), torch.zeros_like(FAKE)
    ns = LOSSES.get("ns").d_targets(REAL, FAKE, real_t, fake_t, {})
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert_close(ns, bce(REAL, real_t) + bce(FAKE, fake_t))  # an independent formula
    by_hand = mean(0.9 * sp(-r) + 0.1 * sp(r) for r in REAL.tolist()) + mean(
        sp(f) for f in FAKE.tolist()
    )
    assert float(ns) == pytest.approx(by_hand, abs=1e-6)
    # 0.9 sp(-l) + 0.1 sp(l) = sp(-l) + 0.1 l: the unsmoothed 1.688115 + 0.1 E l(x) (= -1/3).
    assert float(ns) == pytest.approx(1.654782, abs=1e-6)
    ls = LOSSES.get("ls").d_targets(REAL, FAKE, real_t, fake_t, {})
    expected = 0.5 * (
        mean((sig(r) - 0.9) ** 2 for r in REAL.tolist()) + mean(sig(f) ** 2 for f in FAKE.tolist())
    )
    assert float(ls) == pytest.approx(expected, abs=1e-6)
    # 1/2 ((0.16 + 0.028541 + 0.609644) / 3 + (0.387455 + 0.072329) / 2)
    assert float(ls) == pytest.approx(0.247977, abs=1e-6)


def _targets(real, fake, smoothing, flip, generator):
    """discriminator_targets for one batch (a population of one)."""
    real_t, fake_t = discriminator_targets(
        real[None], fake[None], smoothing, flip, single_stream_uniform(generator)
    )
    return real_t[0], fake_t[0]


def test_discriminator_targets_pinned_on_a_seed():
    real, fake = torch.zeros(8), torch.zeros(8)
    real_t, fake_t = _targets(real, fake, 0.1, 0.25, torch.Generator().manual_seed(0))
    assert real_t.tolist() == pytest.approx([0.9, 0.9, 0, 0, 0.9, 0.9, 0.9, 0.9])
    assert fake_t.tolist() == pytest.approx([0, 0, 0, 0, 0.9, 0.9, 0, 0])
    # The same draws, independently: real flips first, then fake flips, each U[0,1) < p.
    draws = torch.Generator().manual_seed(0)
    flip_real = (torch.rand(8, generator=draws) < 0.25).tolist()
    flip_fake = (torch.rand(8, generator=draws) < 0.25).tolist()
    assert real_t.tolist() == pytest.approx([0.0 if f else 0.9 for f in flip_real])
    assert fake_t.tolist() == pytest.approx([0.9 if f else 0.0 for f in flip_fake])


def test_without_flipping_the_targets_draw_nothing():
    rng = torch.Generator().manual_seed(5)
    state = rng.get_state()
    real_t, fake_t = _targets(torch.zeros(4), torch.zeros(3), 0.2, 0.0, rng)
    assert real_t.tolist() == pytest.approx([0.8] * 4) and fake_t.tolist() == [0.0] * 3
    assert torch.equal(rng.get_state(), state)


@pytest.mark.parametrize(
    ("name", "has_targets"),
    [
        ("mm", True),
        ("ns", True),
        ("ls", True),
        ("wgan", False),
        ("hinge", False),
        ("began", False),
        ("rsgan", False),
        ("ragan", False),
    ],
)
def test_which_losses_have_targets(name, has_targets):
    assert (LOSSES.get(name).d_targets is not None) is has_targets

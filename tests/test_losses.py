"""Loss values on hand-computed logits, and what separates MM from NS."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from benchmark.losses import LOSSES, Loss

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
    hp = SimpleNamespace(lambda_k=1e-3, gamma=0.75)
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

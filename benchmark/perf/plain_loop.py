"""The plain eager training loop a researcher would write: the baseline `bench` measures against.

`EagerBaseline` trains one trial with the same networks, losses, penalties and schedule as
`GANTraining`, but without its speed levers:

- the dataset stays on the host and each batch is gathered there, converted to float and copied
  to the device every step (what a DataLoader over a tensor dataset does);
- the losses are read back with `.item()` every step, so the host waits for the device;
- Adam is the single-tensor (for-loop) implementation, neither fused nor multi-tensor;
- D's parameters keep requiring gradients in the G step;
- default memory format, fp32, no compile.

The step's maths and its random draws are those of `GANTraining`: on the CPU the batch indices
come from the same generator as the noise, in the same order, so both give the same losses for
the same seed (tests/training/test_speed_equivalence.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.config import TrialConfig
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES, discriminator_targets
from benchmark.networks import clip_parameters
from benchmark.penalties import PENALTIES
from benchmark.schedule import is_g_step
from benchmark.training.build import build_networks
from benchmark.training.stacked import single_stream_uniform


class EagerBaseline:
    """One trial's networks and optimisers, stepped the straightforward way."""

    def __init__(self, trial: TrialConfig, train_images: Tensor, device: torch.device) -> None:
        self.trial, self.device = trial, device
        self.images = train_images.cpu()  # uint8 (N, C, H, W) on the host
        self.g, self.d = build_networks(trial, tuple(train_images.shape[1:]), device)
        adam = dict(
            lr=trial.lr, betas=(trial.beta1, trial.beta2), eps=1e-8, foreach=False, fused=False
        )
        self.g_opt = torch.optim.Adam(self.g.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.d.parameters(), **adam)
        self.loss = LOSSES.get(trial.loss)
        self.penalty = PENALTIES.get(trial.penalty)
        self.loss_state = self.loss.initial_state(device)
        self.latent = LATENTS.get(trial.latent)
        self.rng = torch.Generator(device=device)
        self.rng.manual_seed(trial.seed)
        self.uniform = single_stream_uniform(self.rng)  # penalties' and targets' draws
        # A sampler draws on the host; on a CPU device it shares the noise generator.
        self.host_rng = (
            self.rng if device.type == "cpu" else torch.Generator().manual_seed(trial.seed)
        )
        self.step = 0
        self.g_steps = 0
        self.last: dict[str, float] = {"d_loss": 0.0, "g_loss": 0.0}

    def real_batch(self) -> Tensor:
        index = torch.randint(len(self.images), (self.trial.batch_size,), generator=self.host_rng)
        dtype = next(self.d.parameters()).dtype  # float32, or float64 in an exactness test
        batch = self.images[index].to(dtype)
        if self.images.dtype == torch.uint8:  # images to [0, 1]; points are used as stored
            batch = batch.div_(255)
        return batch.to(self.device)

    def train_step(self) -> None:
        """The reference step (see `GANTraining.train_step`), written the plain way."""
        trial = self.trial
        real = self.real_batch()
        z = self.latent.sample(trial.batch_size, trial.z_dim, self.rng, self.device)
        with torch.no_grad():
            fake = self.g(z)
        real_out, fake_out = self.d(real), self.d(fake)
        if trial.label_smoothing > 0 or trial.label_flip > 0:
            real_t, fake_t = discriminator_targets(
                real_out[None],
                fake_out[None],
                trial.label_smoothing,
                trial.label_flip,
                self.uniform,
            )
            d_loss = self.loss.d_targets(real_out, fake_out, real_t[0], fake_t[0], self.loss_state)
        else:
            d_loss = self.loss.d(real_out, fake_out, self.loss_state)
        if trial.lam is not None:
            # Penalties take a population's stacked batches: this one is a population of one.
            d = lambda points: self.d(points[0])[None]  # noqa: E731
            penalty = self.penalty(d, real[None], fake[None], self.uniform)[0]
            d_loss = d_loss + trial.lam * penalty
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        if trial.clip is not None:
            clip_parameters(self.d, trial.clip)
        self.last["d_loss"] = d_loss.item()
        if is_g_step(self.step, trial.n_disc):
            if trial.resample_z_for_g:
                z = self.latent.sample(trial.batch_size, trial.z_dim, self.rng, self.device)
            if trial.resample_real_for_g:
                real = self.real_batch()
            fake_out = self.d(self.g(z))
            if self.loss.g_needs_real:
                g_loss = self.loss.g(fake_out, self.loss_state, self.d(real))
            else:
                g_loss = self.loss.g(fake_out, self.loss_state)
            self.g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_opt.step()
            self.last["g_loss"] = g_loss.item()
            self.g_steps += 1
        if self.loss.after_step is not None:
            with torch.no_grad():
                real_out, fake_out = self.d(real), self.d(self.g(z))
            hparams = {name: torch.tensor(getattr(trial, name)) for name in self.loss.needs}
            self.loss_state = self.loss.after_step(self.loss_state, real_out, fake_out, hparams)
        self.last.update({name: value.item() for name, value in self.loss_state.items()})
        self.step += 1

    def losses(self) -> dict[str, float]:
        """The latest losses and loss state, as `GANTraining.losses` returns them."""
        return dict(self.last)

"""Many copies of one network trained as one program: stacked weights and a vectorised Adam.

A population (benchmark/trainer.py) holds M trials that share every structural choice and
differ in numbers (lr, beta1, beta2, clip, lambda, gamma, lambda_k, seed). Each network is
stored once for all M members:

- the parameters as one flat (M, P) tensor, the autograd leaf, so that Adam and clipping are
  a handful of elementwise kernels for the whole population whatever the layer count, and the
  gradients of all layers land in one tensor (split's backward is a single concatenation);
- the buffers (batch norm's running statistics) as (M, ...) tensors, updated in place.

A forward pass maps inputs (M, B, ...) to outputs (M, B, ...): `torch.func.vmap` over
`functional_call` of one prototype module. A population of one calls the prototype directly
on member 0's views, with no vmap, so the single-trial path keeps every option a vmapped
call lacks (spectral norm's in-place power iteration, torch.compile, channels_last) and runs
the same step code as any population.

`StackedAdam` is Adam with one lr, beta1 and beta2 per member (`torch.optim.Adam` takes one
per parameter group, and a group per member would step M times); its update is PyTorch's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap


def per_member(values: Tensor, like: Tensor) -> Tensor:
    """(M,) values shaped to broadcast over a stacked (M, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))


class StackedNetwork:
    """M networks of one architecture as stacked tensors; call it on (M, B, ...) inputs."""

    def __init__(
        self, modules: Sequence[nn.Module], memory_format: torch.memory_format | None = None
    ) -> None:
        """`memory_format`: the layout of image inputs in a population of one."""
        self.prototype = modules[0]
        self.memory_format = memory_format
        named = list(self.prototype.named_parameters())
        self.names = [name for name, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        params, buffers = stack_module_state(list(modules))
        with torch.no_grad():
            flat = torch.cat([params[n].flatten(1) for n in self.names], dim=1)
        self.flat = flat.requires_grad_(True)  # (M, P): the leaf Adam updates
        self.buffers = buffers  # name -> (M, ...)
        self.forward: Callable[..., Tensor] = self._call_prototype

    @property
    def size(self) -> int:
        return self.flat.shape[0]

    def _params(self) -> dict[str, Tensor]:
        """Views of the flat leaf, name -> (M, *shape)."""
        chunks = self.flat.split(self.sizes, dim=1)
        m = self.flat.shape[0]
        return {n: c.view(m, *s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}

    def _call_prototype(self, params, buffers, x: Tensor) -> Tensor:
        return functional_call(self.prototype, (params, buffers), (x,))

    def __call__(self, x: Tensor) -> Tensor:
        return self._run(self.forward, x)

    def eager(self, x: Tensor) -> Tensor:
        """The call never compiled: a penalty's double backward needs it."""
        return self._run(self._call_prototype, x)

    def _run(self, forward: Callable[..., Tensor], x: Tensor) -> Tensor:
        params = self._params()
        if self.size == 1:  # no vmap: every module option works (see the module docstring)
            one = {n: t[0] for n, t in params.items()}
            x = x[0]
            if self.memory_format is not None and x.dim() == 4:
                x = x.contiguous(memory_format=self.memory_format)
            return forward(one, {n: b[0] for n, b in self.buffers.items()}, x).unsqueeze(0)
        return vmap(forward)(params, self.buffers, x)

    def compile(self, mode: str | None) -> None:
        """Compile the prototype's functional forward (a population of one only)."""
        self.forward = torch.compile(self._call_prototype, mode=mode)

    def requires_grad_(self, flag: bool) -> None:
        self.flat.requires_grad_(flag)

    def member_state(self, i: int) -> dict[str, Tensor]:
        """Member i's weights and buffers as the prototype's state_dict (detached copies)."""
        params = self._params()
        state = {n: params[n][i].detach().clone() for n in self.names}
        state.update({n: b[i].clone() for n, b in self.buffers.items()})
        return state

    def load_member_state(self, i: int, state: dict[str, Tensor]) -> None:
        params = self._params()
        with torch.no_grad():
            for n in self.names:
                params[n][i].copy_(state[n])
            for n, b in self.buffers.items():
                b[i].copy_(state[n])

    def member_module(self, i: int) -> nn.Module:
        """The prototype holding member i's weights: for sampling and evaluation."""
        self.prototype.load_state_dict(self.member_state(i))
        return self.prototype

    def select(self, keep: Tensor) -> None:
        """Keep only the members at the indices `keep` (the others leave the population)."""
        with torch.no_grad():
            self.flat = self.flat[keep].requires_grad_(self.flat.requires_grad)
            self.buffers = {n: b[keep] for n, b in self.buffers.items()}

    def clamp_(self, bound: Tensor) -> None:
        """WGAN's clipping: every parameter of member i into [-bound_i, bound_i]."""
        with torch.no_grad():
            limit = per_member(bound, self.flat).to(self.flat.dtype)
            torch.clamp(self.flat, -limit, limit, out=self.flat)


class StackedAdam:
    """Adam (Kingma & Ba 2015, PyTorch's form: eps added to sqrt(v_hat)) over stacked (M, P)
    leaves, with per-member lr, beta1 and beta2, all (M,) float64 tensors. Every member steps
    together, so one step count serves all."""

    def __init__(
        self, network: StackedNetwork, lr: Tensor, beta1: Tensor, beta2: Tensor, eps: float = 1e-8
    ) -> None:
        self.network = network
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.exp_avg = torch.zeros_like(network.flat, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(network.flat, requires_grad=False)
        self.steps = 0

    def zero_grad(self) -> None:
        self.network.flat.grad = None

    def step(self) -> None:
        flat = self.network.flat
        grad = flat.grad
        self.steps += 1
        dtype = flat.dtype
        # Bias corrections in float64, as torch.optim.Adam computes them (in Python floats).
        beta1, beta2 = per_member(self.beta1, flat), per_member(self.beta2, flat)
        step_size = (per_member(self.lr, flat) / (1 - beta1**self.steps)).to(dtype)
        bias_correction2_sqrt = (1 - beta2**self.steps).sqrt().to(dtype)
        with torch.no_grad():
            self.exp_avg.lerp_(grad, (1 - beta1).to(dtype))
            # (1 - beta2) g g in torch's order of multiplication, so the same bits come out.
            self.exp_avg_sq.mul_(beta2.to(dtype)).addcmul_((1 - beta2).to(dtype) * grad, grad)
            denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            flat.sub_(step_size * self.exp_avg / denom)  # addcdiv's order: (s m) / denom

    def member_state(self, i: int) -> dict[str, Tensor | int]:
        return {
            "exp_avg": self.exp_avg[i].clone(),
            "exp_avg_sq": self.exp_avg_sq[i].clone(),
            "steps": self.steps,
        }

    def load_member_state(self, i: int, state: dict) -> None:
        self.exp_avg[i].copy_(state["exp_avg"])
        self.exp_avg_sq[i].copy_(state["exp_avg_sq"])
        self.steps = state["steps"]

    def select(self, keep: Tensor) -> None:
        self.exp_avg, self.exp_avg_sq = self.exp_avg[keep], self.exp_avg_sq[keep]
        self.lr, self.beta1, self.beta2 = self.lr[keep], self.beta1[keep], self.beta2[keep]


class MemberStreams:
    """Each member's own random stream (a torch.Generator seeded with its trial's seed). A draw
    returns (M, *shape): member i's slice is drawn from its own generator exactly as a trial
    alone draws it, so a member's random numbers never depend on its neighbours."""

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.device = device
        self.generators = []
        for seed in seeds:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
            self.generators.append(generator)

    def draw(self, sample: Callable[[torch.Generator], Tensor]) -> Tensor:
        """Stack one draw per member: `sample(generator)` is one member's."""
        return torch.stack([sample(generator) for generator in self.generators])

    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """U[0, 1) of shape (M, *shape)."""
        return self.draw(
            lambda g: torch.rand(tuple(shape), generator=g, device=self.device, dtype=dtype)
        )

    def select(self, keep: Sequence[int]) -> None:
        self.generators = [self.generators[i] for i in keep]

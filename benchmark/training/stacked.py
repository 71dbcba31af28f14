"""Many copies of one network trained as one program: stacked weights and a vectorised Adam.

A population (benchmark/training/loop.py) holds M trials that share every structural choice and
differ in numbers (lr, beta1, beta2, clip, lambda, gamma, lambda_k, seed). Each network is
stored once for all M members:

- the parameters as one flat tensor, the autograd leaf, laid out member by member: member i's
  weights are row i of its (M, P) view, parameter after parameter in the prototype's order.
  A layer's weights are then an (M, *shape) view whose matrices are contiguous, which batched
  matrix products take without a copy; the gradients of all layers land in one tensor
  (split's backward is one concatenation); and every elementwise update (Adam, clipping) is
  one pass over the (M, P) view with (M, 1) per-member coefficients, a single loop in a
  compiled step (benchmark/training/compiled.py);
- the buffers (batch norm's running statistics) as (M, ...) tensors, updated in place.

A forward pass maps inputs (M, B, ...) to outputs (M, B, ...) through the network's
member-batched layers (stacked_layers.py), for every population size, one included:
a member's numbers do not depend on how many members share its steps. A network with an
option those layers lack (spectral norm's parametrization; channels_last, which tunes one
network's convolutions) trains alone and calls its own module directly.

`StackedAdam` is Adam with one lr, beta1 and beta2 per member (`torch.optim.Adam` takes one
per parameter group, and a group per member would step M times); its update is PyTorch's,
done on the (M, P) view of the flat weights with (M, 1) coefficients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from benchmark.training.stacked_layers import can_stack, stack_layers


class StackedNetwork:
    """M networks of one architecture as stacked tensors; call it on (M, B, ...) inputs."""

    def __init__(
        self,
        modules: Sequence[nn.Module],
        memory_format: torch.memory_format | None = None,
        plain: bool = False,
    ) -> None:
        """`plain`: call the module itself (a population of one whose options the stacked
        layers lack, see the module docstring); `memory_format`: its image inputs' layout."""
        self.prototype = modules[0]
        self.memory_format = memory_format
        named = list(self.prototype.named_parameters())
        self.names = [name for name, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        params, buffers = stack_module_state(list(modules))
        self.members = len(modules)
        with torch.no_grad():
            rows = [params[n].reshape(self.members, -1) for n in self.names]
            flat = torch.cat(rows, dim=1).flatten()
        self.flat = flat.requires_grad_(True)  # member-major: see the module docstring
        self.buffers = buffers  # name -> (M, ...)
        self.plain = plain or not can_stack(self.prototype)
        if self.plain and self.members != 1:
            raise ValueError("a network without stacked layers trains alone (population of one)")
        if self.plain:
            self.forward: Callable[..., Tensor] = self._call_prototype
        else:
            self.stacked, self.binding = stack_layers(self.prototype)
            self.forward = self._call_stacked

    @property
    def size(self) -> int:
        return self.members

    def rows(self, tensor: Tensor) -> Tensor:
        """The (M, P) view of a tensor laid out as `flat` (the weights, their gradient, Adam's
        moments): row i is member i's, so an elementwise per-member update (Adam, clipping)
        is a handful of kernels with (M, 1) coefficients, as a fused optimiser's is."""
        return tensor.view(self.members, -1)

    def blocks(self, tensor: Tensor) -> list[Tensor]:
        """(M, n) views of a tensor laid out as `flat`, one per parameter."""
        return list(self.rows(tensor).split(self.sizes, dim=1))

    def _params(self) -> dict[str, Tensor]:
        """Views of the flat leaf, name -> (M, *shape), each contiguous."""
        blocks = self.blocks(self.flat)
        m = self.members
        return {n: b.view(m, *s) for n, b, s in zip(self.names, blocks, self.shapes, strict=True)}

    def _call_stacked(self, x: Tensor, *extra: Tensor) -> Tensor:
        self.binding.params = self._params()
        self.binding.buffers = self.buffers
        return self.stacked(x, *extra)

    def _call_prototype(self, x: Tensor, *extra: Tensor) -> Tensor:
        params = {n: t[0] for n, t in self._params().items()}
        buffers = {n: b[0] for n, b in self.buffers.items()}
        x = x[0]
        if self.memory_format is not None and x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        inputs = (x, *(e[0] for e in extra))
        return functional_call(self.prototype, (params, buffers), inputs).unsqueeze(0)

    def __call__(self, x: Tensor, *extra: Tensor) -> Tensor:
        """Outputs (M, B, ...) of inputs (M, B, ...); `extra` are further per-member inputs
        (M, B, ...), such as a conditional network's labels."""
        out = self.forward(x, *extra)
        if out.shape[:2] != x.shape[:2]:
            # A network (a plugin's, most likely) that takes dimension 0 for the batch: its
            # forward sees (M, B, ...) when stacked (docs/extending.md, "Adding a network").
            raise ValueError(
                f"network {type(self.prototype).__name__} returned shape {tuple(out.shape)} "
                f"for inputs of shape {tuple(x.shape)}: its forward must keep every leading "
                "dimension of its input (the member axis M, then the batch B), e.g. "
                "x.flatten(-3) rather than x.view(x.size(0), -1) "
                "(docs/extending.md, 'Adding a network')"
            )
        return out

    def train(self, mode: bool = True) -> None:
        """Training (batch statistics) or eval mode (running statistics) for its calls."""
        self.prototype.train(mode)
        if not self.plain:
            self.stacked.train(mode)

    def requires_grad_(self, flag: bool) -> None:
        self.flat.requires_grad_(flag)

    def finite(self) -> Tensor:
        """(M,) bool: whether all of member i's weights and floating-point buffers (batch
        norm's running statistics, which eval mode uses) are finite."""
        with torch.no_grad():
            ok = torch.isfinite(self.rows(self.flat)).all(dim=1)
            for buffer in self.buffers.values():
                if buffer.is_floating_point():
                    ok &= torch.isfinite(buffer.reshape(self.members, -1)).all(dim=1)
        return ok

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

    def clamp_(self, bound: Tensor) -> None:
        """WGAN's clipping: every parameter of member i into [-bound_i, bound_i]."""
        with torch.no_grad():
            rows, limit = self.rows(self.flat), bound.to(self.flat.dtype).view(-1, 1)
            torch.clamp(rows, -limit, limit, out=rows)


class StackedAdam:
    """Adam (Kingma & Ba 2015, PyTorch's form: eps added to sqrt(v_hat)) over a stacked
    network's flat weights, with per-member lr, beta1 and beta2, all (M,) float64 tensors.
    Every member steps together, so one step count serves all."""

    def __init__(
        self, network: StackedNetwork, lr: Tensor, beta1: Tensor, beta2: Tensor, eps: float = 1e-8
    ) -> None:
        self.network = network
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.exp_avg = torch.zeros_like(network.flat, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(network.flat, requires_grad=False)
        self.steps = 0
        # Each member's fixed coefficients, (M, 1) columns in the weights' dtype.
        dtype = network.flat.dtype
        self.weight1, self.decay2, self.weight2 = (
            c.to(dtype).view(-1, 1) for c in (1 - beta1, beta2, 1 - beta2)
        )
        self.step_size = self.bias_correction2_sqrt = torch.zeros_like(self.weight1)

    def advance(self) -> None:
        """Count one more step and set its bias corrections, (M, 1) in the weights' dtype:
        computed in float64, as torch.optim.Adam computes them (in Python floats). Outside
        `step`, so that a compiled step (compiled.py) reads them as inputs."""
        self.steps += 1
        dtype = self.network.flat.dtype
        self.step_size = (self.lr / (1 - self.beta1**self.steps)).to(dtype).view(-1, 1)
        self.bias_correction2_sqrt = (1 - self.beta2**self.steps).sqrt().to(dtype).view(-1, 1)

    def step(self, grad: Tensor) -> None:
        """Update the weights in place with `grad` (laid out as the flat weights), using the
        bias corrections of the last `advance`: the operations of torch.optim.Adam's update
        in its order, so that a member gets the bits of its trial under torch.optim.Adam."""
        rows = self.network.rows
        param, grad, exp_avg, exp_avg_sq = (
            rows(t) for t in (self.network.flat, grad, self.exp_avg, self.exp_avg_sq)
        )
        with torch.no_grad():
            exp_avg.lerp_(grad, self.weight1)
            exp_avg_sq.mul_(self.decay2).addcmul_(self.weight2 * grad, grad)
            denom = (exp_avg_sq.sqrt() / self.bias_correction2_sqrt).add_(self.eps)
            param.sub_(self.step_size * exp_avg / denom)  # addcdiv's order: (s m) / denom

    def member_state(self, i: int) -> dict[str, Tensor | int]:
        """Member i's moments, each flattened in parameter order."""
        return {
            "exp_avg": self.network.rows(self.exp_avg)[i].clone(),
            "exp_avg_sq": self.network.rows(self.exp_avg_sq)[i].clone(),
            "steps": self.steps,
        }

    def load_member_state(self, i: int, state: dict) -> None:
        with torch.no_grad():
            for name in ("exp_avg", "exp_avg_sq"):
                self.network.rows(getattr(self, name))[i].copy_(state[name])
        self.steps = state["steps"]


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
        """Stack one draw per member: `sample(generator)` is one member's (a `PerMember`
        draw takes the member's index instead and leaves its stream alone)."""
        from benchmark.training.order import PerMember

        if isinstance(sample, PerMember):
            return torch.stack([sample(i) for i in range(len(self.generators))])
        return torch.stack([sample(generator) for generator in self.generators])

    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """U[0, 1) of shape (M, *shape)."""
        return self.draw(
            lambda g: torch.rand(tuple(shape), generator=g, device=self.device, dtype=dtype)
        )


def single_stream_uniform(generator: torch.Generator) -> Callable[..., Tensor]:
    """The `uniform(shape, dtype)` of a population of one drawing from `generator`: U[0, 1) of
    shape (1, *shape), as `MemberStreams.uniform` draws it for one member."""

    def uniform(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        draw = torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=dtype)
        return draw[None]

    return uniform

"""A network's layers for M members at once: the batched kernels a population calls.

`stack_layers(prototype)` copies a network and swaps each layer that holds weights for its
member-batched counterpart; the network's own forward code runs unchanged on inputs with a
leading member axis, (M, B, ...) -> (M, B, ...) (the registered networks index features from
the end: `Flatten(-3)`, `unflatten(-1, ...)`, `squeeze(-1)`). The weights are not the copy's:
before each call `Binding` hands every layer its (M, *shape) views of the population's flat
weights and its (M, ...) buffers, by the prototype's parameter names.

The kernels are chosen so that a member's numbers do not depend on how many members share the
call (measured on the CPU, one intra-op thread; `tests/training/test_stacked_layers.py` checks every
layer shape of the registered families at sizes 1, 3 and 16):
- linear: one batched matrix product (`baddbmm`), which the CPU runs matrix by matrix with
  the same kernel whatever the batch count; except a layer with one output, whose product
  is a matrix-vector one that the CPU runs on another path for a batch of one than for many,
  so it is an elementwise product and a sum over the features instead;
- convolutions: each member's own call (`F.conv2d` on its (B, C, H, W) slice), so a member
  computes exactly what it computes alone, and a population of large convolutional networks
  never costs more than its members one after another (a grouped convolution would need an
  input copy per call and another algorithm choice per group count);
- batch norm: the batch statistics over each member's own batch (and pixels), from
  elementwise operations and reductions over the batch axis;
- layer norm: each sample's statistics over its own features, as alone;
- embedding (a conditional network's labels, benchmark/conditional.py): each member's own
  lookup (`F.embedding` of its (B,) labels in its (K, E) table): a copy, no arithmetic, and
  its gradient is summed as the member's alone sums it.
One condition is the batch's: elementwise kernels compute a tensor's last elements (beyond
its last whole pair of 16-float AVX-512 vectors) on a scalar path whose transcendental
functions (exp, log, tanh in the losses) round differently, so D's outputs (M, B) keep a
member's bits only when B is a multiple of 32 (`BIT_EXACT_BATCH`), as the study's 64 is: at
batch 8 a member of 16 drifted from its trial alone by rounding. `population = "auto"` groups
no trials of another batch size on a CPU.
Replacing vmap over `functional_call` (which turned each linear layer's weight gradient into a
transposed copy and each convolution into a grouped one with reshaping copies) made a
population pay: see docs/populations.md.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.networks import LN_EPS, LayerNorm

BIT_EXACT_BATCH = 32  # see the module docstring


class Binding:
    """The tensors a stacked network's layers read during one call: name -> (M, *shape)."""

    def __init__(self) -> None:
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}


class _Stacked(nn.Module):
    """A layer that reads its weights from a `Binding` by the prototype's names."""

    def __init__(self, binding: Binding, prefix: str) -> None:
        super().__init__()
        self.binding = binding
        self.prefix = prefix

    def param(self, name: str) -> Tensor | None:
        return self.binding.params.get(self.prefix + name)

    def buffer(self, name: str) -> Tensor:
        return self.binding.buffers[self.prefix + name]

    def check_members(self, x: Tensor, rank: int) -> None:
        """Refuse an input without the member axis in front (of `rank` dimensions at least): a
        network whose forward folds it into the batch would otherwise fail in a shape error
        that names neither the cause nor the network."""
        members = self.param("weight").shape[0]
        if x.dim() < rank or x.shape[0] != members:
            layer = self.prefix.rstrip(".") or "the network itself"
            raise ValueError(
                f"layer {layer!r} ({type(self).__name__}) got input of shape "
                f"{tuple(x.shape)}, not (M={members}, B, ...): a network's forward must keep "
                "the member axis and the batch axis in front of each sample's own, e.g. "
                "x.flatten(-3) rather than x.view(x.size(0), -1) "
                "(docs/extending.md, 'Adding a network')"
            )


class _BatchedLinear(torch.autograd.Function):
    """x W^T + b per member, with the weight gradient computed as g^T x, (M, out, in) in the
    weights' own layout: autograd's gradient of `baddbmm(b, x, W^T)` is (x^T g)^T, a
    transposed view that the flat weights' view then copies, a full copy of every weight
    gradient on every backward pass (a quarter of an InfoGAN step on the CPU). The backward
    is written in differentiable operations, so a penalty's double backward goes through it."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(dim=1) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


# A layer with this few inputs or outputs (a point network's 2-D input or output, a
# discriminator's one logit) is an elementwise product and a sum, not a matrix product: the
# CPU's batched product runs such shapes about 20 times below its rate for square ones (3 of
# 60 GFLOP/s), and a compiled step fuses the product and sum into the layers around it.
THIN = 4


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """(M, B, in) x (M, out, in) [+ (M, out)] -> (M, B, out), member by member."""
    out_features, in_features = weight.shape[1], weight.shape[2]
    if out_features == 1:  # a matrix-vector product: see the module docstring
        out = (x * weight).sum(dim=-1, keepdim=True)
        return out if bias is None else out + bias.unsqueeze(1)
    if out_features <= THIN:  # (M, B, 1, in) * (M, 1, out, in), summed over in
        out = (x.unsqueeze(2) * weight.unsqueeze(1)).sum(dim=-1)
        return out if bias is None else out + bias.unsqueeze(1)
    if in_features <= THIN:  # (M, B, in, 1) * (M, 1, in, out), summed over in
        out = (x.unsqueeze(3) * weight.transpose(1, 2).unsqueeze(1)).sum(dim=2)
        return out if bias is None else out + bias.unsqueeze(1)
    if bias is None or torch.is_autocast_enabled(x.device.type):
        # (under autocast, the products' own backward: it runs in the forward's precision)
        product = torch.bmm(x, weight.transpose(1, 2))
        return product if bias is None else product + bias.unsqueeze(1)
    return _BatchedLinear.apply(x, weight, bias)


class StackedLinear(_Stacked):
    def forward(self, x: Tensor) -> Tensor:
        self.check_members(x, 3)
        return linear(x, self.param("weight"), self.param("bias"))


class StackedConv(_Stacked):
    """Conv2d or ConvTranspose2d: each member's own call on its slice."""

    def __init__(self, binding: Binding, prefix: str, layer: nn.Conv2d | nn.ConvTranspose2d):
        super().__init__(binding, prefix)
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        self.options = {"stride": layer.stride, "padding": layer.padding}
        if self.transposed:
            self.options["output_padding"] = layer.output_padding

    def forward(self, x: Tensor) -> Tensor:
        self.check_members(x, 5)
        weight, bias = self.param("weight"), self.param("bias")
        call = F.conv_transpose2d if self.transposed else F.conv2d
        # unbind, not x[i]: its backward stacks the members' gradients once, where indexing's
        # would write each into a zero tensor of all members' size (M^2 traffic).
        biases = [None] * len(weight) if bias is None else bias.unbind(0)
        outs = [
            call(xi, wi, bi, **self.options)
            for xi, wi, bi in zip(x.unbind(0), weight.unbind(0), biases, strict=True)
        ]
        return outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)


class StackedBatchNorm(_Stacked):
    """The project's batch norm (benchmark.networks: TensorFlow's biased moving variance) per
    member: in training mode, normalised with each member's batch statistics (over its batch
    and pixels), which also move its running statistics; in eval mode, with those."""

    def __init__(self, binding: Binding, prefix: str, layer: nn.modules.batchnorm._BatchNorm):
        super().__init__(binding, prefix)
        self.eps, self.momentum = layer.eps, layer.momentum
        self.training = layer.training

    def forward(self, x: Tensor) -> Tensor:
        members, channels = x.shape[0], x.shape[2]
        shape = (members, 1, channels) + (1,) * (x.dim() - 3)  # broadcast over B and pixels
        running_mean, running_var = self.buffer("running_mean"), self.buffer("running_var")
        if self.training:
            dims = [1, *range(3, x.dim())]
            var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
            with torch.no_grad():
                running_mean.add_(mean.view(members, channels) - running_mean, alpha=self.momentum)
                running_var.add_(var.view(members, channels) - running_var, alpha=self.momentum)
                self.buffer("num_batches_tracked").add_(1)
        else:
            mean, var = running_mean.view(shape), running_var.view(shape)
        out = (x - mean) * torch.rsqrt(var + self.eps)
        weight, bias = self.param("weight"), self.param("bias")
        if weight is not None:
            out = out * weight.view(shape) + bias.view(shape)
        return out


class StackedLayerNorm(_Stacked):
    """The project's layer norm (benchmark.networks.LayerNorm) per member: each sample
    normalised over its own features, as alone, then member i's scale and shift per channel."""

    def __init__(self, binding: Binding, prefix: str, layer: nn.Module):
        super().__init__(binding, prefix)
        self.spatial = layer.spatial

    def forward(self, x: Tensor) -> Tensor:
        self.check_members(x, 3 if self.spatial else 2)
        dims = (-3, -2, -1) if self.spatial else (-1,)
        var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
        members, channels = x.shape[0], self.param("weight").shape[1]
        shape = (members, 1, channels) + ((1, 1) if self.spatial else ())
        out = (x - mean) * torch.rsqrt(var + LN_EPS)
        return out * self.param("weight").view(shape) + self.param("bias").view(shape)


class StackedEmbedding(_Stacked):
    """Labels (M, B) -> (M, B, E): member i's rows of its own (K, E) table."""

    def forward(self, labels: Tensor) -> Tensor:
        weight = self.param("weight")
        tables = zip(labels.unbind(0), weight.unbind(0), strict=True)  # unbind: see StackedConv
        return torch.stack([F.embedding(li, wi) for li, wi in tables])


# The layers that hold weights or statistics, and their member-batched counterparts. Anything
# else in a registered network (activations, Flatten(-3), Identity, Sequential) works on any
# leading axes as it is.
STACKED = {
    nn.Linear: StackedLinear,
    nn.Conv2d: StackedConv,
    nn.ConvTranspose2d: StackedConv,
    nn.BatchNorm1d: StackedBatchNorm,
    nn.BatchNorm2d: StackedBatchNorm,
    nn.Embedding: StackedEmbedding,
    LayerNorm: StackedLayerNorm,
}


def _counterpart(layer: nn.Module):
    for kind, stacked in STACKED.items():
        if isinstance(layer, kind):
            return stacked
    return None


def can_stack(prototype: nn.Module) -> bool:
    """Whether every layer with weights or buffers has a stacked counterpart (a layer with a
    parametrization, such as spectral norm, has none: such a network trains alone)."""
    for module in prototype.modules():
        if getattr(module, "parametrizations", None):
            return False
        own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        if own and _counterpart(module) is None:
            return False
    return True


def stack_layers(prototype: nn.Module) -> tuple[nn.Module, Binding]:
    """A copy of `prototype` whose weighted layers are member-batched, and their binding."""
    binding = Binding()
    network = copy.deepcopy(prototype)
    swaps = []
    for name, module in network.named_modules():
        stacked = _counterpart(module)
        if stacked is not None:
            prefix = f"{name}." if name else ""
            if stacked in (StackedLinear, StackedEmbedding):
                swaps.append((name, stacked(binding, prefix)))
            else:
                swaps.append((name, stacked(binding, prefix, module)))
    for name, replacement in swaps:
        if not name:  # the network is one layer
            return replacement, binding
        parent_name, _, child = name.rpartition(".")
        parent = network.get_submodule(parent_name) if parent_name else network
        setattr(parent, child, replacement)
    for parameter in network.parameters():  # the copy holds no weights of its own
        parameter.requires_grad_(False)
    return network, binding

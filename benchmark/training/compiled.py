"""The whole training step of a population as one compiled program.

`GANTraining.update` is the step written op by op: forward passes, two gradients (three where a
penalty differentiates D's gradient), Adam, clipping, batch norm's statistics, the loss's
state. Run that way, a small network's step is mostly the cost of calling ops: thousands
of calls and about a hundred unfused passes over activations per step. Here the same code
is traced once per kind of step (D only, or D and G) into one graph of tensor operations,
autograd's backward passes included (`make_fx` records the ops autograd runs, so a double
backward is as traceable as a forward), and that graph is compiled by `torch.compile`
(Inductor), which fuses the elementwise work around the matrix products into a few loops.

Random numbers stay the members' own streams: a draw needs a `torch.Generator`, which a
compiled program cannot take, so the program takes its draws as inputs. The first trace
records which draws the step makes, in order (a run of the step on copies of the state and
the generators: nothing advances); every step then draws exactly those, from each member's
own generator, before calling the program. A member consumes its stream as the eager step
does, so checkpoints, resumes and populations keep their meaning.

The program reads and writes the population's tensors in place (the flat weights, Adam's
moments, batch norm's statistics) and returns the losses and the loss state. It is a
function of those tensors' shapes alone: one compile per population structure and size,
which Inductor's cache keeps on disk, so the next population of the same structure (in this
process or another) loads it.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from benchmark.training.stacked import MemberStreams

if TYPE_CHECKING:
    from benchmark.training.step import GANTraining

# A gradient is the concatenation of its layers' gradients: fused into the elementwise update
# that reads it, Inductor would branch on the layer at every weight; written out first, the
# update is one plain loop over the (M, P) rows.
INDUCTOR_OPTIONS = {"max_pointwise_cat_inputs": 1, "max_complex_pointwise_cat_inputs": 1}

Sampler = Callable[[torch.Generator], Tensor]


class _Recorder:
    """Streams over copies of the members' generators that note each draw's sampler."""

    def __init__(self, streams: MemberStreams) -> None:
        self.streams = copy.copy(streams)
        self.streams.generators = []
        for generator in streams.generators:
            twin = torch.Generator(device=generator.device)
            twin.set_state(generator.get_state())
            self.streams.generators.append(twin)
        self.device = streams.device
        self.samplers: list[Sampler] = []
        self.draws: list[Tensor] = []

    def draw(self, sample: Sampler) -> Tensor:
        self.samplers.append(sample)
        self.draws.append(self.streams.draw(sample))
        return self.draws[-1].clone()

    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        device = self.device
        return self.draw(
            lambda g: torch.rand(tuple(shape), generator=g, device=device, dtype=dtype)
        )


class _Replay:
    """Streams that hand out a step's draws, made beforehand, in the order it asks for them."""

    def __init__(self, draws: Sequence[Tensor]) -> None:
        self.draws: Iterator[Tensor] = iter(draws)

    def draw(self, sample: Sampler) -> Tensor:
        return next(self.draws)

    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        return next(self.draws)


# Where the step's tensors live: (name, owner, attribute); a dict-valued attribute (buffers,
# loss state, hyperparameters) contributes one tensor per key, named "name.key".
def _slots(training: GANTraining) -> list[tuple[str, object, str]]:
    slots = [
        ("g", training.generator, "flat"),
        ("d", training.discriminator, "flat"),
        ("g.buffers", training.generator, "buffers"),
        ("d.buffers", training.discriminator, "buffers"),
        ("loss_state", training, "loss_state"),
    ]
    for name, opt in (("g_opt", training.g_opt), ("d_opt", training.d_opt)):
        slots += [(f"{name}.{key}", opt, key) for key in ADAM_STATE + ADAM_NUMBERS]
    slots += [(name, training, name) for name in ("images", "labels", "clip", "lam", "hparams")]
    return slots


ADAM_STATE = ("exp_avg", "exp_avg_sq")
ADAM_NUMBERS = ("weight1", "decay2", "weight2", "step_size", "bias_correction2_sqrt")
# What the step writes: the weights, Adam's moments, batch norm's statistics, the loss state.
UPDATED = ("g", "d", "g.buffers", "d.buffers", "loss_state") + tuple(
    f"{net}.{key}" for net in ("g_opt", "d_opt") for key in ADAM_STATE
)


def state_tensors(training: GANTraining) -> dict[str, Tensor]:
    """Every tensor the step reads that is not a constant of the population's structure: the
    state it updates, the data, and the members' numbers (lr, betas, clip, lambda, ...), so
    that one program serves every population of the same structure and size."""
    state = {}
    for name, owner, attribute in _slots(training):
        value = getattr(owner, attribute)
        if isinstance(value, dict):
            state.update({f"{name}.{key}": tensor for key, tensor in value.items()})
        elif value is not None:
            state[name] = value
    return state


def _bind(training: GANTraining, state: dict[str, Tensor]) -> None:
    """Point the population at `state`'s tensors (named as `state_tensors` names them)."""
    for name, owner, attribute in _slots(training):
        value = getattr(owner, attribute)
        if isinstance(value, dict):
            setattr(owner, attribute, {key: state[f"{name}.{key}"] for key in value})
        elif value is not None:
            setattr(owner, attribute, state[name])


def _updated(name: str) -> bool:
    return any(name == slot or name.startswith(f"{slot}.") for slot in UPDATED)


@contextmanager
def _bound(training: GANTraining, state: dict[str, Tensor], streams) -> Iterator[None]:
    """The population reading and writing `state`, drawing from `streams`, then restored."""
    saved, saved_streams = state_tensors(training), training.streams
    _bind(training, state)
    training.streams = streams
    try:
        yield
    finally:
        _bind(training, saved)
        training.streams = saved_streams


def _copies(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state with copies of what the step updates, the weights leaves that require a
    gradient: to run the step on without changing the population."""
    out = {
        name: value.detach().clone() if _updated(name) else value for name, value in state.items()
    }
    for name in ("g", "d"):
        out[name].requires_grad_(True)
    return out


class _Program:
    """One kind of step (D only, or D and G), traced and compiled."""

    def __init__(self, training: GANTraining, g_step: bool, backend: str | None) -> None:
        state = state_tensors(training)
        self.names = list(state)
        recorder = _Recorder(training.streams)
        with _bound(training, _copies(state), recorder):
            training.update(g_step)
        self.samplers, draws = recorder.samplers, recorder.draws
        self.updated = [name for name in self.names if _updated(name)]

        def step(tensors: list[Tensor], draws: list[Tensor]) -> list[Tensor]:
            # The step updates copies of its inputs and returns them: a program that wrote
            # into its inputs would compute each update aside and copy it in afterwards.
            bound = {
                name: tensor.detach().clone() if _updated(name) else tensor
                for name, tensor in zip(self.names, tensors, strict=True)
            }
            for name in ("g", "d"):
                bound[name].requires_grad_(True)
            with _bound(training, bound, _Replay(draws)):
                d_loss, g_loss = training.update(g_step)
                state = state_tensors(training)
            losses = [d_loss] + ([g_loss] if g_step else [])
            return losses + [state[name].detach() for name in self.updated]

        graph = make_fx(step)(list(_copies(state).values()), draws)
        _views_as_reshapes(graph)
        self.call = (
            graph
            if backend is None
            else torch.compile(graph, backend=backend, dynamic=False, options=INDUCTOR_OPTIONS)
        )
        self.g_step = g_step

    def __call__(self, training: GANTraining) -> tuple[Tensor, Tensor | None]:
        draws = [training.streams.draw(s) for s in self.samplers]
        state = state_tensors(training)
        with torch.no_grad():
            outs = self.call([state[name] for name in self.names], draws)
        losses = 2 if self.g_step else 1
        state.update(zip(self.updated, outs[losses:], strict=True))
        _bind(training, state)
        return outs[0], outs[1] if self.g_step else None


def _views_as_reshapes(graph: torch.fx.GraphModule) -> None:
    """Let every view copy where it must. The trace records autograd's reshapes as views,
    valid for the strides the step had when traced; the compiler may lay a result out
    otherwise (a convolution weight's gradient summed from a penalty's double backward came
    out transposed) and then refuses the view. A reshape of a tensor that can be viewed is
    still a view, so the in-place updates of the state, all on contiguous tensors, still
    write through."""
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target is torch.ops.aten.view.default:
            node.target = torch.ops.aten.reshape.default
    graph.recompile()


def compiler_missing() -> str | None:
    """Why Inductor cannot build CPU kernels here (no C++ compiler on the PATH), or None."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    if any(shutil.which(name) for name in names):
        return None
    return f"no C++ compiler found ({', '.join(names)}): torch.compile builds CPU kernels with one"


class CompiledStep:
    """A population's step as compiled programs, one per kind of step, made on first use."""

    def __init__(self, training: GANTraining, backend: str | None = "inductor") -> None:
        self.training = training
        self.backend = backend
        self.programs: dict[bool, _Program] = {}

    def run(self, g_step: bool) -> tuple[Tensor, Tensor | None]:
        program = self.programs.get(g_step)
        if program is None:
            program = self.programs[g_step] = _Program(self.training, g_step, self.backend)
        return program(self.training)

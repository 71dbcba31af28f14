"""A JAX program of the default 2-D mixture study's trial ("points networks"), used only as the
speed peer in `nox -s bench`: that session installs JAX for it; nothing else in ganbench imports
JAX, and this module imports without it (`available()` says whether it can run).

What matches ganbench's step, per member of a population:
- G: z (64, U[-1, 1]) -> FC128-tanh -> FC128-tanh -> FC2; D: x -> FC128-tanh -> FC128-tanh -> FC1
  (a logit, no batch norm); orthogonal weights with gain 1.4, zero biases; float32, batch 64.
- Real batches: 64 indices drawn uniformly with replacement from 10,000 points held on the device.
- Adam in PyTorch's form, one per network; members differ by lr (base * 1.1**i) and by seed.
- "ns": one D step then one G step on the same z, with the updated D (lr 5e-5, betas 0.0/0.999).
- "wgan_gp": G steps after D steps 0, 1, 6, 11, ... (n_disc 5), each on a fresh z; gradient
  penalty with lam 10 and sqrt(1e-4 + ||grad||^2) (lr 1e-4, betas 0.5/0.999).
A chunk of steps is one `lax.scan` of a member's step, `vmap`ped over the stacked members and
compiled as one `jit` call, so its figures are JAX's best case for this trial, not a port of ours.

`python -m benchmark.perf.jax_peer --model ns --members 16 --seconds 10` prints the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

Z_DIM, HIDDEN, X_DIM, BATCH, N_DATA = 64, 128, 2, 64, 10_000
EPS = 1e-8
# model -> (base lr, beta1, beta2)
HYPER = {"ns": (5e-5, 0.0, 0.999), "wgan_gp": (1e-4, 0.5, 0.999)}
N_DISC, GP_LAMBDA = 5, 10.0


def available() -> bool:
    return importlib.util.find_spec("jax") is not None


def _mlp_init(key, sizes):
    import jax
    import jax.numpy as jnp

    init = jax.nn.initializers.orthogonal(1.4)
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (init(k, (a, b), jnp.float32), jnp.zeros((b,), jnp.float32))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def _mlp(params, x):
    import jax.numpy as jnp

    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _adam(params, grads, opt, lr, b1, b2):
    import jax

    m, v, t = opt
    t = t + 1
    m = jax.tree.map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    step = lr / (1 - b1**t)
    root = (1 - b2**t) ** 0.5
    params = jax.tree.map(lambda p, m_, v_: p - step * m_ / (v_**0.5 / root + EPS), params, m, v)
    return params, (m, v, t)


def _member_init(key, lr):
    import jax
    import jax.numpy as jnp

    kg, kd, krun = jax.random.split(key, 3)
    g = _mlp_init(kg, [Z_DIM, HIDDEN, HIDDEN, X_DIM])
    d = _mlp_init(kd, [X_DIM, HIDDEN, HIDDEN, 1])

    def opt(p):
        zeros = jax.tree.map(jnp.zeros_like, p)
        return (zeros, zeros, jnp.zeros((), jnp.float32))

    loss = jnp.zeros((), jnp.float32)
    return {"g": g, "d": d, "og": opt(g), "od": opt(d), "key": krun, "lr": lr, "d_loss": loss}


def _make_chunk(model: str, chunk: int, steps_per_trial: int):
    import jax
    import jax.numpy as jnp
    from jax.nn import softplus

    _, b1, b2 = HYPER[model]

    def logit(d, x):
        return _mlp(d, x)[:, 0]

    def z_like(key):
        return jax.random.uniform(key, (BATCH, Z_DIM), jnp.float32, -1.0, 1.0)

    def ns_step(s, data, _index):
        key, kx, kz = jax.random.split(s["key"], 3)
        x = data[jax.random.randint(kx, (BATCH,), 0, N_DATA)]
        z = z_like(kz)
        fake = jax.lax.stop_gradient(_mlp(s["g"], z))

        def d_loss(d):
            return softplus(-logit(d, x)).mean() + softplus(logit(d, fake)).mean()

        loss, gd = jax.value_and_grad(d_loss)(s["d"])
        d, od = _adam(s["d"], gd, s["od"], s["lr"], b1, b2)
        # Same z, updated D: as ganbench's non-saturating step.
        gg = jax.grad(lambda g: softplus(-logit(d, _mlp(g, z))).mean())(s["g"])
        g, og = _adam(s["g"], gg, s["og"], s["lr"], b1, b2)
        return {**s, "g": g, "d": d, "og": og, "od": od, "key": key, "d_loss": loss}

    def wgan_step(s, data, index):
        key, kx, kz, ka, kg = jax.random.split(s["key"], 5)
        x = data[jax.random.randint(kx, (BATCH,), 0, N_DATA)]
        fake = jax.lax.stop_gradient(_mlp(s["g"], z_like(kz)))
        a = jax.random.uniform(ka, (BATCH, 1), jnp.float32)
        xt = x + a * (fake - x)

        def d_loss(d):
            grad_xt = jax.grad(lambda p: logit(d, p).sum())(xt)
            norm = jnp.sqrt(1e-4 + (grad_xt**2).sum(axis=1))
            gp = ((norm - 1) ** 2).mean()
            return logit(d, fake).mean() - logit(d, x).mean() + GP_LAMBDA * gp

        loss, gd = jax.value_and_grad(d_loss)(s["d"])
        d, od = _adam(s["d"], gd, s["od"], s["lr"], b1, b2)
        s = {**s, "d": d, "od": od, "key": key, "d_loss": loss}

        def g_update(s):
            gg = jax.grad(lambda g: -logit(s["d"], _mlp(g, z_like(kg))).mean())(s["g"])
            g, og = _adam(s["g"], gg, s["og"], s["lr"], b1, b2)
            return {**s, "g": g, "og": og}

        # The schedule is the same for every member, so under vmap the predicate is unbatched
        # and this stays a real branch (not both sides computed and selected).
        g_step = (index == 0) | ((index - 1) % N_DISC == 0)
        return jax.lax.cond(g_step, g_update, lambda s: s, s)

    step = ns_step if model == "ns" else wgan_step

    def member(s, data, start):
        indices = (start + jnp.arange(chunk)) % steps_per_trial
        s, _ = jax.lax.scan(lambda c, i: (step(c, data, i), None), s, indices)
        return s

    population = jax.vmap(member, in_axes=(0, None, None))
    return jax.jit(population, donate_argnums=0)


class Peer:
    """A population of `members` trials of `model`, compiled (ahead of time) and warmed up;
    `steps_per_second(seconds)` times chunks of `chunk` steps, one jitted call each."""

    def __init__(
        self, model: str, members: int, steps_per_trial: int = 6000, chunk: int = 100
    ) -> None:
        import jax
        import jax.numpy as jnp

        if model not in HYPER:
            raise ValueError(f"model must be one of {sorted(HYPER)}, not {model!r}")
        self.members, self.chunk, self.steps_per_trial = members, chunk, steps_per_trial
        key_data, key_members = jax.random.split(jax.random.key(0))
        self.data = jax.random.normal(key_data, (N_DATA, X_DIM), jnp.float32)
        lrs = HYPER[model][0] * 1.1 ** jnp.arange(members, dtype=jnp.float32)
        self.state = jax.vmap(_member_init)(jax.random.split(key_members, members), lrs)
        fn = _make_chunk(model, chunk, steps_per_trial)
        start = time.perf_counter()
        self.compiled = fn.lower(self.state, self.data, jnp.int32(0)).compile()
        self.compile_seconds = time.perf_counter() - start
        self.done = 0  # steps into the current trial, so the wgan_gp schedule repeats per trial
        for _ in range(2):  # warm-up
            self._run()
        jax.block_until_ready(self.state)

    def _run(self) -> None:
        import jax.numpy as jnp

        self.state = self.compiled(self.state, self.data, jnp.int32(self.done))
        self.done = (self.done + self.chunk) % self.steps_per_trial

    def steps_per_second(self, seconds: float) -> float:
        """Population steps (one D step of every member) per second over about `seconds`."""
        import jax

        steps, start = 0, time.perf_counter()
        while True:
            self._run()
            jax.block_until_ready(self.state)
            steps += self.chunk
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return steps / elapsed

    def final_d_loss(self) -> float:
        return float(self.state["d_loss"].mean())


def trials_per_hour(
    model: str, members: int, steps_per_trial: int = 6000, seconds: float = 10.0, chunk: int = 100
) -> dict:
    """Compile, warm up, then time chunks of `chunk` steps for about `seconds`."""
    import jax

    peer = Peer(model, members, steps_per_trial, chunk)
    steps_per_second = peer.steps_per_second(seconds)
    return {
        "trials_per_hour": members * 3600 * steps_per_second / steps_per_trial,
        "steps_per_second": steps_per_second,
        "compile_seconds": peer.compile_seconds,
        "members": members,
        "jax_version": jax.__version__,
        "final_d_loss": peer.final_d_loss(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(HYPER), default="ns")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--steps-per-trial", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args(argv)
    if not available():
        raise SystemExit("JAX is not installed")
    result = trials_per_hour(
        args.model, args.members, args.steps_per_trial, args.seconds, args.chunk
    )
    print(json.dumps({"model": args.model, **result}, indent=2))


if __name__ == "__main__":
    main()

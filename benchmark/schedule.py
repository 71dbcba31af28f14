"""The reference training schedule: the D-step budget, when G updates, when a trial evaluates.

Everything is counted in D steps (one real batch and one D update each), as in compare_gan v1
(`abstract_gan.py`, `generate_tasks_lib.py`):

- length: `epochs` reference epochs of the dataset, `epochs * epoch // batch_size` D steps
  (MNIST, Fashion-MNIST: 20 x 50,000 // 64 = 15,625; CIFAR-10: 100 epochs = 78,125;
  CelebA: 40 x 162,000 // 64 = 101,250), or an explicit `steps` for short runs;
- G updates on the steps with index 0, 1, 1 + n, 1 + 2n, ... (n = n_disc), the reference's
  `(counter - 1) % disc_iters == 0 or g_loss is None`;
- evaluation every `eval_every_epochs` reference epochs (E = eval_every_epochs * epoch //
  batch_size D steps: 3,906 for MNIST, Fashion-MNIST and CIFAR-10, 12,656 for CelebA) and
  at the end. The reference saves a checkpoint after the step with index i whenever i > 0
  and i % E == 0, that is after i + 1 D updates, and once more after the last step; here a
  checkpoint is labelled with the number of D updates done, so MNIST evaluates after 3,907,
  7,813, 11,719 and 15,625 updates. (The reference's last periodic checkpoint, index 15,624,
  holds the same weights as its final one: evaluated with the same fixed z they score the
  same, so it is evaluated once here.)
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.datasets import DATASETS


def is_g_step(index: int, n_disc: int) -> bool:
    """Whether the D step with this 0-based index is followed by a G update."""
    return index == 0 or (index - 1) % n_disc == 0


def steps_per_epochs(epochs: float, epoch: int, batch_size: int) -> int:
    """`epochs` reference epochs of `epoch` images in D steps, rounded down as the reference."""
    return int(round(epochs * epoch)) // batch_size


@dataclass(frozen=True)
class Schedule:
    """A trial's resolved schedule: its D-step budget and the D-step counts it evaluates at."""

    steps: int
    eval_every: int

    def evaluates_after(self, done: int) -> bool:
        """Whether a trial evaluates (and checkpoints) once `done` D updates are done."""
        return done == self.steps or (done > 1 and (done - 1) % self.eval_every == 0)

    @property
    def eval_steps(self) -> list[int]:
        periodic = range(1 + self.eval_every, self.steps, self.eval_every)
        return [*periodic, self.steps]


def trial_schedule(trial) -> Schedule:
    """The schedule of a `TrialConfig` (its dataset gives the reference epoch size)."""
    dataset = DATASETS.get(trial.dataset, "dataset")
    if trial.steps is not None:
        steps = trial.steps
    else:
        steps = steps_per_epochs(trial.epochs, dataset.epoch, trial.batch_size)
    every = steps_per_epochs(trial.eval_every_epochs, dataset.epoch, trial.batch_size)
    return Schedule(steps=steps, eval_every=every)

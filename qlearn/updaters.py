"""Target-network creation and updates (soft Polyak averaging and periodic hard copies)."""

from __future__ import annotations

import copy

from torch import Tensor, nn

from qlearn.utils import no_grad


def make_target(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to serve as its target network.

    ``deepcopy`` keeps parameters, buffers and the train/eval mode; ``requires_grad_(False)`` keeps
    optimizers and autograd away from it, so only a target updater moves it.
    """
    return copy.deepcopy(module).requires_grad_(False)


def _check_pairs(online: list[Tensor], target: list[Tensor], what: str) -> None:
    """Raise ValueError unless the two tensor lists match one to one in shape."""
    if len(online) != len(target):
        raise ValueError(f"online has {len(online)} {what} but target has {len(target)}")
    for i, (a, b) in enumerate(zip(online, target)):
        if a.shape != b.shape:
            raise ValueError(
                f"{what} #{i}: online shape {tuple(a.shape)} != target shape {tuple(b.shape)}"
            )


class PolyakUpdate:
    """Target update ``theta' <- tau * theta + (1 - tau) * theta'`` every ``every`` steps.

    Soft update with small ``tau`` (Lillicrap et al., 2016, "Continuous control with deep
    reinforcement learning", Alg. 1); ``tau = 1`` with ``every = C`` is the DQN hard copy every C
    updates (Mnih et al., 2015, Alg. 1: "Every C steps reset Q_target = Q"). With ``tau = 1``
    parameters are copied, not interpolated, so the target is bit-exact.

    Buffers (e.g. BatchNorm running statistics) are copied, not averaged, so a target with
    BatchNorm does not normalise with stale statistics (the SB3 fix, issue #996).

    Args:
        tau: interpolation weight toward the online network, ``0 < tau <= 1``.
        every: update interval, counted in the ``step`` passed to ``__call__`` (the agent passes
            its number of update calls); ``every >= 1``.
        offset: update when ``(step - offset) % every == 0``. ``0`` (default) moves the target after updates
            ``every, 2 every, ...``; ``1`` after updates ``1, 1 + every, ...``, as d3rlpy does (its
            ``grad_step % target_update_interval == 0`` counts ``grad_step`` from 0, so its first copy follows
            the first update).
    """

    def __init__(self, tau: float = 0.005, every: int = 1, offset: int = 0) -> None:
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if int(every) != every or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every}")
        if int(offset) != offset or not 0 <= offset < every:
            raise ValueError(f"offset must be an integer in [0, every), got {offset} with every={every}")
        self.tau = float(tau)
        self.every = int(every)
        self.offset = int(offset)

    @property
    def copies_every_step(self) -> bool:
        """True for a hard copy after every step (``tau = 1``, ``every = 1``): the target then equals the online
        network whenever the next step reads it (parameters and buffers), so that read can use the online one."""
        return self.tau == 1.0 and self.every == 1

    def __call__(self, online: nn.Module, target: nn.Module, step: int) -> None:
        """Update ``target`` in place if ``(step - offset) % every == 0``.

        Args:
            online: the network being trained.
            target: its target copy (same architecture, e.g. from :func:`make_target`).
            step: the caller's counter, usually the number of completed updates (starting at 1).
        """
        if (step - self.offset) % self.every == 0:  # checked first: most calls of a hard update do nothing
            self._move(online, target)

    @no_grad
    def _move(self, online: nn.Module, target: nn.Module) -> None:
        params, target_params = list(online.parameters()), list(target.parameters())
        buffers, target_buffers = list(online.buffers()), list(target.buffers())
        # Check before touching anything, so a mismatch never leaves a half-updated target.
        _check_pairs(params, target_params, "parameters")
        _check_pairs(buffers, target_buffers, "buffers")
        for p, tp in zip(params, target_params):
            if self.tau == 1.0:
                tp.copy_(p)  # hard update: an exact copy by construction
            else:
                tp.lerp_(p, self.tau)  # tp + tau * (p - tp)
        for b, tb in zip(buffers, target_buffers):
            tb.copy_(b)

    def __repr__(self) -> str:
        offset = f", offset={self.offset}" if self.offset else ""
        return f"{type(self).__name__}(tau={self.tau}, every={self.every}{offset})"

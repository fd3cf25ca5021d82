"""DQN template: Double DQN, dueling, n-step and prioritized replay are blocks and settings, not subclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from qlearn.agents.base import Agent
from qlearn.agents.saving import records_build
from qlearn.augment import Augmentation
from qlearn.distributional import Distributional
from qlearn.errors import QlearnError
from qlearn.imitation import ImitationFilter
from qlearn.losses.td import td_loss
from qlearn.networks.noisy import has_noise, reset_noise
from qlearn.networks.q import build_q_network
from qlearn.optim import OptimizerFactory, adam
from qlearn.targets import GreedyNextValue, masked_argmax, td_target
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.updaters import PolyakUpdate, make_target
from qlearn.utils import no_grad

NextValue = Callable[[nn.Module, nn.Module, Tensor], Tensor]


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, lr 2.5e-4 (CleanRL dqn.py / Nature DQN's learning rate)."""
    return adam(2.5e-4)(params)


class DQN(Agent):
    """Deep Q-learning (Mnih et al., 2015, Alg. 1) with the bootstrapped value as a swappable block.

    Loss on a batch: ``L = mean_i w_i * l(Q(s_i, a_i) - y_i)`` with
    ``y_i = r_i + discount_i * (1 - terminated_i) * next_value(s'_i)``, where ``next_value`` is
    ``GreedyNextValue`` (DQN: ``max_a' Q_target(s', a')``) or ``DoubleQNextValue`` (Double DQN,
    van Hasselt et al., 2016, Eq. 4) and ``l`` is Huber or squared error.
    ``discount_i`` is ``gamma`` or the n-step ``gamma**k`` the buffer supplies; ``w_i`` are
    prioritized-replay importance weights when present (Schaul et al., 2016, Alg. 1 line 12).

    Args:
        q: any module mapping observations ``[B, *obs_shape]`` to Q-values ``[B, A]``.
        num_actions: size of the discrete action space.
        optimizer: factory called with ``q.parameters()``.
        next_value: block computing ``[B]`` bootstrap values from ``(q, q_target, next_obs)``.
        target_updater: moves ``q_target`` toward ``q``; its ``every`` counts update calls.
        gamma: discount for one-step batches.
        loss: ``"huber"`` or ``"mse"``.
        max_grad_norm: global gradient-norm clip, or ``None``.
        regularizer: optional extra loss term ``f(q_all [B, A], action [B]) -> scalar`` (e.g. CQL).
        augmentation: optional image augmentation applied to ``obs`` and ``next_obs`` independently in each
            update, before the network (DrQ with K = M = 1 augmented copies: Kostrikov et al., 2021; e.g.
            ``qlearn.augment.RandomShift(pad=4)``); ``act`` and evaluation see raw observations.
        distributional: a block of :mod:`qlearn.distributional` (C51, QR-DQN, IQN); ``q`` must then have its
            head (``from_spec`` builds it). Its per-sample loss replaces ``l`` and ``loss``; ``next_value``
            then only says which network picks the next action (Greedy: target, Double: online).
        imitation: discrete BCQ's behaviour model and filter (Fujimoto et al., 2019): the greedy action and the
            next action of the target are argmaxes over the actions it allows, and its behaviour-cloning loss is
            added to the TD loss under the same optimizer (one Adam over both networks, as the authors' code).
        seed: seeds the augmentation's generator (saved with the agent); unused without ``augmentation``.
    """

    def __init__(
        self,
        q: nn.Module,
        num_actions: int,
        *,
        optimizer: OptimizerFactory = default_optimizer,
        next_value: NextValue | None = None,
        target_updater: PolyakUpdate | None = None,
        gamma: float = 0.99,
        loss: str = "huber",
        max_grad_norm: float | None = 10.0,
        regularizer: Callable[[Tensor, Tensor], Tensor] | None = None,
        augmentation: Augmentation | None = None,
        distributional: Distributional | None = None,
        imitation: ImitationFilter | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if distributional is not None and not hasattr(q, "distribution"):
            raise QlearnError("a distributional DQN needs a Q-network with a distributional head: build it with "
                              "build_q_network(..., distributional=<the same block>)")
        if imitation is not None and (imitation.network is None or distributional is not None):
            raise QlearnError("an imitation filter needs its network (DQN.from_spec builds it) and works with "
                              "expected Q-values: drop agent.distributional or agent.imitation.")
        self.q = q
        self.q_target = make_target(q)
        self.imitation = imitation
        self.distributional = distributional
        self.noisy = has_noise(q)  # noise resampled before each update and each acting step
        self.num_actions = int(num_actions)
        self.next_value = next_value if next_value is not None else GreedyNextValue()
        if distributional is not None and not hasattr(self.next_value, "selects_with_online"):
            raise QlearnError(f"a distributional DQN takes GreedyNextValue or DoubleQNextValue as next_value, "
                              f"got {self.next_value!r}")
        self.target_updater = target_updater if target_updater is not None else PolyakUpdate(1.0, every=1000)
        self.gamma = float(gamma)
        self.loss = loss
        self.max_grad_norm = max_grad_norm
        self.regularizer = regularizer
        self.augmentation = augmentation
        self.augmentation_generator = torch.Generator().manual_seed(int(seed)) if augmentation is not None else None
        self._trained = list(q.parameters()) + (list(imitation.parameters()) if imitation is not None else [])
        self.optimizers = {"q": optimizer(self._trained)}

    @classmethod
    @records_build  # a call with plain settings is remembered, so agent.save() can rebuild it
    def from_spec(
        cls,
        spec: EnvSpec,
        *,
        network: Mapping[str, Any] | None = None,
        lr: float = 2.5e-4,
        adam_eps: float = 1e-8,
        **kwargs: Any,
    ) -> DQN:
        """Build the default Q-network for ``spec`` (MLP or Nature CNN, optionally dueling) and an Adam."""
        if not spec.discrete:
            raise QlearnError(
                f"DQN needs a discrete action space, but this env's actions are continuous "
                f"(Box of shape {spec.action_shape}). Choose an env with Discrete actions "
                f"(e.g. env.id=CartPole-v1) or a continuous-control agent."
            )
        assert spec.num_actions is not None
        net_cfg = dict(network or {})
        q = build_q_network(spec.obs_shape, spec.num_actions, distributional=kwargs.get("distributional"), **net_cfg)
        imitation = kwargs.get("imitation")
        if imitation is not None and imitation.network is None:  # G(a|s): the Q-network's shape, its own weights
            imitation.network = build_q_network(spec.obs_shape, spec.num_actions, **net_cfg)
        return cls(q, spec.num_actions, optimizer=adam(lr, adam_eps), **kwargs)

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = True) -> Tensor:
        """Greedy actions ``argmax_a Q(s, a)`` ``[E]``; epsilon-greedy exploration is the trainer's block.
        Noisy nets draw new noise for each call in training mode (Fortunato et al., 2018, Alg. 1)."""
        q = self._modules["q"]  # `self.q` goes through nn.Module.__getattr__: 1-2 us a step
        if self.noisy and self.training:
            reset_noise(q)
        if self.imitation is not None:
            return masked_argmax(q(obs), self.imitation.allowed(obs)).squeeze(-1)
        return q(obs).argmax(dim=-1)

    def update(self, batch: Batch) -> Metrics:
        q, q_target = self.q, self.q_target  # one nn.Module attribute lookup each
        obs, next_obs = batch.obs, batch.next_obs
        if self.augmentation is not None:  # independent draws for s and s' (Dopamine's DrQ: rng1, rng2)
            obs = self.augmentation(obs, self.augmentation_generator)
            next_obs = self.augmentation(next_obs, self.augmentation_generator)
        if self.noisy:  # fresh noise for this update: one sample for the online net, one for the target
            reset_noise(q)
            reset_noise(q_target)
        # A target copied after every update equals q here: reading q instead saves Double DQN a forward pass
        # (bit-identical: tests/test_dqn.py); not with noisy nets, whose target draws its own noise
        target_net = q if self.target_updater.copies_every_step and not self.noisy else q_target
        action = batch.action if batch.action.dtype == torch.int64 else batch.action.long()
        discount = self.gamma if batch.discount is None else batch.discount
        if self.distributional is not None:
            return self._distributional_update(obs, action, next_obs, batch, discount, target_net)
        with torch.no_grad():
            if self.imitation is None:
                next_v = self.next_value(q, target_net, next_obs)  # [B]
            else:  # discrete BCQ: the next action among those the behaviour model allows
                next_v = self.next_value(q, target_net, next_obs, self.imitation.allowed(next_obs))
            y = td_target(batch.reward, batch.terminated, next_v, discount)  # [B]
        q_all = q(obs)  # [B, A]
        q_a = q_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)  # [B]
        loss = td_loss(q_a, y, kind=self.loss, weight=batch.weight)
        td = loss.detach()
        metrics: Metrics = {"train/td_loss": td, "train/q_mean": q_a.detach().mean()}
        if self.regularizer is not None:
            reg = self.regularizer(q_all, batch.action)
            loss = loss + reg
            metrics["train/regularizer"] = reg.detach()
        if self.imitation is not None:
            imitation_loss = self.imitation.loss(obs, action)
            loss = loss + imitation_loss
            metrics["train/imitation_loss"] = imitation_loss.detach()
        self._step_q(loss)
        metrics["train/loss"] = td if self.regularizer is None and self.imitation is None else loss.detach()
        if batch.weight is not None:  # prioritized replay: the trainer feeds |delta| back as priorities
            metrics["td_error"] = (q_a.detach() - y).abs()  # [B]
        return metrics

    def _distributional_update(self, obs: Tensor, action: Tensor, next_obs: Tensor, batch: Batch,
                               discount: Tensor | float, target_net: nn.Module) -> Metrics:
        """The distributional block's loss (C51 cross-entropy, quantile Huber) in place of the TD loss."""
        assert self.distributional is not None
        per_sample, q_a = self.distributional.loss(
            self.q, target_net, obs, action, next_obs, batch.reward, discount, batch.terminated,
            double=self.next_value.selects_with_online)  # type: ignore[attr-defined]
        loss = per_sample.mean() if batch.weight is None else (per_sample * batch.weight).mean()
        self._step_q(loss)
        metrics: Metrics = {"train/loss": loss.detach(), "train/td_loss": loss.detach(), "train/q_mean": q_a.mean()}
        if batch.weight is not None:  # prioritized replay: the per-sample distributional loss (Rainbow)
            metrics["td_error"] = per_sample.detach()
        return metrics

    def _step_q(self, loss: Tensor) -> None:
        """One optimizer step on ``loss`` (with the gradient-norm clip) and the target update it schedules."""
        optimizer = self.optimizers["q"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self._trained, self.max_grad_norm)
        optimizer.step()
        self.target_updater(self.q, self.q_target, self._count_update())

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        if self.augmentation_generator is not None:
            state["augmentation_generator"] = self.augmentation_generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        if self.augmentation_generator is not None:
            self.augmentation_generator.set_state(state["augmentation_generator"])

"""REDQ template: SAC and DroQ are settings of the same agent (ensemble size, subset size, UTD, dropout)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from qlearn.agents.base import Agent, continuous_sizes
from qlearn.agents.saving import records_build
from qlearn.errors import QlearnError
from qlearn.losses.sac import sac_actor_loss, temperature_loss
from qlearn.losses.td import ensemble_td_loss
from qlearn.networks.actors import TanhGaussianActor
from qlearn.networks.ensemble import QEnsemble
from qlearn.networks.init_schemes import init_actor_critic
from qlearn.networks.mlp import mlp_settings
from qlearn.optim import OptimizerFactory, adam
from qlearn.targets import SoftMinNextValue, td_target
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.updaters import PolyakUpdate, make_target
from qlearn.utils import no_grad

_ACTOR_Q = ("mean", "min")
DEFAULT_LR = 3e-4  # Haarnoja et al., 2018, Table 1; the REDQ reference code


class REDQ(Agent):
    """Randomized Ensembled Double Q-learning (Chen et al., 2021, Alg. 1) on a soft actor-critic.

    One ``update(batch)`` call is one critic step; the trainer's ``updates_per_step`` is the UTD
    ratio G. Order within a call: critic -> (every ``actor_update_every`` calls) actor -> alpha ->
    Polyak target update. The reference code computes its policy loss before the critic's optimizer
    step of the same iteration; we update the critic first and evaluate the actor on it.

    * critic: ``y = r + discount (1 - d) V(s')`` with ``V`` the ``next_value`` block, by default
      ``min_{i in M} Q_target_i(s', a') - alpha log pi(a'|s')`` over a random M-subset drawn each call;
      ``L = sum_i mean_B (Q_i(s, a) - y)^2`` (Alg. 1 lines 7-8; summed over members as the reference).
    * actor: ``mean_B [alpha log pi(a~|s) - agg_i Q_i(s, a~)]`` with ``agg`` the mean over all N
      (REDQ, Alg. 1 line 11) or the min (SAC, Haarnoja et al., 2018).
    * alpha: ``-log alpha (log pi + H_target)`` (Haarnoja et al., 2018, "SAC Algorithms and
      Applications", Eq. 18); ``learn_alpha=False`` keeps ``init_alpha``.

    SAC is N = M = 2, G = 1, ``actor_q="min"``; REDQ is N = 10, M = 2, G = 20, ``actor_update_every=20``;
    DroQ is REDQ's settings with N = 2 and dropout + LayerNorm critics (Hiraoka et al., 2022).

    Entropy units: every ``log pi`` above (target, actor loss, alpha loss, the ``train/entropy``
    metric) is the log-density of the squashed action ``tanh(u)`` in ``(-1, 1)^A``, i.e. the actor's
    env-unit log-density plus ``sum_j log scale_j``, as in the REDQ code (its log-probability leaves
    out the action limit), softlearning (actions normalised to [-1, 1]) and SB3. So
    ``target_entropy`` means the same as in those sources on every action box; the largest entropy
    a policy can reach is ``|A| log 2`` (uniform). On boxes of [-1, 1] both units coincide.

    Args:
        actor: module ``obs -> (action [B, A], log_prob [B])`` with an ``act(obs, deterministic)``.
        critic: :class:`QEnsemble` ``(obs, action) -> [N, B]``.
        next_value: the soft bootstrapped value; ``None`` is ``SoftMinNextValue(num_min=2)``. Its
            ``num_min`` is M, and ``backup_entropy=False`` is CQL's ``deterministic_backup``.
        actor_q: ``"mean"`` or ``"min"`` over the N critics in the actor loss.
        actor_update_every: actor and alpha step every this many critic steps (REDQ's policy delay).
        gamma: discount for one-step batches.
        init_alpha: initial entropy temperature.
        learn_alpha: tune alpha toward ``target_entropy``.
        target_entropy: entropy target in squashed units (see above); ``None`` means ``-|A|``
            (Haarnoja et al., 2018, Sec. 5).
        target_updater: moves the target critics; its ``every`` counts critic steps.
        critic_optimizer: factory called with the critic's parameters (likewise the two below).
        actor_optimizer: factory for the actor's optimizer.
        alpha_optimizer: factory for the temperature's optimizer.
        critic_regularizer: optional extra critic term ``f(actor, critic, batch) -> scalar`` (e.g. CQL).
        seed: seeds the generator of the random subsets (saved with the agent).
        compile: ``torch.compile`` the critic and actor losses (forward and backward); the first
            updates pay the compilation (about a minute on a CPU).

    Reference behaviours (each default is qlearn's; the lockstep pairs in ``benchmarks/lockstep/`` set them):
        critic_loss_factor: multiplies the summed critic loss; SB3's SAC uses ``0.5``.
        actor_loss_before_critic_step: compute the policy loss on the critic *before* this call's critic
            step (the REDQ and DroQ code); ``False`` evaluates it on the updated critic (SB3, CleanRL).
        actor_steps: actor (and alpha) steps each time the actor is due; CleanRL's ``policy_frequency=2``
            is ``actor_update_every=2, actor_steps=2``.
        alpha_resample: the temperature loss uses a fresh sample from the just-updated actor (CleanRL)
            instead of the actor loss's sample (the SAC authors, SB3, the REDQ code).
        alpha_loss_of_alpha: the temperature loss in ``alpha`` rather than ``log alpha`` (CleanRL; see
            :func:`qlearn.losses.temperature_loss`).
        alpha_actor_critic: step the temperature first (on a fresh sample), then the actor (on the pre-step critic,
            with the new alpha), then the critic (its target from the updated actor and alpha): the EDAC authors'
            and CORL's ``sac_n.py``/``edac.py`` order. Every update steps the actor (``actor_update_every=1``).
    """

    def __init__(
        self,
        actor: nn.Module,
        critic: QEnsemble,
        *,
        next_value: SoftMinNextValue | None = None,
        actor_q: str = "mean",
        actor_update_every: int = 1,
        gamma: float = 0.99,
        init_alpha: float = 1.0,
        learn_alpha: bool = True,
        target_entropy: float | None = None,
        target_updater: PolyakUpdate | None = None,
        critic_optimizer: OptimizerFactory | None = None,
        actor_optimizer: OptimizerFactory | None = None,
        alpha_optimizer: OptimizerFactory | None = None,
        critic_regularizer: Callable[[nn.Module, QEnsemble, Batch], Tensor] | None = None,
        seed: int = 0,
        compile: bool = False,
        critic_loss_factor: float = 1.0,
        actor_loss_before_critic_step: bool = False,
        actor_steps: int = 1,
        alpha_resample: bool = False,
        alpha_loss_of_alpha: bool = False,
        alpha_actor_critic: bool = False,
    ) -> None:
        super().__init__()
        if actor_q not in _ACTOR_Q:
            raise ValueError(f"actor_q must be one of {_ACTOR_Q}, got {actor_q!r}")
        self.next_value = next_value if next_value is not None else SoftMinNextValue()
        if self.next_value.num_min > critic.num_q:
            raise ValueError(f"num_min must be in [1, num_q={critic.num_q}], got {self.next_value.num_min}")
        if actor_update_every < 1:
            raise ValueError(f"actor_update_every must be >= 1, got {actor_update_every}")
        if actor_steps < 1:
            raise ValueError(f"actor_steps must be >= 1, got {actor_steps}")
        if alpha_actor_critic and (actor_update_every != 1 or actor_steps != 1 or not learn_alpha):
            raise ValueError("alpha_actor_critic (CORL's SAC-N/EDAC order) steps alpha, the actor and the critic once "
                             "each per update: it needs actor_update_every=1, actor_steps=1 and learn_alpha=True")
        if critic_loss_factor <= 0:
            raise ValueError(f"critic_loss_factor must be > 0, got {critic_loss_factor}")
        if init_alpha <= 0:
            raise ValueError(f"init_alpha must be > 0, got {init_alpha}")
        self.actor = actor
        self.critic = critic
        self.critic_target = make_target(critic)
        self.actor_q = actor_q
        self.actor_update_every = int(actor_update_every)
        self.critic_loss_factor = float(critic_loss_factor)
        self.actor_loss_before_critic_step = bool(actor_loss_before_critic_step)
        self.actor_steps = int(actor_steps)
        self.alpha_resample = bool(alpha_resample)
        self.alpha_loss_of_alpha = bool(alpha_loss_of_alpha)
        self.alpha_actor_critic = bool(alpha_actor_critic)
        self.gamma = float(gamma)
        self.learn_alpha = bool(learn_alpha)
        action_dim = int(getattr(actor, "action_dim", 1))
        self.target_entropy = float(-action_dim if target_entropy is None else target_entropy)
        # env-unit log pi + sum_j log scale_j = squashed log pi; 0 on [-1, 1] boxes and for actors without a scale
        log_scale = getattr(actor, "log_scale", None)
        self.log_scale_sum = 0.0 if log_scale is None else float(log_scale.sum())
        self.target_updater = target_updater if target_updater is not None else PolyakUpdate(0.005)
        self.critic_regularizer = critic_regularizer
        log_alpha = torch.tensor(math.log(init_alpha))
        if self.learn_alpha:
            self.log_alpha = nn.Parameter(log_alpha)
        else:
            self.register_buffer("log_alpha", log_alpha)
        self.optimizers = {
            "critic": (critic_optimizer or adam(DEFAULT_LR))(self.critic.parameters()),
            "actor": (actor_optimizer or adam(DEFAULT_LR))(self.actor.parameters()),
        }
        if self.learn_alpha:
            self.optimizers["alpha"] = (alpha_optimizer or adam(DEFAULT_LR))([self.log_alpha])
        regularizer_optimizer = getattr(critic_regularizer, "optimizer", None)
        if regularizer_optimizer is not None:  # e.g. CQL-Lagrange's multiplier, stepped by the regularizer
            self.optimizers["critic_regularizer"] = regularizer_optimizer
        self.subset_generator = torch.Generator().manual_seed(int(seed))
        self._actor_metrics: Metrics = {}
        self._critic_loss = self._critic_loss_eager
        self._actor_loss = self._actor_loss_eager
        if compile:  # the loss graphs (forward + backward via AOTAutograd); optimizers and the subset draw stay eager
            self._critic_loss = torch.compile(self._critic_loss_eager)
            self._actor_loss = torch.compile(self._actor_loss_eager)

    @classmethod
    @records_build  # a call with plain settings is remembered, so agent.save() can rebuild it
    def from_spec(
        cls,
        spec: EnvSpec,
        *,
        network: Mapping[str, Any] | None = None,
        num_q: int = 2,
        actor_hidden_sizes: Sequence[int] | None = None,
        layer_norm: bool = False,
        dropout: float = 0.0,
        lr: float = DEFAULT_LR,
        actor_lr: float | None = None,
        alpha_lr: float | None = None,
        target_entropy: float | str | None = "auto",
        log_std_min: float = -20.0,
        log_std_squash: str = "clamp",
        log_prob_epsilon: float = 0.0,
        log_std_affine: Sequence[float] | None = None,
        init: str = "torch",
        **kwargs: Any,
    ) -> REDQ:
        """Build a tanh-Gaussian actor and an N-critic ensemble (MLPs on flat obs) for ``spec``.

        ``network``: ``{"hidden_sizes", "activation"}`` (the ``network`` config group; default 256-256 ReLU).
        ``target_entropy="auto"`` (or ``None``) is ``-|A|``; ``actor_lr``/``alpha_lr`` default to ``lr``;
        ``log_std_min``, ``log_std_squash``, ``log_prob_epsilon`` and ``log_std_affine`` go to
        :class:`TanhGaussianActor` (qlearn's defaults are the SAC authors' bounds, a clamp and the exact log-density;
        ``log_prob_epsilon=1e-6`` is SB3's, the REDQ code's and CleanRL's, ``log_std_squash="tanh"`` with
        ``log_std_min=-5`` CleanRL's, ``log_std_affine=(1, -1)`` CORL's CQL policy). ``init`` re-initialises both
        networks with a reference's scheme (:func:`qlearn.networks.init_actor_critic`: ``"torch"``,
        ``"xavier_uniform"`` the REDQ code's, ``"edac"`` CORL's SAC-N/EDAC, ``"orthogonal"`` the IQL authors'). The
        other keywords (``target_updater``, ``next_value``, ...) go to the constructor.
        """
        obs_dim, action_dim = continuous_sizes(spec, "REDQ/SAC/DroQ")
        hidden_sizes, activation = mlp_settings(network, "REDQ/SAC/DroQ")
        actor = TanhGaussianActor(
            obs_dim, spec.action_low, spec.action_high,
            hidden_sizes=hidden_sizes if actor_hidden_sizes is None else actor_hidden_sizes,
            activation=activation,
            log_std_min=log_std_min,
            log_std_squash=log_std_squash,
            log_prob_epsilon=log_prob_epsilon,
            log_std_affine=log_std_affine,
        )
        critic = QEnsemble(obs_dim, action_dim, num_q, hidden_sizes, activation, layer_norm, dropout)
        init_actor_critic(actor, critic, init)
        if isinstance(target_entropy, str):
            if target_entropy != "auto":
                raise QlearnError(f"target_entropy must be a number or 'auto' (= -|A|), got {target_entropy!r}")
            target_entropy = None
        return cls(
            actor,
            critic,
            target_entropy=target_entropy,
            critic_optimizer=adam(lr),
            actor_optimizer=adam(lr if actor_lr is None else actor_lr),
            alpha_optimizer=adam(lr if alpha_lr is None else alpha_lr),
            **kwargs,
        )

    @property
    def alpha(self) -> Tensor:
        """The entropy temperature ``exp(log alpha)``, detached."""
        return self.log_alpha.detach().exp()

    @no_grad
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Actions ``[E, A]`` in the env's bounds: sampled, or ``tanh(mean)`` rescaled when deterministic."""
        return self.actor.act(obs, deterministic=deterministic)

    def update(self, batch: Batch) -> Metrics:
        if self.alpha_actor_critic:  # CORL's SAC-N/EDAC: alpha, then the actor, then the critic
            self._actor_metrics = self._update_alpha_then_actor(batch.obs)
        alpha = self.alpha
        members = self.next_value.draw(self.critic.num_q, self.subset_generator).to(batch.obs.device)
        critic_loss, q, y = self._critic_loss(batch, members, alpha)
        loss = critic_loss
        metrics: Metrics = {"train/critic_loss": critic_loss.detach(), "train/q_mean": q.detach().mean()}
        if self.critic_regularizer is not None:
            reg = self.critic_regularizer(self.actor, self.critic, batch)
            loss = loss + reg
            metrics["train/critic_regularizer"] = reg.detach()
        critic_optimizer = self.optimizers["critic"]
        critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        actor_due = self._count_update() % self.actor_update_every == 0 and not self.alpha_actor_critic
        if actor_due and self.actor_loss_before_critic_step:  # the REDQ code: the policy loss sees the pre-step critic
            self._actor_metrics = self._update_actor_and_alpha(batch.obs, alpha)
        critic_optimizer.step()
        if actor_due and not self.actor_loss_before_critic_step:
            self._actor_metrics = self._update_actor_and_alpha(batch.obs, alpha)
        self.target_updater(self.critic, self.critic_target, self.num_updates)
        metrics["train/loss"] = loss.detach()
        metrics.update(self._actor_metrics)
        if batch.weight is not None:  # prioritized replay: |delta| of the ensemble mean as the priority
            metrics["td_error"] = (q.detach().mean(dim=0) - y).abs()
        return metrics

    def _critic_loss_eager(self, batch: Batch, members: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss, Q [N, B], y [B])`` for the drawn target subset ``members`` (REDQ Alg. 1 lines 7-8)."""
        next_v = self.next_value(self._policy, self.critic_target, batch.next_obs, alpha, members)  # [B]
        discount = self.gamma if batch.discount is None else batch.discount
        y = td_target(batch.reward, batch.terminated, next_v, discount).detach()  # [B]
        q = self.critic(batch.obs, batch.action)  # [N, B]
        loss = ensemble_td_loss(q, y, kind="mse", weight=batch.weight)
        return (loss if self.critic_loss_factor == 1.0 else self.critic_loss_factor * loss), q, y

    def _actor_loss_eager(self, obs: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """``(loss, log_prob [B])`` of the policy step (REDQ Alg. 1 line 11; SAC with ``actor_q="min"``)."""
        action, log_prob = self._policy(obs)
        q = self.critic(obs, action)  # [N, B]
        q_pi = q.mean(dim=0) if self.actor_q == "mean" else q.min(dim=0).values
        return sac_actor_loss(log_prob, q_pi, alpha), log_prob

    def _policy(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(action [B, A] in env units, log pi(action|obs) [B] in squashed units)``: see the class docstring."""
        action, log_prob = self.actor(obs)
        return action, log_prob + self.log_scale_sum

    def _update_actor_and_alpha(self, obs: Tensor, alpha: Tensor) -> Metrics:
        for step in range(self.actor_steps):
            if step > 0:  # CleanRL's extra actor steps use the temperature its previous step left
                alpha = self.alpha
            actor_loss, log_prob = self._actor_step(obs, alpha)
            metrics: Metrics = {"train/actor_loss": actor_loss.detach(), "train/entropy": -log_prob.detach().mean()}
            if self.learn_alpha:
                if self.alpha_resample:  # CleanRL: a fresh sample from the updated actor
                    with torch.no_grad():
                        log_prob = self._policy(obs)[1]
                alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy, self.alpha_loss_of_alpha)
                self._step("alpha", alpha_loss)
                metrics["train/alpha_loss"] = alpha_loss.detach()
        metrics["train/alpha"] = self.alpha
        return metrics

    def _actor_step(self, obs: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """One actor step; ``(loss, log_prob)``. The critic's weights get no gradient (the loss needs dQ/da only)."""
        self.critic.requires_grad_(False)
        try:
            actor_loss, log_prob = self._actor_loss(obs, alpha)
            self._step("actor", actor_loss)
        finally:
            self.critic.requires_grad_(True)
        return actor_loss, log_prob

    def _update_alpha_then_actor(self, obs: Tensor) -> Metrics:
        """The EDAC/CORL order's first two steps: alpha on a fresh policy sample, then the actor with the new alpha."""
        with torch.no_grad():
            log_prob = self._policy(obs)[1]
        alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy, self.alpha_loss_of_alpha)
        self._step("alpha", alpha_loss)
        actor_loss, log_prob = self._actor_step(obs, self.alpha)
        return {"train/actor_loss": actor_loss.detach(), "train/entropy": -log_prob.detach().mean(),
                "train/alpha_loss": alpha_loss.detach(), "train/alpha": self.alpha}

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        state["subset_generator"] = self.subset_generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.subset_generator.set_state(state["subset_generator"])

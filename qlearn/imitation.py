"""Discrete BCQ's behaviour model and the action filter it defines (Fujimoto, Conti, Ghavamzadeh & Pineau, 2019,
"Benchmarking Batch Deep Reinforcement Learning Algorithms", Sec. 4 and Alg. 1)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from qlearn.errors import QlearnError


class ImitationFilter(nn.Module):
    """A behaviour-cloning model ``G(a|s) = softmax(logits(s))`` trained on the data's actions, and the filter
    ``allowed(s, a) = G(a|s) / max_a' G(a'|s) > threshold`` that restricts every argmax of the Q-learner (greedy
    action and next action of the target) to actions the data supports (the paper's Eq. 3 with tau = 0.3).

    Its loss is ``NLL(G(.|s), a) + logit_penalty * mean(logits^2)`` (the authors' code, sfujim/BCQ
    ``discrete_BCQ.py``: weight 1e-2). ``penalize="log_probs"`` squares the normalised log-probabilities instead
    of the raw logits, as d3rlpy's ``DiscreteBCQ`` does (its ``Categorical(logits=...).logits``, weight ``beta``
    0.5). ``network`` maps observations to ``[B, A]`` logits; ``DQN.from_spec`` builds one shaped like the
    Q-network when it is left ``None``.
    """

    def __init__(self, threshold: float = 0.3, logit_penalty: float = 1e-2, penalize: str = "logits",
                 network: nn.Module | None = None) -> None:
        super().__init__()
        if not 0.0 <= threshold < 1.0:
            raise QlearnError(f"imitation threshold={threshold}: use a value in [0, 1) (0 allows every action; "
                              "the paper uses 0.3).")
        if logit_penalty < 0:
            raise QlearnError(f"imitation logit_penalty={logit_penalty}: use a value >= 0 (the authors use 1e-2).")
        if penalize not in ("logits", "log_probs"):
            raise QlearnError(f"imitation penalize={penalize!r}: use 'logits' (the authors') or 'log_probs' (d3rlpy's).")
        self.threshold, self.logit_penalty, self.penalize = float(threshold), float(logit_penalty), penalize
        self.network = network

    def allowed(self, obs: Tensor) -> Tensor:
        """``[B, A]`` bool: the actions whose probability relative to the most likely one exceeds the threshold
        (the most likely action always passes)."""
        log_probs = F.log_softmax(self.network(obs), dim=-1)  # type: ignore[misc]
        return (log_probs - log_probs.max(dim=-1, keepdim=True).values).exp() > self.threshold

    def loss(self, obs: Tensor, action: Tensor) -> Tensor:
        """Scalar behaviour-cloning loss on the data's actions ``[B]``."""
        logits = self.network(obs)  # type: ignore[misc]
        log_probs = F.log_softmax(logits, dim=-1)
        penalized = logits if self.penalize == "logits" else log_probs
        return F.nll_loss(log_probs, action) + self.logit_penalty * penalized.pow(2).mean()

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, logit_penalty={self.logit_penalty}, penalize={self.penalize!r}"


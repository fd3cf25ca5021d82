"""Human-normalised Atari scores: ``100 (R - R_random) / (R_human - R_random)`` (Mnih et al., 2015, Methods),
for the 26 games of the Atari 100k benchmark (Kaiser et al., 2020), as a trainer `Score`.

The random and human returns are the standard ones, taken from Dopamine's Atari 100k evaluation code
(google/dopamine ``dopamine/labs/atari_100k/normalization_utils.py`` @5873f54, ``ATARI_RANDOM_SCORES`` and
``ATARI_HUMAN_SCORES``), the table its DrQ(eps)/DER results and rliable's (Agarwal et al., 2021) IQMs are
normalised with.
"""

from __future__ import annotations

from qlearn.errors import QlearnError
from qlearn.offline.scores import NormalizedScore

__all__ = ["ATARI_100K_SCORES", "HumanNormalizedScore", "atari_game"]

# game (as in the ALE env id) -> (random return, human return); Dopamine normalization_utils.py @5873f54
ATARI_100K_SCORES: dict[str, tuple[float, float]] = {
    "Alien": (227.8, 7127.7),
    "Amidar": (5.8, 1719.5),
    "Assault": (222.4, 742.0),
    "Asterix": (210.0, 8503.3),
    "BankHeist": (14.2, 753.1),
    "BattleZone": (2360.0, 37187.5),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "ChopperCommand": (811.0, 7387.8),
    "CrazyClimber": (10780.5, 35829.4),
    "DemonAttack": (152.1, 1971.0),
    "Freeway": (0.0, 29.6),
    "Frostbite": (65.2, 4334.7),
    "Gopher": (257.6, 2412.5),
    "Hero": (1027.0, 30826.4),
    "Jamesbond": (29.0, 302.8),
    "Kangaroo": (52.0, 3035.0),
    "Krull": (1598.0, 2665.5),
    "KungFuMaster": (258.5, 22736.3),
    "MsPacman": (307.3, 6951.6),
    "Pong": (-20.7, 14.6),
    "PrivateEye": (24.9, 69571.3),
    "Qbert": (163.9, 13455.0),
    "RoadRunner": (11.5, 7845.0),
    "Seaquest": (68.4, 42054.7),
    "UpNDown": (533.4, 11693.2),
}


def atari_game(env_id: str) -> str:
    """The game named by an ALE env id: ``BreakoutNoFrameskip-v4`` and ``ALE/Breakout-v5`` -> ``Breakout``."""
    name = env_id.removeprefix("ALE/")
    return name.split("NoFrameskip")[0].split("Deterministic")[0].split("-")[0]


class HumanNormalizedScore(NormalizedScore):
    """The human-normalised score of an evaluation's mean return (0: random play, 100: the human tester), as a
    trainer `Score`; ``reference`` is ``[R_random, R_human]``."""

    name = "human_normalized_score"

    @classmethod
    def for_env(cls, env_id: str) -> HumanNormalizedScore:  # type: ignore[override]
        """The score for ``env_id``'s game; a game outside the Atari 100k table is refused with the known names."""
        game = atari_game(env_id)
        if game not in ATARI_100K_SCORES:
            raise QlearnError(
                f"no random/human reference returns for {env_id!r} (game {game!r}); the table holds the 26 Atari "
                f"100k games: {', '.join(ATARI_100K_SCORES)}. Run with scores=[] to train without this score."
            )
        return cls(*ATARI_100K_SCORES[game])

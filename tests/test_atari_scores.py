"""Human-normalised Atari scores: 0 at the random return, 100 at the human return, hand-computed in between."""

from __future__ import annotations

import pytest

from qlearn.atari_scores import ATARI_100K_SCORES, HumanNormalizedScore, atari_game
from qlearn.errors import QlearnError


def test_breakout_scores_0_at_random_and_100_at_human_play() -> None:
    score = HumanNormalizedScore.for_env("BreakoutNoFrameskip-v4")
    assert score.name == "human_normalized_score" and score.reference == [1.7, 30.5]
    assert score(1.7) == pytest.approx(0.0) and score(30.5) == pytest.approx(100.0)
    assert score(16.1) == pytest.approx(50.0)  # (16.1 - 1.7) / (30.5 - 1.7) = 14.4 / 28.8
    pong = HumanNormalizedScore.for_env("ALE/Pong-v5")
    assert pong(-20.7) == pytest.approx(0.0) and pong(14.6) == pytest.approx(100.0) and pong(21.0) == pytest.approx(118.13, abs=0.01)


def test_the_table_has_the_26_atari_100k_games_and_ids_map_to_them() -> None:
    assert len(ATARI_100K_SCORES) == 26 and all(human > random for random, human in ATARI_100K_SCORES.values())
    assert [atari_game(i) for i in ("MsPacmanNoFrameskip-v4", "ALE/UpNDown-v5", "KungFuMasterDeterministic-v4")] == [
        "MsPacman", "UpNDown", "KungFuMaster"]


def test_a_game_outside_the_table_is_refused_with_the_known_names() -> None:
    with pytest.raises(QlearnError, match="26 Atari 100k games.*Breakout.*scores=\\[\\]"):
        HumanNormalizedScore.for_env("SkiingNoFrameskip-v4")

"""Random and human reference scores for Atari and the human-normalised score (HNS).

Values are the Atari-57 standard references for 1-30 no-op starts (reference.md section 1).
Scores are raw episode returns (unclipped). Carnival and Pooyan have no standard references: normalise
them against a measured random agent instead.
"""

from __future__ import annotations

REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "Alien": (227.8, 7127.7),
    "Amidar": (5.8, 1719.5),
    "Assault": (222.4, 742.0),
    "Asterix": (210.0, 8503.3),
    "BankHeist": (14.2, 753.1),
    "BattleZone": (2360.0, 37187.5),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "Centipede": (2090.9, 12017.0),
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
    "Phoenix": (761.4, 7242.6),
    "Pong": (-20.7, 14.6),
    "PrivateEye": (24.9, 69571.3),
    "Qbert": (163.9, 13455.0),
    "Riverraid": (1338.5, 17118.0),
    "RoadRunner": (11.5, 7845.0),
    "Seaquest": (68.4, 42054.7),
    "UpNDown": (533.4, 11693.2),
    "VideoPinball": (16256.9, 17667.9),
    "WizardOfWor": (563.5, 4756.5),
    "YarsRevenge": (3092.9, 54576.9),
}
"""Game name (as in ``xfer.envs.atari.ATARI_GAMES``) -> ``(random, human)`` raw scores."""


def normalise(score: float, low: float, high: float) -> float:
    """``(score - low) / (high - low)`` as a float.

    Raises:
        ValueError: ``high == low``.
    """
    if high == low:
        raise ValueError(f"cannot normalise with equal references low == high == {low}")
    return (float(score) - low) / (high - low)


def human_normalised_score(game: str, score: float) -> float:
    """Human-normalised score ``(score - random) / (human - random)``: 0 = random, 1 = human.

    Args:
        game: ALE game name, e.g. ``"Pong"``.
        score: raw (unclipped) episode return.

    Raises:
        KeyError: no reference for ``game`` (e.g. Carnival, Pooyan); the message names the known games.
    """
    if game not in REFERENCE_SCORES:
        raise KeyError(
            f"no random/human reference score for {game!r}; normalise it against a measured random "
            f"agent instead (xfer.envs.scores.normalise). Games with references: {sorted(REFERENCE_SCORES)}"
        )
    rand, human = REFERENCE_SCORES[game]
    return normalise(score, rand, human)

"""Pack lists of :class:`Segment` into flat numpy arrays and back (no pickling).

Used for resume state (``arrays.npz``) and as the payload of offline dataset shards. Layout:
``lengths [S]`` int64 transitions per segment; per-transition fields concatenated over segments
(``actions``, ``rewards``, ``raw_rewards``, ``cuts``, ``root_values``, ``visit_dist [sum T, A]``);
``frames [sum (T + stack), 3, H, W]`` uint8; per-segment ``terminal [S]``, ``first_step [S]``,
``stack [S]``, ``final_value [S]`` float32, ``action_mask [S, A]``; game names as a fixed-width unicode array ``games [S]``.
State observations store ``frames [sum (T + 1), D]`` float32, Box actions ``actions [sum T, D]`` float32
and their roots' sampled actions ``sampled [sum T, S, D]`` (present only then).
"""

from __future__ import annotations

import numpy as np

from xfer.replay.segment import Segment

PER_STEP = ("actions", "rewards", "raw_rewards", "cuts", "root_values", "visit_dist")


def segments_to_arrays(segments: list[Segment]) -> dict[str, np.ndarray]:
    """Flatten segments into a dict of arrays (see module docstring)."""
    if not segments:
        return {"lengths": np.zeros(0, dtype=np.int64)}
    out = {name: np.concatenate([getattr(s, name) for s in segments]) for name in PER_STEP}
    if segments[0].sampled is not None:
        out["sampled"] = np.concatenate([s.sampled for s in segments])
    out["frames"] = np.concatenate([s.frames for s in segments])
    out["lengths"] = np.asarray([len(s) for s in segments], dtype=np.int64)
    out["terminal"] = np.asarray([s.terminal for s in segments], dtype=bool)
    out["first_step"] = np.asarray([s.first_step for s in segments], dtype=np.int64)
    out["stack"] = np.asarray([s.stack for s in segments], dtype=np.int64)
    out["final_value"] = np.asarray([s.final_value for s in segments], dtype=np.float32)
    out["action_mask"] = np.stack([s.action_mask for s in segments])
    out["games"] = np.asarray([s.game for s in segments], dtype=np.str_)
    return out


def segments_from_arrays(arrays: dict[str, np.ndarray]) -> list[Segment]:
    """Inverse of :func:`segments_to_arrays`.

    Raises:
        ValueError: if the arrays are inconsistent (lengths do not add up).
    """
    lengths = arrays["lengths"]
    if len(lengths) == 0:
        return []
    stacks = arrays["stack"]
    total = int(lengths.sum())
    if len(arrays["actions"]) != total or len(arrays["frames"]) != total + int(stacks.sum()):
        raise ValueError("segment arrays are inconsistent: lengths do not match the stored steps/frames")
    segments = []
    step = frame = 0
    for i, (t, stack) in enumerate(zip(lengths.tolist(), stacks.tolist())):
        fields = {name: arrays[name][step : step + t] for name in PER_STEP}
        if "sampled" in arrays:
            fields["sampled"] = arrays["sampled"][step : step + t]
        segments.append(
            Segment(
                frames=arrays["frames"][frame : frame + t + stack],
                terminal=bool(arrays["terminal"][i]),
                action_mask=arrays["action_mask"][i],
                game=str(arrays["games"][i]),
                first_step=int(arrays["first_step"][i]),
                stack=stack,
                final_value=float(arrays["final_value"][i]) if "final_value" in arrays else float("nan"),
                **fields,
            )
        )
        step += t
        frame += t + stack
    return segments

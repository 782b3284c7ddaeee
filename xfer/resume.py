"""Resume state of any training loop (online, offline teacher, distillation, finetuning).

One place that knows how a :class:`xfer.learner.Learner` (online + target weights, optimiser,
step count), an optional :class:`xfer.replay.buffer.PrioritizedReplay`, a counters dict and the
numpy/torch RNGs become a training-state directory (:func:`xfer.checkpoint.save_training_state`).
A state written under another configuration is refused, so a changed ``params.yaml`` never
silently continues an old run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfer import checkpoint as ckpt
from xfer import training_state
from xfer.learner import Learner
from xfer.replay.buffer import PrioritizedReplay


def save_state(
    directory: Path,
    learner: Learner,
    counters: dict[str, Any],
    rng: np.random.Generator,
    cfg_hash: str,
    replay: PrioritizedReplay | None = None,
    extra: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Atomically write the full training state (see module docstring) to ``directory``.

    ``extra``: JSON-able state of the loop's parts (task weights); ``extra_tensors``: their tensors (an
    intrinsic reward's networks, optimiser and statistics), stored beside the weights.
    """
    tensors = {f"net.{k}": v for k, v in learner.net.state_dict().items()}
    tensors.update({f"extra.{k}": v for k, v in (extra_tensors or {}).items()})
    tensors.update({f"target.{k}": v for k, v in learner.target_net.state_dict().items()})
    opt_tensors, opt_meta = training_state.optimizer_state_to_flat(learner.optimizer.state_dict())
    tensors.update(opt_tensors)
    tensors.update(training_state.torch_rng_state_to_tensors())
    arrays: dict[str, np.ndarray] = {}
    replay_meta = None
    if replay is not None:
        arrays, replay_meta = replay.state_arrays()
    meta = {
        "config_hash": cfg_hash,
        "counters": counters,
        "learner_steps": learner.step_count,
        "optimizer": opt_meta,
        "replay": replay_meta,
        "numpy_rng": training_state.rng_state_to_json(rng),
        "extra": extra or {},
    }
    training_state.save_training_state(directory, tensors, arrays, meta)


def load_state(
    directory: Path, learner: Learner, cfg_hash: str, replay: PrioritizedReplay | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, Any], np.random.Generator, dict[str, Any]]:
    """Restore a state written by :func:`save_state`; returns ``(counters, rng, extra)``. A dict passed
    as ``extra_tensors`` is filled with the saved ``extra_tensors``.

    Raises:
        xfer.checkpoint.CheckpointError: corrupt state, or a state from another configuration.
    """
    tensors, arrays, meta = training_state.load_training_state(directory)
    if meta["config_hash"] != cfg_hash:
        raise ckpt.CheckpointMismatchError(
            f"{directory} was written by a run with a different configuration "
            f"(hash {meta['config_hash']} vs {cfg_hash}); use another output directory "
            "or delete that state directory to start over"
        )

    def sub(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    learner.net.load_state_dict(sub("net."))
    learner.target_net.load_state_dict(sub("target."))
    learner.optimizer.load_state_dict(training_state.optimizer_state_from_flat(tensors, meta["optimizer"]))
    learner.step_count = int(meta["learner_steps"])
    training_state.restore_torch_rng_state(tensors)
    if replay is not None and meta["replay"] is not None:
        replay.load_state(arrays, meta["replay"])
    if extra_tensors is not None:
        extra_tensors.update(sub("extra."))
    return meta["counters"], training_state.rng_state_from_json(meta["numpy_rng"]), meta.get("extra", {})


def discard_stale_state(directory: Path, cfg_hash: str) -> bool:
    """Delete a resume state written under another configuration; returns True if one was deleted.

    Pipeline stages keep resume state in ``.xfer-work`` only to survive being killed; when the
    params changed since, the old state must not be continued (nor block the rerun).
    """
    import json
    import logging
    import shutil

    meta_file = Path(directory) / "meta.json"
    if not meta_file.exists():
        return False
    try:
        saved = json.loads(meta_file.read_text())["meta"]["config_hash"]
    except (ValueError, KeyError, TypeError):
        saved = None
    if saved == cfg_hash:
        return False
    logging.getLogger(__name__).warning("discarding resume state %s from another configuration", directory)
    shutil.rmtree(directory)
    return True

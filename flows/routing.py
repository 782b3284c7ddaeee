"""Where and in which order a pipeline's DVC stages run: stage groups, pipeline order, work pools.

Pure functions of stage names as ``dvc stage list`` prints them (``collect@Pong``, ``distill``,
``procgen/dvc.yaml:train@coinrun-mz-500-0``); the flows (:mod:`flows.pipeline`) route every stage with them.
"""

from __future__ import annotations

from typing import Literal

# Stage groups in pipeline order; DVC names per-item stages "group@item". Unknown groups run after
# these, in the order `dvc stage list` prints them.
GROUP_ORDER: tuple[str, ...] = (
    "code", "collect", "teacher", "distill", "bc", "offline_rl", "init", "finetune", "evaluate", "report")
# Stages every host may run itself in distributed mode: `code` (each stage's code fingerprint) reads
# only the checkout's sources, takes a second and gives the same bytes everywhere.
LOCAL_GROUPS: frozenset[str] = frozenset({"code"})
# Groups that need an accelerator: routed to the gpu work pool in distributed mode; the rest go to cpu.
HEAVY_GROUPS: frozenset[str] = frozenset({"collect", "teacher", "distill", "bc", "offline_rl", "finetune",
                                          "procgen/dvc.yaml:train", "metaworld/dvc.yaml:pretrain",
                                          "metaworld/dvc.yaml:finetune", "metaworld/dvc.yaml:scratch",
                                          "explore/dvc.yaml:explore", "explore/dvc.yaml:transfer",
                                          "explore/dvc.yaml:scratch", "explore/dvc.yaml:evaluate"})
# Groups that run on the params' `device` but are light on CPU hosts: the XTRA evaluate stage (it searches
# with every finetuned model) goes to gpu when the run's params say `device: cuda`, else to cpu.
DEVICE_GROUPS: frozenset[str] = frozenset({"evaluate"})
# Deployments (flow name/deployment name, see prefect.yaml) that run one stage on a pool's worker.
STAGE_DEPLOYMENTS: dict[str, str] = {"gpu": "xtra-stage/gpu", "cpu": "xtra-stage/cpu"}


def stage_group(stage: str) -> str:
    """``teacher@Pong`` -> ``teacher``; ``distill`` -> ``distill``;
    ``procgen/dvc.yaml:train@coinrun-mz-500-0`` -> ``procgen/dvc.yaml:train``."""
    return stage.split("@", 1)[0]


def stage_pipeline(stage: str) -> str:
    """The pipeline a stage belongs to: its dvc.yaml's folder for ``<dir>/dvc.yaml:<stage>``
    (``procgen/dvc.yaml:report`` -> ``procgen``, ``metaworld/dvc.yaml:pretrain@mz-0`` -> ``metaworld``,
    ``explore/dvc.yaml:random@UpNDown-0`` -> ``explore``),
    else ``xtra`` (the root dvc.yaml's stages)."""
    dvcfile, sep, _ = stage.partition(":")
    folder, slash, name = dvcfile.rpartition("/")
    return folder if sep and slash and folder and name == "dvc.yaml" else "xtra"


def pool_for_stage(stage: str, device: str = "cpu") -> Literal["gpu", "cpu"]:
    """Which work pool a stage belongs on: :data:`HEAVY_GROUPS` (collect, teacher, distill, bc, offline_rl,
    finetune; Procgen's train; Meta-World's pretrain, finetune, scratch; the exploration pipeline's explore,
    transfer, scratch, evaluate) -> gpu; :data:`DEVICE_GROUPS` (the XTRA evaluate) -> gpu when ``device``
    (the run's params' ``device``: ``cpu``, ``cuda``, ``cuda:1``) is not ``cpu``, else cpu; the rest (the
    reports, the exploration pipeline's random agent) -> cpu."""
    group = stage_group(stage)
    if group in HEAVY_GROUPS or (group in DEVICE_GROUPS and device != "cpu"):
        return "gpu"
    return "cpu"


def order_stages(names: list[str]) -> list[str]:
    """Pipeline order: known groups in :data:`GROUP_ORDER`, items and unknown groups in DVC's order."""
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    indexed = list(enumerate(names))
    indexed.sort(key=lambda p: (rank.get(stage_group(p[1]), len(GROUP_ORDER)), p[0]))
    return [n for _, n in indexed]


def waves(stages: list[str]) -> list[list[str]]:
    """``stages`` (in pipeline order) cut into runs of consecutive items of one group: ``["code",
    "collect@a", "collect@b", "teacher@a"]`` -> ``[["code"], ["collect@a", "collect@b"], ["teacher@a"]]``.

    The items of one ``foreach`` / ``matrix`` stage never depend on each other, so a wave's stages may run
    at the same time (distributed mode with ``parallel`` > 1); a wave starts once the one before finished.
    """
    out: list[list[str]] = []
    for stage in stages:
        if out and stage_group(out[-1][-1]) == stage_group(stage):
            out[-1].append(stage)
        else:
            out.append([stage])
    return out

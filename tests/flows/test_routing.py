"""Stage order and work pools (flows/routing.py): pure functions of DVC stage names."""

from __future__ import annotations


def test_order_and_routing_helpers():
    from flows.routing import order_stages, pool_for_stage

    listed = ["report", "finetune@a", "extra", "bc", "collect@x", "teacher@x", "collect@y", "offline_rl", "distill",
              "evaluate", "code", "init@a"]
    assert order_stages(listed) == ["code", "collect@x", "collect@y", "teacher@x", "distill", "bc", "offline_rl",
                                    "init@a", "finetune@a", "evaluate", "report", "extra"]
    assert [pool_for_stage(s) for s in ("collect@x", "teacher@x", "distill", "finetune@a")] == ["gpu"] * 4
    assert [pool_for_stage(s) for s in ("code", "evaluate", "report", "extra")] == ["cpu"] * 4


def test_the_xtra_evaluate_follows_the_params_device_and_nothing_else_does():
    from flows.routing import pool_for_stage

    assert pool_for_stage("evaluate", "cuda") == pool_for_stage("evaluate", "cuda:1") == "gpu"
    assert pool_for_stage("evaluate", "cpu") == "cpu"
    # light stages stay on cpu and heavy stages on gpu whatever the device
    assert [pool_for_stage(s, "cuda") for s in ("code", "report", "extra", "explore/dvc.yaml:random@U-0")] == ["cpu"] * 4
    assert [pool_for_stage(s, "cpu") for s in ("collect@x", "finetune@a", "explore/dvc.yaml:evaluate")] == ["gpu"] * 3


def test_waves_cut_pipeline_order_into_runs_of_one_group():
    from flows.routing import waves

    assert waves(["code", "collect@a", "collect@b", "teacher@a", "teacher@b", "distill", "finetune@x"]) == [
        ["code"], ["collect@a", "collect@b"], ["teacher@a", "teacher@b"], ["distill"], ["finetune@x"]]
    explore = ["explore/dvc.yaml:explore@U-mz-0", "explore/dvc.yaml:explore@U-ql-0", "explore/dvc.yaml:random@U-0",
               "explore/dvc.yaml:evaluate", "explore/dvc.yaml:report"]
    assert waves(["code", *explore]) == [["code"], explore[:2], [explore[2]], [explore[3]], [explore[4]]]
    # a group that comes back later is a new wave: waves never reorder
    assert waves(["a@1", "b", "a@2"]) == [["a@1"], ["b"], ["a@2"]]
    assert waves([]) == []

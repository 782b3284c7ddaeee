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

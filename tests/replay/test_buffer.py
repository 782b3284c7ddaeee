import numpy as np
import pytest

from tests.replay.test_targets import make_segment
from xfer.replay.buffer import PrioritizedReplay
from xfer.replay.segment import SegmentBuilder
from xfer.replay.serialize import segments_from_arrays, segments_to_arrays


def test_priorities_drive_sampling_and_weights():
    rb = PrioritizedReplay(capacity=100, alpha=1.0)
    rb.add(make_segment(T=4), priorities=np.array([1.0, 1.0, 1.0, 7.0]))
    idx = rb.sample(10_000, beta=1.0, rng=np.random.default_rng(0))
    share = np.mean(idx.positions == 3)
    assert share == pytest.approx(0.7, abs=0.02)
    # w = (N P)^-beta normalised by the max: the frequent item gets (4*0.7)^-1 / (4*0.1)^-1 = 1/7
    w3 = idx.weights[idx.positions == 3][0]
    assert w3 == pytest.approx(1 / 7, rel=1e-4)


def test_new_data_gets_max_priority_and_fifo_eviction():
    rb = PrioritizedReplay(capacity=10, alpha=0.6)
    rb.add(make_segment(T=4))
    rb.update_priorities(np.array([0]), np.array([1]), np.array([5.0]))
    rb.add(make_segment(T=4))
    assert rb.priorities[1].max() == pytest.approx(5.0, rel=1e-5)
    rb.add(make_segment(T=4))  # 12 > 10: oldest segment goes
    assert len(rb) == 8 and rb.ids == [1, 2] and rb.total_added == 12
    rb.update_priorities(np.array([0]), np.array([0]), np.array([9.0]))  # evicted: ignored
    assert rb.max_priority == pytest.approx(5.0, rel=1e-5)


def test_empty_buffer_sampling_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        PrioritizedReplay(10).sample(2, 0.4, np.random.default_rng(0))


def test_state_round_trip():
    rb = PrioritizedReplay(capacity=100)
    rb.add(make_segment(T=5, terminal=True, cuts=[0, 0, 0, 0, 1]))
    rb.add(make_segment(T=3, first_step=5))
    arrays, meta = rb.state_arrays()
    rb2 = PrioritizedReplay(capacity=100)
    rb2.load_state(arrays, meta)
    assert [len(s) for s in rb2.segments] == [5, 3]
    assert rb2.segments[0].terminal and not rb2.segments[1].terminal
    np.testing.assert_array_equal(rb2.segments[1].frames, rb.segments[1].frames)
    assert rb2.total_added == 8 and rb2.ids == rb.ids


def test_serialize_rejects_inconsistent_arrays():
    arrays = segments_to_arrays([make_segment(T=3)])
    arrays["lengths"] = np.array([4])
    with pytest.raises(ValueError, match="inconsistent"):
        segments_from_arrays(arrays)


def test_segment_builder_splits_and_keeps_history_frames():
    mask = np.ones(18, dtype=bool)
    b = SegmentBuilder(stack=4, segment_length=3, action_mask=mask, game="G")
    first = np.concatenate([np.full((3, 2, 2), i, np.uint8) for i in range(4)])  # frames 0..3
    b.start(first, first_step=0)
    segs = []
    for t in range(5):
        frame = np.full((3, 2, 2), 4 + t, np.uint8)
        nxt = np.concatenate([np.full((3, 2, 2), i, np.uint8) for i in range(t + 1, t + 5)])
        s = b.add(t, 1.0, 2.0, False, 0.0, np.full(18, 1 / 18), frame, t == 4, t == 4, nxt, t + 1)
        if s is not None:
            segs.append(s)
    assert [len(s) for s in segs] == [3, 2]
    assert segs[0].obs(0)[::3, 0, 0].tolist() == [0, 1, 2, 3]
    assert segs[0].obs(3)[::3, 0, 0].tolist() == [3, 4, 5, 6]
    assert segs[1].obs(0)[::3, 0, 0].tolist() == [3, 4, 5, 6]  # continues from o_3
    assert segs[1].terminal and segs[1].cuts[-1] and segs[1].first_step == 3

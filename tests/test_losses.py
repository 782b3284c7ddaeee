import math

import pytest
import torch

from tests.specs import ATARI_INPUT
from tests.test_learner import real_batch
from xfer.config import LossConfig, OptimConfig
from xfer.learner import Learner
from xfer.losses import (
    LossTerm,
    TorchTargets,
    UnrollOutputs,
    categorical_ce,
    contrastive_term,
    efficientzero_terms,
    loss_terms,
    negative_cosine,
    pixel_errors,
    policy_term,
    reconstruction_term,
    spr_term,
    total_loss,
)
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec


def test_categorical_ce_of_uniform_logits_is_log_n():
    ce = categorical_ce(torch.zeros(2, 5), torch.tensor([[1.0, 0, 0, 0, 0], [0.2] * 5]))
    assert torch.allclose(ce, torch.full((2,), math.log(5)))


def test_negative_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    assert torch.allclose(negative_cosine(a, b), torch.tensor([-1.0, 1.0]))


def _uniform_outputs_and_targets():
    """Uniform logits, two unroll steps, partly masked targets: every term has a hand-computed value."""
    B, K, A = 1, 2, 4  # support size 1: bins -1..1 -> 3 logits
    out = UnrollOutputs(
        value_logits=torch.zeros(B, K + 1, 3),
        policy_logits=torch.zeros(B, K + 1, A),
        value_prefix_logits=torch.zeros(B, K, 3),
        proj_pred=torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]),
        proj_target=torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]),
    )
    tgt = TorchTargets(
        value_prefix=torch.zeros(B, K),
        value=torch.zeros(B, K + 1),
        policy=torch.full((B, K + 1, A), 0.25),
        mask_value_prefix=torch.tensor([[1.0, 0.0]]),
        mask_value=torch.tensor([[1.0, 1.0, 0.0]]),
        mask_policy=torch.tensor([[1.0, 0.0, 0.0]]),
        mask_obs=torch.tensor([[1.0, 1.0, 1.0]]),
    )
    return out, tgt


def test_weighted_sum_and_masks_by_hand():
    out, tgt = _uniform_outputs_and_targets()
    loss, parts = total_loss(out, tgt, efficientzero_terms(LossConfig()))
    # uniform logits: every CE term is log(3) (value/prefix) or log(4) (policy)
    assert math.isclose(float(parts["value"]), 2 * math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["value_prefix"]), math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["policy"]), math.log(4), rel_tol=1e-6)
    assert math.isclose(float(parts["consistency"]), -1.0 + 0.0, abs_tol=1e-6)
    expected = 0.25 * 2 * math.log(3) + math.log(3) + math.log(4) + 2 * (-1.0)
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_sampled_policy_loss_is_the_visit_weighted_gaussian_nll_by_hand():
    # one sample, one state (K = 0), a 1-d Box: mean 0.5, log std log(2); two sampled actions u = 0.5, 2.5
    # with visit fractions 0.75 / 0.25: -sum_i w_i log N(u_i; 0.5, 2) = log(2) + 0.5 log(2 pi) + 0.25 * 0.5
    out = UnrollOutputs(value_logits=torch.zeros(1, 1, 3), policy_logits=torch.tensor([[[0.5, math.log(2.0)]]]),
                        value_prefix_logits=torch.zeros(1, 0, 3), proj_pred=torch.zeros(1, 0, 2),
                        proj_target=torch.zeros(1, 0, 2))
    tgt = TorchTargets(value_prefix=torch.zeros(1, 0), value=torch.zeros(1, 1), policy=torch.tensor([[[0.75, 0.25]]]),
                       mask_value_prefix=torch.zeros(1, 0), mask_value=torch.ones(1, 1), mask_policy=torch.ones(1, 1),
                       mask_obs=torch.ones(1, 1), sampled=torch.tensor([[[[0.5], [2.5]]]]))
    want = math.log(2.0) + 0.5 * math.log(2 * math.pi) + 0.25 * 0.5 * (2.0 / 2.0) ** 2
    assert math.isclose(float(policy_term(out, tgt)), want, rel_tol=1e-6)
    # the log std is clipped like the search's (xfer.mcts.gaussian): a huge one scores as LOG_STD_MAX
    out.policy_logits = torch.tensor([[[0.5, 50.0]]])
    from xfer.mcts.gaussian import LOG_STD_MAX
    big = float(policy_term(out, tgt))
    sigma = math.exp(LOG_STD_MAX)
    assert math.isclose(big, LOG_STD_MAX + 0.5 * math.log(2 * math.pi) + 0.25 * 0.5 * (2.0 / sigma) ** 2, rel_tol=1e-6)


def test_a_new_loss_term_is_summed_and_logged_under_its_name():
    # issue 14: each loss is a named term; a learner's metrics (and so its log columns) follow its terms
    out, tgt = _uniform_outputs_and_targets()
    base, parts = total_loss(out, tgt, efficientzero_terms(LossConfig()))
    extra = LossTerm("latent_l2", 0.5, lambda o, t: o.proj_pred.pow(2).sum((1, 2)))
    loss, parts2 = total_loss(out, tgt, (*efficientzero_terms(LossConfig()), extra))
    assert torch.allclose(loss, base + 0.5 * parts2["latent_l2"]) and set(parts2) == set(parts) | {"latent_l2"}
    with pytest.raises(ValueError, match="distinct names"):
        total_loss(out, tgt, (extra, extra))

    net = build_network(net_spec("tiny"), *ATARI_INPUT, seed=0)
    learner = Learner(net, OptimConfig(), LossConfig(), 5, 10, augment=False,
                      terms=(*efficientzero_terms(LossConfig()), extra))
    assert "loss_latent_l2" in learner.metric_names
    assert learner.step_metric_names(2)[-3:] == ["loss_task0", "loss_task1", "loss_total"]
    metrics = learner.step(real_batch()).metrics
    assert set(metrics) == set(learner.step_metric_names(1)) and metrics["loss_latent_l2"] > 0


# ---- self-supervised terms of seed 000 (issue 15) -------------------------------------------------


def _ssl_outputs(proj_pred, target_proj, obs=None, reconstruction=None):
    B, K = proj_pred.shape[:2]
    out = UnrollOutputs(value_logits=torch.zeros(B, K + 1, 3), policy_logits=torch.zeros(B, K + 1, 2),
                        value_prefix_logits=torch.zeros(B, K, 3), proj_pred=proj_pred, proj_target=target_proj,
                        obs=obs, reconstruction=reconstruction, target_proj=target_proj)
    tgt = TorchTargets(value_prefix=torch.zeros(B, K), value=torch.zeros(B, K + 1),
                       policy=torch.full((B, K + 1, 2), 0.5), mask_value_prefix=torch.ones(B, K),
                       mask_value=torch.ones(B, K + 1), mask_policy=torch.ones(B, K + 1),
                       mask_obs=torch.ones(B, K + 1))
    return out, tgt


def test_reconstruction_is_the_pixel_mse_of_each_decoded_step_by_hand():
    # one sample, K = 1, observations of two pixels: o_0 = (0, 255), o_1 = (255, 255)
    obs = torch.tensor([[[[[0, 255]]], [[[255, 255]]]]], dtype=torch.uint8)  # [1, 2, 1, 1, 2]
    rec = torch.tensor([[[[[0.5, 1.0]]], [[[1.0, 0.0]]]]])
    out, tgt = _ssl_outputs(torch.ones(1, 1, 2), torch.ones(1, 1, 2), obs, rec)
    # squared errors: step 0 (0.25, 0): mean 0.125 + max 0.25; step 1 (0, 1): mean 0.5 + max 1
    assert torch.allclose(reconstruction_term(out, tgt), torch.tensor([0.375 + 1.5]))
    tgt.mask_obs = torch.tensor([[1.0, 0.0]])  # o_1 past the episode's end
    assert torch.allclose(reconstruction_term(out, tgt), torch.tensor([0.375]))
    # the paper's figures: |0.5*255 - 0| = 127.5, |0 - 255| = 255; mean (127.5 + 0 + 0 + 255) / 4
    errors = pixel_errors(rec, obs)
    assert errors == pytest.approx({"mean_pixel_error": 95.625, "max_pixel_error": 255.0})


def test_spr_is_the_normalised_l2_to_the_target_projection_by_hand():
    pred = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])  # [B=1, K=2, D=2]
    target = torch.tensor([[[0.0, 2.0], [1.0, 0.0]]])
    out, tgt = _ssl_outputs(pred, target)
    # step 1: |(1,0) - (0,1)|^2 = 2; step 2: same direction, 0
    assert torch.allclose(spr_term(out, tgt), torch.tensor([2.0]))


def test_contrastive_picks_the_own_target_among_the_batch_by_hand():
    # B = 2, K = 1, temperature 1; both predictions point at target 0
    pred = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    target = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    out, tgt = _ssl_outputs(pred, target)
    # cosine logits, row b = prediction b against targets: [[1, 0], [1, 0]]; columns (target b against
    # predictions): [[1, 1], [0, 0]]
    lse = math.log(math.e + 1)
    ce = [lse - 1, lse - 0]  # -log softmax of the own target
    p_row = [math.e / (math.e + 1), 1 / (math.e + 1)]
    log_row = [1 - lse, 0 - lse]
    log_col = [-math.log(2), -math.log(2)]  # both columns are uniform
    kl = sum(p * (lr - lc) for p, lr, lc in zip(p_row, log_row, log_col))
    no_kl = contrastive_term(1.0, 0.0)(out, tgt)
    assert torch.allclose(no_kl, torch.tensor(ce), atol=1e-6)
    assert torch.allclose(contrastive_term(1.0, 1.0)(out, tgt), torch.tensor([ce[0] + kl, ce[1] + kl]), atol=1e-6)
    # a sharper temperature: the well-matched sample's loss goes to 0, the confused one's to 1/T
    sharp = contrastive_term(0.1, 0.0)(out, tgt)
    assert float(sharp[0]) < 1e-4 and float(sharp[1]) == pytest.approx(10.0, abs=1e-3)


def test_contrastive_negatives_are_a_sampled_fraction_of_the_batch():
    # B = 4, one negative (25%): each sample chooses between its own target and the drawn one
    torch.manual_seed(3)
    pred = torch.nn.functional.normalize(torch.randn(4, 1, 3), dim=-1)
    target = torch.nn.functional.normalize(torch.randn(4, 1, 3), dim=-1)
    out, tgt = _ssl_outputs(pred, target)
    torch.manual_seed(7)
    got = contrastive_term(1.0, 0.0, negatives=0.25)(out, tgt)
    torch.manual_seed(7)
    n = int(torch.randperm(4)[0])
    cos = pred[:, 0] @ target[:, 0].T
    want = [0.0 if b == n else float(torch.logsumexp(torch.stack([cos[b, b], cos[b, n]]), 0) - cos[b, b])
            for b in range(4)]
    assert torch.allclose(got, torch.tensor(want), atol=1e-5)
    assert torch.isfinite(contrastive_term(1.0, 1.0, negatives=0.25)(out, tgt)).all()
    with pytest.raises(ValueError, match="fraction"):
        contrastive_term(1.0, 0.0, negatives=0.0)


def test_the_active_terms_follow_the_weights():
    assert [t.name for t in loss_terms(LossConfig())] == ["value", "value_prefix", "policy", "consistency"]
    terms = loss_terms(LossConfig(reconstruction=1.0, contrastive=0.1, spr=10.0))
    assert [(t.name, t.weight) for t in terms[4:]] == [("reconstruction", 1.0), ("contrastive", 0.1), ("spr", 10.0)]
    assert [set(t.needs) for t in terms[4:]] == [{"reconstruction"}, {"target_projection"}, {"target_projection"}]


def test_a_learner_with_every_self_supervised_term_trains_its_decoder_and_logs_each_term():
    torch.manual_seed(0)
    loss = LossConfig(reconstruction=1.0, contrastive=1.0, spr=10.0)
    net = build_network(net_spec("tiny", decoder=True), *ATARI_INPUT, seed=0)
    learner = Learner(net, OptimConfig(kind="adam", lr=1e-3, warmup_fraction=0.0), loss, 5, 10, augment=False)
    before = {k: v.clone() for k, v in net.decoder.state_dict().items()}
    batch = real_batch()
    first = learner.step(batch).metrics
    assert {"loss_reconstruction", "loss_contrastive", "loss_spr"} <= set(first)
    assert all(math.isfinite(v) for v in first.values())
    assert any(not torch.equal(before[k], v) for k, v in net.decoder.state_dict().items() if v.is_floating_point())
    for _ in range(15):
        last = learner.step(batch).metrics
    assert last["loss_reconstruction"] < first["loss_reconstruction"]


def test_a_reconstruction_loss_without_a_decoder_is_refused():
    from pydantic import ValidationError

    from xfer.config import TrainConfig

    with pytest.raises(ValidationError, match="set net.decoder=true"):
        TrainConfig(loss={"reconstruction": 1.0})
    assert TrainConfig(loss={"reconstruction": 1.0}, net={"decoder": True}).net.spec().decoder

"""param_groups: biases and normalization weights out of weight decay (article 7.3)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from optbook.torch import classic
from optbook.torch.param_groups import NORM_LAYERS, param_groups

torch.set_num_threads(1)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.fc1 = nn.Linear(6, 8)
        self.ln = nn.LayerNorm(8)
        self.bn = nn.BatchNorm1d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.rms = nn.RMSNorm(8)
        self.out = nn.Linear(8, 4, bias=False)  # the bias-free layer

    def forward(self, idx):
        h = self.emb(idx).mean(dim=1)
        # tanh between the norms: a norm right after a shift would make that shift's
        # gradient exactly zero (rounding noise, which Adam would blow up to full steps)
        h = torch.tanh(self.ln(self.fc1(h)))
        h = torch.tanh(self.bn(h))
        return self.out(self.rms(self.gn(h)))


DECAYED = {"emb.weight", "fc1.weight", "out.weight"}
NOT_DECAYED = {"fc1.bias", "ln.weight", "ln.bias", "bn.weight", "bn.bias", "gn.weight", "gn.bias",
               "rms.weight"}


def names_by_identity(model, group):
    """Names of a group's tensors, looked up by identity (not by the group's own labels)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [name_of[id(p)] for p in group["params"]]


def make_model(seed=0):
    torch.manual_seed(seed)
    model = Model().double()
    with torch.no_grad():  # move norm weights away from (1, 0) so decay would show
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_groups_are_the_expected_sets():
    model = make_model()
    decay, keep = param_groups(model, weight_decay=0.1)
    assert set(names_by_identity(model, decay)) == DECAYED
    assert set(names_by_identity(model, keep)) == NOT_DECAYED
    assert decay["param_names"] == names_by_identity(model, decay)
    assert keep["param_names"] == names_by_identity(model, keep)
    assert decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0


def test_each_parameter_exactly_once_in_model_order():
    model = make_model()
    groups = param_groups(model, 0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    for g in groups:  # each group keeps named_parameters() order
        order = [n for n, _ in model.named_parameters()]
        assert g["param_names"] == sorted(g["param_names"], key=order.index)


def test_embedding_optionally_excluded_and_biases_optionally_kept():
    model = make_model()
    _, keep = param_groups(model, 0.1, no_decay=NORM_LAYERS + (nn.Embedding,))
    assert set(names_by_identity(model, keep)) == NOT_DECAYED | {"emb.weight"}
    decay, keep = param_groups(model, 0.1, exclude_biases=False)
    assert set(names_by_identity(model, decay)) == DECAYED | {"fc1.bias"}
    assert "fc1.bias" not in set(names_by_identity(model, keep))
    assert "ln.bias" in set(names_by_identity(model, keep))  # still a norm layer's


def test_instance_norm_and_batchnorm2d_are_norm_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.InstanceNorm2d(2, affine=True))
    decay, keep = param_groups(model, 0.1)
    assert decay["param_names"] == ["0.weight"]
    assert keep["param_names"] == ["0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight  # weight tying (Press & Wolf 2017)


def test_shared_parameter_appears_once():
    model = Tied()
    decay, keep = param_groups(model, 0.1)
    assert decay["param_names"] == ["emb.weight"] and keep["param_names"] == []
    # excluded as soon as one of its owners is excluded
    decay, keep = param_groups(model, 0.1, no_decay=(nn.Embedding,))
    assert decay["param_names"] == [] and keep["param_names"] == ["emb.weight"]
    assert keep["params"][0] is model.head.weight


def test_errors():
    for empty in (nn.ReLU(), nn.Sequential()):
        with pytest.raises(ValueError, match="has no parameters"):
            param_groups(empty, 0.1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.1"):
        param_groups(make_model(), -0.1)
    with pytest.raises(ValueError, match="Invalid no_decay entry"):
        param_groups(make_model(), 0.1, no_decay=("LayerNorm",))
    with pytest.raises(TypeError, match="nn.Module"):
        param_groups([nn.Parameter(torch.zeros(1))], 0.1)


def _batch():
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 10, (16, 5), generator=g), torch.randn(16, 4, generator=g, dtype=torch.float64)


def test_adamw_over_the_groups_matches_torch_adamw():
    start = make_model()
    models = [copy.deepcopy(start), copy.deepcopy(start)]
    opts = [cls(param_groups(m, weight_decay=0.5), lr=0.01)
            for cls, m in zip((classic.AdamW, torch.optim.AdamW), models)]
    idx, y = _batch()
    for _ in range(5):
        for m, opt in zip(models, opts):
            opt.zero_grad()
            ((m(idx) - y) ** 2).mean().backward()
            opt.step()
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
        p, q = p.detach(), q.detach()
        assert float((p - q).abs().max()) <= 1e-10 * float(q.abs().max()), name


def test_with_zero_gradients_only_the_decay_group_moves():
    """A step with zero gradients isolates the decay: the decayed weights shrink by
    (1 - lr * wd), the others do not move -- for torch.optim.AdamW and for ours."""
    lr, wd = 0.01, 0.5
    start = make_model()
    for cls in (torch.optim.AdamW, classic.AdamW):
        model = copy.deepcopy(start)
        opt = cls(param_groups(model, weight_decay=wd), lr=lr)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        for (name, p), p0 in zip(model.named_parameters(), start.parameters()):
            expected = p0 * (1 - lr * wd) if name in DECAYED else p0
            torch.testing.assert_close(p.detach(), expected.detach(), rtol=1e-15, atol=0,
                                       msg=f"{cls.__module__}: {name}")

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
    # a 1-D bias is still caught by the dimension rule unless that is off too
    decay, keep = param_groups(model, 0.1, exclude_biases=False)
    assert "fc1.bias" in set(names_by_identity(model, keep))
    decay, keep = param_groups(model, 0.1, exclude_biases=False, exclude_1d=False)
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


# --- the five cases of issue 19, against the rules of nanoGPT, timm and HF Trainer --------
#
# Each oracle below is transcribed from the library's own source (not imported: none of
# the three is a dependency of the book):
#
# nanoGPT, model.py, GPT.configure_optimizers (github.com/karpathy/nanoGPT, commit
# 3adf61e154c3fe3fca428ad6bc3818b27a3b8291):
#     decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
#     nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
#
# timm, timm/optim/_param_groups.py, param_groups_weight_decay
# (github.com/huggingface/pytorch-image-models, commit aa4b5850c1543fa488abf260f18390eda46cf85d),
# called by create_optimizer_v2 (timm/optim/_optim_factory.py) with
# no_weight_decay_list = model.no_weight_decay() if the model has it:
#     matches_pattern = _matches_pattern(name, no_weight_decay_list)   # fnmatch
#     is_excluded_1d = weight_decay_exclude_1d and (param.ndim <= 1 or name.endswith(".bias"))
#     if is_excluded_1d or matches_pattern: no decay
#
# Hugging Face transformers, src/transformers/trainer.py, Trainer.get_decay_parameter_names
# (github.com/huggingface/transformers, commit 000945a9b726d87a93e61e873b88ff8f3cd411b5),
# with get_parameter_names from trainer_pt_utils.py:
#     forbidden_name_patterns = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
#     decay_parameters = get_parameter_names(model, [nn.LayerNorm], forbidden_name_patterns)
# get_parameter_names drops the parameters of children that are nn.LayerNorm and every
# name whose lower-cased full form matches one of the patterns (re.search).

import fnmatch
import math
import re


def nanogpt_decayed(model):
    return {n for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2}


def timm_decayed(model):
    no_weight_decay_list = getattr(model, "no_weight_decay", lambda: set())()
    out = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        matches_pattern = any(fnmatch.fnmatch(name, pat) for pat in no_weight_decay_list)
        is_excluded_1d = param.ndim <= 1 or name.endswith(".bias")
        if not (is_excluded_1d or matches_pattern):
            out.add(name)
    return out


def hf_get_parameter_names(model, forbidden_layer_types, forbidden_layer_names):
    patterns = [re.compile(p) for p in forbidden_layer_names]
    result = []
    for name, child in model.named_children():
        child_params = hf_get_parameter_names(child, forbidden_layer_types, forbidden_layer_names)
        result += [f"{name}.{n}" for n in child_params
                   if not isinstance(child, tuple(forbidden_layer_types))
                   and not any(p.search(f"{name}.{n}".lower()) for p in patterns)]
    result += [k for k in model._parameters if not any(p.search(k.lower()) for p in patterns)]
    return result


def hf_trainer_decayed(model):
    forbidden_name_patterns = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)",
                               r"_norm(?:$|\.)"]
    return set(hf_get_parameter_names(model, [nn.LayerNorm], forbidden_name_patterns))


class HandRMSNorm(nn.Module):
    """RMSNorm written out, as LLaMA's reference code does (not an nn.RMSNorm)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LayerScale(nn.Module):
    """timm's LayerScale (timm/layers/layer_scale.py): x * gamma, gamma of shape (dim,)."""

    def __init__(self, dim, init_values=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class FiveCases(nn.Module):
    """A ViT/CLIP-like toy holding the five parameters of issue 19's finding 6."""

    def __init__(self, dim=8, tokens=4, with_list=True):
        super().__init__()
        self.with_list = with_list
        self.patch = nn.Linear(6, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))               # 3-D
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))  # 3-D
        self.mlp = nn.Linear(dim, dim)
        self.ls = LayerScale(dim)                                           # ls.gamma, 1-D
        self.ln_f = HandRMSNorm(dim)                    # nanoGPT's name for the last norm
        self.head = nn.Linear(dim, 3, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # 0-d, as CLIP

    def no_weight_decay(self):
        return {"pos_embed", "cls_token", "reg_token"} if self.with_list else set()

    def forward(self, x):                                                   # (batch, tokens, 6)
        h = self.patch(x)
        h = torch.cat([self.cls_token.expand(len(x), -1, -1), h], dim=1) + self.pos_embed
        h = h + self.ls(torch.tanh(self.mlp(h)))
        return self.head(self.ln_f(h[:, 0])) * self.logit_scale.exp()


FIVE = {"ls.gamma", "logit_scale", "pos_embed", "cls_token", "ln_f.weight"}


def optbook_decayed(model, **kwargs):
    return set(param_groups(model, 0.1, **kwargs)[0]["param_names"])


def test_five_cases_optbook_excludes_what_timm_excludes():
    model = FiveCases()
    assert optbook_decayed(model) == timm_decayed(model) == {"patch.weight", "mlp.weight",
                                                            "head.weight"}
    assert not FIVE & optbook_decayed(model)


def test_five_cases_against_nanogpt_and_hf_trainer():
    """The dimension rule misses the two 3-D tokens; the type-and-name rule misses every
    case but none of the biases (a hand-written norm called ln_f is not matched)."""
    model = FiveCases()
    assert FIVE & nanogpt_decayed(model) == {"pos_embed", "cls_token"}
    assert FIVE & hf_trainer_decayed(model) == FIVE
    # optbook without the model's list = nanoGPT's split here; without the 1-D rule too,
    # it decays the layer scale, the temperature and the hand-written norm like HF
    assert optbook_decayed(model, no_decay_names=()) == nanogpt_decayed(model)
    old = optbook_decayed(model, no_decay_names=(), exclude_1d=False)
    assert FIVE & old == FIVE & hf_trainer_decayed(model)
    # HF does catch a hand-written norm by its name when it is called "norm"
    renamed = FiveCases()
    renamed.norm = renamed.ln_f
    del renamed.ln_f
    assert "norm.weight" not in hf_trainer_decayed(renamed)


def test_model_list_explicit_names_and_patterns():
    model = FiveCases(with_list=False)
    assert {"pos_embed", "cls_token"} <= optbook_decayed(model)     # no list: 3-D, decayed
    assert {"pos_embed", "cls_token"} <= timm_decayed(model)
    keep = set(param_groups(model, 0.1, no_decay_names=["pos_embed", "cls_*"])[1]["param_names"])
    assert {"pos_embed", "cls_token"} <= keep
    # an explicit list replaces the model's own
    listed = FiveCases()
    assert "pos_embed" in optbook_decayed(listed, no_decay_names=["cls_token"])
    # nested names and wildcards, as timm matches them (fnmatch on the full name)
    net = nn.Sequential(FiveCases(), FiveCases())
    keep = set(param_groups(net, 0.1, no_decay_names=["*.pos_embed"])[1]["param_names"])
    assert {"0.pos_embed", "1.pos_embed"} <= keep and "0.cls_token" not in keep


def test_norm_type_rule_still_catches_a_2d_gain():
    model = nn.Sequential(nn.Linear(6, 12), nn.LayerNorm((3, 4)))
    assert model[1].weight.ndim == 2
    assert optbook_decayed(model) == {"0.weight"}
    assert "1.weight" in nanogpt_decayed(model)      # the dimension rule alone decays it


def test_no_decay_names_errors():
    model = FiveCases()
    with pytest.raises(ValueError, match="Invalid no_decay_names entry: 'pos_emb' matches no"):
        param_groups(model, 0.1, no_decay_names=["pos_emb"])
    with pytest.raises(TypeError, match="not the string 'pos_embed'"):
        param_groups(model, 0.1, no_decay_names="pos_embed")
    with pytest.raises(TypeError, match="Invalid entry in no_decay_names: 3"):
        param_groups(model, 0.1, no_decay_names=[3])
    bad = FiveCases()
    bad.no_weight_decay = lambda: 5
    with pytest.raises(TypeError, match=r"FiveCases.no_weight_decay\(\) must be a collection"):
        param_groups(bad, 0.1)


def test_five_case_split_under_adamw_matches_torch_on_a_zero_gradient_step():
    """The groups drive torch.optim.AdamW: with zero gradients only the decayed three move."""
    torch.manual_seed(0)
    model = FiveCases().double()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(param_groups(model, 0.5), lr=0.01)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        factor = (1 - 0.01 * 0.5) if n in {"patch.weight", "mlp.weight", "head.weight"} else 1.0
        torch.testing.assert_close(p.detach(), before[n] * factor, rtol=1e-15, atol=0)
    model(torch.randn(2, 4, 6, dtype=torch.float64)).sum().backward()  # the toy runs


def test_chapter_table_rules_match_the_transcriptions_here():
    """optbook.experiments.decay_and_clipping prints the chapter's table with its own copies
    of the three rules: they must agree with the transcriptions above on both toys."""
    from optbook.experiments import decay_and_clipping as D

    torch.manual_seed(0)
    for model in (FiveCases(), D.ToyViT(), make_model()):
        assert D.nanogpt_decayed(model) == nanogpt_decayed(model)
        assert D.timm_decayed(model) == timm_decayed(model)
        assert D.hf_trainer_decayed(model) == hf_trainer_decayed(model)
        assert D.optbook_decayed(model) == optbook_decayed(model)
    toy = D.ToyViT()
    five = {"ls1.gamma", "logit_scale", "pos_embed", "cls_token", "ln_f.weight"}
    table = D.decay_table(toy)
    assert {n for n in five if table[n]["nanoGPT"]} == {"pos_embed", "cls_token"}
    assert not any(table[n]["timm"] or table[n]["optbook"] for n in five)
    assert all(table[n]["HF Trainer"] for n in five)


def test_weight_decay_must_be_a_real_number_and_is_stored_as_a_float():
    """check_number's float is what the group holds: a NumPy scalar becomes a Python float
    (torch.optim stores what it is given), a string or a bool is refused, not converted."""
    import numpy as np

    groups = param_groups(make_model(), np.float32(0.25))
    assert type(groups[0]["weight_decay"]) is float and groups[0]["weight_decay"] == 0.25
    assert type(param_groups(make_model(), 1)[0]["weight_decay"]) is float
    for bad in ("0.1", True, False, None, torch.tensor(0.1)):
        with pytest.raises(TypeError, match="weight_decay must be a real number, got"):
            param_groups(make_model(), bad)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Invalid weight_decay value"):
            param_groups(make_model(), bad)


def test_no_decay_accepts_a_single_class_and_rejects_a_non_collection():
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm((2, 3)))   # 2-D gain: only the type rule
    single = param_groups(model, 0.1, no_decay=nn.LayerNorm)
    as_tuple = param_groups(model, 0.1, no_decay=(nn.LayerNorm,))
    assert single[0]["param_names"] == as_tuple[0]["param_names"] == ["0.weight"]
    assert "1.weight" in param_groups(model, 0.1, no_decay=nn.BatchNorm1d)[0]["param_names"]
    with pytest.raises(TypeError, match="no_decay must be an nn.Module subclass or a tuple"):
        param_groups(model, 0.1, no_decay=3)
    with pytest.raises(ValueError, match="Invalid no_decay entry: <class 'int'>"):
        param_groups(model, 0.1, no_decay=int)


def test_no_weight_decay_as_an_attribute_is_used_like_the_method():
    with_method = FiveCases()                      # method returns pos_embed, cls_token, ...
    with_attr = FiveCases(with_list=False)
    with_attr.no_weight_decay = ["pos_embed", "cls_token"]     # a list, not a method
    assert optbook_decayed(with_attr) == optbook_decayed(with_method)
    assert not {"pos_embed", "cls_token"} & optbook_decayed(with_attr)
    with_attr.no_weight_decay = 5
    with pytest.raises(TypeError, match=r"FiveCases.no_weight_decay \(an attribute\) must be "
                                        r"a collection of names, got int"):
        param_groups(with_attr, 0.1)
    with_attr.no_weight_decay = "pos_embed"
    with pytest.raises(TypeError, match="not the string 'pos_embed'"):
        param_groups(with_attr, 0.1)


def test_explicit_names_replace_the_model_list_and_a_union_is_one_line():
    model = FiveCases()                            # lists pos_embed and cls_token
    only_cls = optbook_decayed(model, no_decay_names=["cls_token"])
    assert "pos_embed" in only_cls and "cls_token" not in only_cls
    union = optbook_decayed(model, no_decay_names=set(model.no_weight_decay()) | {"mlp.weight"})
    assert union == {"patch.weight", "head.weight"}      # "reg_token" matches nothing: excused
    with pytest.raises(ValueError, match="'reg_tokn' matches no parameter"):
        param_groups(model, 0.1, no_decay_names=["reg_tokn"])
    # () ignores the model's list without reading it, even a malformed one
    bad = FiveCases()
    bad.no_weight_decay = 5
    assert {"pos_embed", "cls_token"} <= optbook_decayed(bad, no_decay_names=())

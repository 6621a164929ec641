"""The shared training harness: data, batching, loop bookkeeping, divergence."""
import numpy as np
import pytest
import torch

from optbook.experiments.training import (epoch_batches, evaluate, mlp, teacher_classification,
                                          train)

torch.set_num_threads(1)


def test_epoch_batches_cover_each_example_once_per_epoch():
    g = torch.Generator().manual_seed(0)
    it = epoch_batches(10, 3, g)
    epoch = torch.cat([next(it) for _ in range(3)])  # 3 full batches, 1 example dropped
    assert len(set(epoch.tolist())) == 9


def test_teacher_labels_are_clean_on_validation_and_noisy_on_training():
    clean = teacher_classification(n_train=4000, n_val=10, label_noise=0.0, seed=3)
    noisy = teacher_classification(n_train=4000, n_val=10, label_noise=0.5, seed=3)
    assert torch.equal(clean.x_train, noisy.x_train)
    changed = (clean.y_train != noisy.y_train).float().mean().item()
    # half the labels are redrawn uniformly over 4 classes: 3/4 of those change
    assert changed == pytest.approx(0.5 * 3 / 4, abs=0.03)


def test_train_matches_a_hand_written_loop():
    data = teacher_classification(n_train=256, n_val=64, seed=1)
    model_a, model_b = mlp(20, 4, seed=2), mlp(20, 4, seed=2)
    hist = train(model_a, torch.optim.SGD(model_a.parameters(), lr=0.1), data,
                 steps=20, batch_size=32, eval_every=10, seed=5)
    opt = torch.optim.SGD(model_b.parameters(), lr=0.1)
    batches = epoch_batches(256, 32, torch.Generator().manual_seed(5))
    for _ in range(20):
        idx = next(batches)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model_b(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(pa, pb)
    assert list(hist.eval_steps) == [10, 20]
    assert hist.final_val_loss == pytest.approx(evaluate(model_b, data.x_val, data.y_val)[0])


def test_divergence_is_flagged_not_propagated():
    data = teacher_classification(n_train=256, n_val=64, seed=1)
    model = mlp(20, 4, seed=0)
    hist = train(model, torch.optim.SGD(model.parameters(), lr=1e6), data, steps=50,
                 batch_size=32, eval_every=5)
    assert hist.diverged
    assert np.all(np.isfinite(hist.train_loss))
    assert len(hist.train_loss) < 50


@pytest.mark.parametrize("kwargs, name", [({"steps": 0}, "steps"), ({"batch_size": 10**6}, "batch_size"),
                                          ({"clip_norm": -1.0}, "clip_norm"), ({"eval_every": 0}, "eval_every")])
def test_invalid_arguments_name_themselves(kwargs, name):
    data = teacher_classification(n_train=64, n_val=8)
    model = mlp(20, 4)
    args = dict(steps=5, batch_size=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"Invalid {name}"):
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), data, **args)

"""Which flags a resume may change: the rules of `train.resume_check`, written out case by case."""

import pytest

import skipless_models
from train.config import TrainConfig
from train.resume_check import check_resume, resume_conflicts


def _saved(**changes) -> dict:
    return TrainConfig(model=skipless_models.preset("cpu-tiny"), tokenizer="byte", **changes).to_dict()


def _resumed(saved: dict, model=None, **changes) -> dict:
    config = TrainConfig.from_dict(saved)
    if model:
        config = config.replace(model=config.model.replace(**model))
    return config.replace(**changes).to_dict()


def test_execution_fields_and_schedule_may_change():
    saved = _saved()
    new = _resumed(saved, model=dict(scan_unroll=1, remat=True, attention_impl="xla"), steps=900, lr=5e-4,
                   warmup=3, schedule="linear", mesh="2x2", eval_every=7, checkpoint_every=9, keep_checkpoints=1,
                   grad_clip=0.5, weight_decay=0.01, lr_multipliers={"gain": 3.0}, out="elsewhere", data_dir="d2")
    assert resume_conflicts(saved, new) == []
    check_resume(saved, new, source="run")  # does not raise


def test_model_and_data_fields_are_named_with_both_values():
    saved = _saved()
    new = _resumed(saved, model=dict(width=64, attention="uspa"), batch_size=4, seed=3, tokenizer="bpe:512",
                   text_field="body", optimizer="sgd")
    assert resume_conflicts(saved, new) == [
        ("--attention", "espa", "uspa"), ("--mlp-width", 512, 256), ("--width", 128, 64), ("--tokenizer", "byte", "bpe:512"),
        ("--text-field", "text", "body"), ("--batch-size", 16, 4), ("--seed", 0, 3), ("--optimizer", "adamw", "sgd"),
    ]
    with pytest.raises(ValueError) as refused:
        check_resume(saved, new, source="runs/x", fresh_start_hint="(no checkpoint yet)")
    line = str(refused.value)
    assert "\n" not in line and line.startswith("--resume: runs/x was trained with --attention espa (not uspa)")
    assert "--width 128 (not 64)" in line and line.endswith("(no checkpoint yet)")


@pytest.mark.parametrize("optimizer, field, before, after, conflict", [
    ("adamw", "grad_clip", 1.0, 0.0, True),      # clipping adds a state entry when on
    ("adamw", "grad_clip", 0.0, 2.0, True),
    ("adamw", "grad_clip", 1.0, 3.0, False),     # another positive threshold: same state
    ("adamw", "weight_decay", 0.1, 0.0, True),
    ("adam", "weight_decay", 0.1, 0.0, False),   # adam ignores weight decay
    ("sgd", "momentum", 0.9, 0.0, True),
    ("adamw", "momentum", 0.9, 0.0, False),      # only SGD has momentum state
])
def test_optimiser_terms_may_not_be_switched(optimizer, field, before, after, conflict):
    saved = _saved(optimizer=optimizer, **{field: before})
    found = resume_conflicts(saved, _resumed(saved, **{field: after}))
    assert bool(found) == conflict, found


def test_switching_is_explained_and_a_missing_tokenizer_matches():
    saved = _saved()
    with pytest.raises(ValueError, match="can change value on resume but not turn on or off"):
        check_resume(saved, _resumed(saved, grad_clip=0.0), source="run")
    assert resume_conflicts(saved, _resumed(saved, tokenizer=None)) == []


def test_the_optimiser_state_oracle_agrees():
    """Independent check of the rules: the optimiser state tree of the saved and the resumed config."""
    import jax

    from train.mesh import make_mesh
    from train.optim import make_optimizer
    from train.state import describe_model

    model = skipless_models.preset("cpu-tiny").replace(depth=2, width=32, heads=4, mlp_width=64, seq_len=16)
    setup = describe_model(model, make_mesh(1, 1), jax.random.key(0))

    def structure(config):
        return jax.tree.structure(jax.eval_shape(make_optimizer(config, setup.labels).init, setup.abstract_params))

    base = TrainConfig(model=model, tokenizer="byte")
    for changes in [dict(grad_clip=0.0), dict(weight_decay=0.0), dict(grad_clip=3.0, weight_decay=0.5, lr=1.0),
                    dict(optimizer="sgd"), dict(lr_multipliers={"gain": 0.0})]:
        changed = base.replace(**changes)
        same_state = structure(changed) == structure(base)
        assert same_state == (not resume_conflicts(base.to_dict(), changed.to_dict())), changes

"""A saved model config holds its meaning: no null / "auto" whose value lives in a module default."""

import dataclasses
import json

import equinox as eqx
import jax
import numpy as np
import pytest
import sigprop

import skipless_models as sm
from skipless_models.config import EXECUTION_FIELDS

CASES = [
    dict(block="vanilla", attention="espa"),
    dict(block="vanilla", attention="uspa", depth=3),
    dict(block="preln", attention="standard", mlp_activation="gelu"),
    dict(block="skipless_ln", attention="value_skipinit"),
    dict(block="vanilla", attention="standard"),
]


def tiny(**fields):
    return sm.ModelConfig(**{**dict(vocab_size=32, width=16, depth=2, heads=2, seq_len=8), **fields})


@pytest.mark.parametrize("fields", CASES)
def test_saved_config_has_no_symbolic_meaning_and_builds_the_same_model(fields):
    cfg = tiny(**fields)
    saved = json.loads(json.dumps(cfg.to_dict()))
    meaning = {k: v for k, v in saved.items() if k not in EXECUTION_FIELDS}
    assert None not in meaning.values() and "auto" not in meaning.values(), meaning
    # the oracle for the meaning: the model the unresolved config builds, leaf for leaf
    want = eqx.filter(sm.build_model(cfg, key=jax.random.key(3), verbose=False), eqx.is_array)
    got = eqx.filter(sm.build_model(sm.ModelConfig.from_dict(saved), key=jax.random.key(3), verbose=False),
                     eqx.is_array)
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert sm.ModelConfig.from_dict(saved).unresolved_fields == ()


def test_resolved_values_are_sigprops_defaults_in_float64():
    cfg = tiny(attention="espa", depth=8)
    relu_reach = float(sigprop.composed_cmap(0.0, 0.0, 8))
    done = cfg.resolved()
    assert done.tat_eta == min(sigprop.DEFAULT_ETA, 0.9 * relu_reach)
    assert (done.gamma_final, done.rho_final) == (sigprop.DEFAULT_GAMMA_FINAL, sigprop.DEFAULT_RHO_FINAL)
    assert done.init == "sigprop" and tiny(block="preln").resolved().init == "gpt2"
    assert tiny(attention="standard").resolved().init == "fan_in"
    assert set(cfg.unresolved_fields) == {"init", "tat_eta", "gamma_final", "rho_final"}
    # execution choices stay as given: "auto" picks per machine, and a resume may change them
    assert (done.attention_impl, done.scan_unroll) == ("auto", 0)


def test_a_changed_default_does_not_change_a_saved_config(monkeypatch):
    saved = json.loads(json.dumps(tiny(attention="espa").to_dict()))
    monkeypatch.setattr(sigprop, "DEFAULT_GAMMA_FINAL", 0.05)
    monkeypatch.setattr(sigprop, "DEFAULT_ETA", 0.3)
    restored = sm.ModelConfig.from_dict(saved)
    assert restored.resolved_knobs()["gamma_final"] == saved["gamma_final"] != 0.05
    assert restored.resolved_knobs()["tat_eta"] == saved["tat_eta"] != 0.3
    assert tiny(attention="espa").resolved().gamma_final == 0.05  # a new config does take the new default
    assert dataclasses.replace(restored, gamma_final=None).resolved().gamma_final == 0.05

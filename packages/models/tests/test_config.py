import json

import pytest
import sigprop

import skipless_models as sm


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("block", "resnet", "block"),
        ("attention", "flash", "attention"),
        ("mlp_activation", "tanh", "mlp_activation"),
        ("init", "xavier", "init"),
        ("position", "alibi", "position"),
        ("compute_dtype", "float16", "compute_dtype"),
        ("heads", 5, "divisible"),
        ("depth", 0, "depth"),
        ("tat_eta", 1.5, "tat_eta"),
        ("gamma_final", -1.0, "gamma_final"),
        ("rho_final", 1.0, "rho_final"),
    ],
)
def test_bad_fields_raise_clear_errors(field, value, needle):
    with pytest.raises(ValueError, match=needle):
        sm.ModelConfig(**{**dict(vocab_size=10, width=32, heads=4), field: value})


def test_joint_budget_needs_tat_mlps():
    with pytest.raises(ValueError, match="joint"):
        sm.ModelConfig(attention="espa", kernel_budget="joint", mlp_activation="gelu")
    with pytest.raises(ValueError, match="joint"):
        sm.ModelConfig(attention="espa", kernel_budget="joint", use_mlp=False)


def test_roundtrip_and_replace():
    cfg = sm.ModelConfig(vocab_size=50, width=64, heads=4, depth=6, attention="uspa", rho_final=0.4)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert sm.ModelConfig.from_dict(d) == cfg.resolved()
    assert sm.ModelConfig.from_dict(d).rho_final == 0.4
    assert cfg.mlp_width == 256
    wider = cfg.replace(width=128)
    assert wider.mlp_width == 512 and wider.depth == 6 and wider.attention == "uspa"
    assert cfg.replace(width=128, mlp_width=100).mlp_width == 100
    with pytest.raises(ValueError, match="unknown field"):
        cfg.replace(widht=3)
    with pytest.raises(ValueError, match="unknown field"):
        sm.ModelConfig.from_dict({**d, "colour": 1})


def test_auto_init_follows_the_method():
    assert sm.ModelConfig(block="preln", attention="standard").resolved_init == "gpt2"
    assert sm.ModelConfig(block="vanilla", attention="standard").resolved_init == "fan_in"
    for att in ("value_skipinit", "uspa", "espa"):
        assert sm.ModelConfig(block="vanilla", attention=att).resolved_init == "sigprop"
    assert sm.ModelConfig(block="vanilla", attention="espa", init="gpt2").resolved_init == "gpt2"


def test_knob_defaults_come_from_sigprop():
    deep = sm.ModelConfig(depth=16).resolved_knobs()
    assert deep == dict(
        tat_eta=sigprop.DEFAULT_ETA, gamma_final=sigprop.DEFAULT_GAMMA_FINAL, rho_final=sigprop.DEFAULT_RHO_FINAL
    )
    # too shallow for the default η: capped below what ReLU reaches, so the TAT slope exists
    shallow = sm.ModelConfig(depth=2)
    eta = shallow.resolved_knobs()["tat_eta"]
    assert eta < float(sigprop.composed_cmap(0.0, 0.0, 2))
    assert 0.0 <= sm.tat_alpha(shallow) < 1.0


def test_presets():
    for name in ("cpu-tiny", "wt103-36l", "c4-72l", "tat-default", "smoke", "cpu-small"):
        assert isinstance(sm.PRESETS[name].model, sm.ModelConfig) and isinstance(sm.PRESETS[name].run, sm.RunShape)
    assert sm.preset("wt103-36l").depth == 36 and sm.preset("c4-72l").depth == 72
    assert sm.get_preset("c4-72l").run.steps == 100_000
    tat = sm.preset("tat-default")
    assert tat.tat_eta == sigprop.TAT_PRESET["eta"] and tat.gamma_final == sigprop.TAT_PRESET["gamma_final"]
    assert sm.preset("cpu-tiny", attention="uspa").attention == "uspa"
    with pytest.raises(ValueError, match="unknown preset"):
        sm.preset("gpt-5")


def test_default_knobs_keep_cpu_tiny_out_of_collapse():
    cos = sm.predicted_final_cosine(sm.preset("cpu-tiny"))
    assert 0.6 <= cos <= 0.85
    assert sm.predicted_final_cosine(sm.preset("tat-default")) > 0.95

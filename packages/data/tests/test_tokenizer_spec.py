import pytest

from skipless_data import TokenizerSpec, parse_tokenizer_spec


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("byte", TokenizerSpec("byte", 256)),
        (" BYTE ", TokenizerSpec("byte", 256)),
        ("bpe:8192", TokenizerSpec("bpe", 8192)),
        ("bpe:257", TokenizerSpec("bpe", 257)),
    ],
)
def test_valid_specs(spec, expected):
    parsed = parse_tokenizer_spec(spec)
    assert parsed == expected
    assert parse_tokenizer_spec(str(parsed)) == parsed


@pytest.mark.parametrize(
    "spec", ["", "bytes", "bpe", "bpe:", "bpe:x", "bpe:-5", "bpe:100", "wordpiece:8"]
)
def test_invalid_specs_raise_one_line(spec):
    with pytest.raises(ValueError) as error:
        parse_tokenizer_spec(spec)
    message = str(error.value)
    assert "\n" not in message and ("byte" in message or "bpe" in message)


@pytest.mark.parametrize("spec", ["bpe:-5", "bpe:0", "bpe:100"])
def test_an_integer_out_of_range_is_called_out_of_range(spec):
    with pytest.raises(ValueError) as error:
        parse_tokenizer_spec(spec)
    assert "must lie in [257," in str(error.value) and "no integer" not in str(error.value)

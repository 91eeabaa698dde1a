import numpy as np

from skipless_data import ByteTokenizer, load_tokenizer, parse_tokenizer_spec
from skipless_data.text_tokenizer import train_bpe


def test_byte_tokenizer_is_utf8(sample_text):
    text = sample_text(20)
    (ids,) = ByteTokenizer().encode_batch([text])
    np.testing.assert_array_equal(ids, np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
    assert ByteTokenizer().decode(ids) == text


def test_bpe_round_trip_piecewise_and_reload(tmp_path, sample_text):
    lines = sample_text(300).splitlines(keepends=True)
    tokenizer = train_bpe(iter(lines), parse_tokenizer_spec("bpe:400"))
    ids = np.concatenate(tokenizer.encode_batch(lines))
    assert ids.max() < 400
    # BPE compresses: fewer tokens than bytes.
    assert ids.size < len("".join(lines).encode("utf-8"))
    assert tokenizer.decode(ids) == "".join(lines)
    tokenizer.save(tmp_path)
    reloaded = load_tokenizer("bpe:400", tmp_path)
    np.testing.assert_array_equal(np.concatenate(reloaded.encode_batch(lines)), ids)
    unseen = "completely unseen → text ✓ with rare bytes \x00\x7f\n"
    assert reloaded.decode(np.concatenate(reloaded.encode_batch([unseen]))) == unseen

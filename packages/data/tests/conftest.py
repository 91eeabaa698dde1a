import os

import pytest

WIKITEXT = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data", "wikitext-2")
)

SAMPLE_LINES = [
    "The quick brown fox jumps over the lazy dog.\n",
    "Ünïcödé survives: naïve café, 東京, emoji 🙂 and tabs\there.\n",
    "\n",
    "  = Heading with leading spaces =  \n",
    "Numbers 1234567890 and punctuation !?;:'\"()[]{}.\n",
]


def _sample_text(lines: int) -> str:
    return "".join(f"{i:05d} {SAMPLE_LINES[i % len(SAMPLE_LINES)]}" for i in range(lines))


@pytest.fixture
def sample_text():
    """`sample_text(lines)`: a deterministic text with non-ASCII characters and blank lines."""
    return _sample_text


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(_sample_text(400), encoding="utf-8")
    return path


@pytest.fixture
def wikitext():
    if not os.path.isdir(WIKITEXT):
        pytest.skip(f"WikiText-2 not found at {WIKITEXT} (the shared data folder is absent)")
    return WIKITEXT

"""Every `python -m evals.<tool>` command line the docs show still parses, for the tools whose command line is
generated from a dataclass (`parse_options`). The docs are the repository's Markdown pages; a command is read
from a ```bash block (to the end of the line, `\\` continuing it, ` #` starting a comment) or from inline code in
prose (to the closing backtick, across a line wrap). `<placeholders>` become one word, `[optional]` brackets go.
Nothing is run: only the command lines are parsed. A few inline mentions name a tool (or one flag of it) in prose
without being a whole command; `MENTIONS` lists them, and they must still be on their page.
"""

import importlib
import pathlib
import re
import shlex

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ("generate", "protocol", "compare_runs", "device_check", "generate_bench", "reproduce", "bench_step",
         "bench_step_ab", "bench_attention", "bench_memory", "bench_prepare", "bench_data", "bench_init_qr")
SKIP_DIRS = {".venv", ".git", "node_modules", "runs", "__pycache__"}  # runs/: training output, not docs
MENTIONS = {  # (page, tool, arguments): prose that names a tool, not a command to run
    ("evals/README.md", "protocol", ()),
    ("packages/data/README.md", "protocol", ("--suite", "claims-wt2")),
}


def markdown_pages() -> list[pathlib.Path]:
    return sorted(p for p in REPO.rglob("*.md") if not SKIP_DIRS & set(p.relative_to(REPO).parts))


def _fenced_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"^```.*?^```", text, flags=re.S | re.M)]


def documented_commands(text: str, tool: str) -> list[list[str]]:
    """The argument lists of every `python -m evals.<tool>` command in a page's text."""
    fenced = _fenced_spans(text)
    commands = []
    for match in re.finditer(rf"python3? -m evals\.{tool}(?![\w.])", text):
        rest = text[match.end():]
        if any(start <= match.start() < end for start, end in fenced):
            command = re.split(r"(?<!\\)\n", rest, maxsplit=1)[0].replace("\\\n", " ")
            command = re.split(r"\s#", command, maxsplit=1)[0]
        else:
            command = rest.split("`", 1)[0]
        command = re.sub(r"<[^>]*>", "PLACEHOLDER", command).replace("[", " ").replace("]", " ")
        commands.append(shlex.split(command))
    return commands


def _cases():
    cases = []
    for page in markdown_pages():
        text = page.read_text(encoding="utf-8")
        for tool in TOOLS:
            for argv in documented_commands(text, tool):
                if (str(page.relative_to(REPO)), tool, tuple(argv)) in MENTIONS:
                    continue
                cases.append(pytest.param(tool, argv, id=f"{page.relative_to(REPO)}:{tool}:{' '.join(argv)}"))
    return cases


CASES = _cases()


def test_the_docs_show_each_tool():
    """The reader below finds the documented commands (an empty list would make the test below vacuous)."""
    assert {tool for tool, *_ in (case.values for case in CASES)} == set(TOOLS)


def test_the_reader_follows_blocks_and_prose():
    page = ("```bash\nuv run python -m evals.generate --checkpoint runs/<a run> --prompt \"x y\" \\\n"
            "  --length 3   # comment\n```\nprose `python -m evals.generate --checkpoint r\n--prompt z` more\n")
    assert documented_commands(page, "generate") == [
        ["--checkpoint", "runs/PLACEHOLDER", "--prompt", "x y", "--length", "3"],
        ["--checkpoint", "r", "--prompt", "z"]]


@pytest.mark.parametrize("page,tool,argv", sorted(MENTIONS))
def test_each_listed_mention_is_on_its_page(page, tool, argv):
    assert list(argv) in documented_commands((REPO / page).read_text(encoding="utf-8"), tool)


@pytest.mark.parametrize("tool,argv", CASES)
def test_documented_command_parses(tool, argv, capsys):
    parse_options = importlib.import_module(f"evals.{tool}").parse_options
    if "--help" in argv:
        with pytest.raises(SystemExit) as stop:
            parse_options(argv)
        assert stop.value.code in (0, None) and "usage:" in capsys.readouterr().out
        return
    parse_options(argv)  # raises UsageError for a command line that does not parse

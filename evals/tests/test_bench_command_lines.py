"""The benchmarks' command lines (nothing is benchmarked here): the defaults of the hand-written parsers they
replaced, and a bad value is one `error:` line on stderr with exit status 2, before any work starts."""

import importlib
import subprocess
import sys

import pytest

from evals.bench_step import DEFAULT_CASES

DEFAULTS = {  # module: (argv, {field: value})
    "bench_step": ([], dict(cases=",".join(DEFAULT_CASES), dtypes="float32", steps=12, rounds=4,
                            compile_depths="12,36,72", scan_unroll=None, torch_path=None, no_torch=False,
                            malloc="hugepage", out="bench_step.json")),
    "bench_step_ab": (["--baseline", "main"],
                      dict(baseline="main", cases="tiny-espa,tiny-uspa,tiny-vanilla,deep-espa,deep-uspa",
                           dtypes="float32", steps=16, rounds=8, malloc="hugepage", out="bench_step_ab.json")),
    "bench_attention": ([], dict(seq_lens="512,1024,2048,4096,8192", head_dims="64,128", tokens=16384, heads=8,
                                 dtype="bfloat16", repeats=10, methods="", out="bench_attention.json")),
    "bench_memory": ([], dict(depth=72, width=128, heads=4, seq_len=2048, attention="espa", batch=1, remat=True,
                              out=None)),
    "bench_prepare": ([], dict(corpus_mb=48.0, workers=2, tokenizer="bpe:8192", big_mb=0.0,
                               out="runs/bench_prepare.json")),
    "bench_data": ([], dict(out="runs/bench_data.json", train_tokens_per_s=2000.0, seconds=3.0)),
    "bench_init_qr": ([], dict(shapes="8x512x128,72x512x128,16x128x128", repeats=6, out="bench_init_qr.json")),
}
GIVEN = {  # module: (argv, {field: value})
    "bench_step": (["--cases", "tiny-espa", "--dtypes", "float32,bfloat16", "--steps", "3", "--rounds", "2",
                    "--compile-depths", "", "--scan-unroll", "0", "--torch-path", "/t", "--no-torch", "--malloc",
                    "default", "--out", "o.json"],
                   dict(cases="tiny-espa", dtypes="float32,bfloat16", steps=3, rounds=2, compile_depths="",
                        scan_unroll=0, torch_path="/t", no_torch=True, malloc="default", out="o.json")),
    "bench_step_ab": (["--baseline", "main", "--cases", "tiny-espa,tiny-preln", "--dtypes", "bfloat16", "--steps",
                       "48", "--rounds", "2", "--malloc", "default", "--out", "ab.json"],
                      dict(baseline="main", cases="tiny-espa,tiny-preln", dtypes="bfloat16", steps=48, rounds=2,
                           malloc="default", out="ab.json")),
    "bench_attention": (["--methods", "xla_reference_bias", "--seq-lens", "128", "--head-dims", "32", "--heads",
                         "4", "--tokens", "2048", "--dtype", "float32", "--repeats", "50", "--out", "a.json"],
                        dict(methods="xla_reference_bias", seq_lens="128", head_dims="32", heads=4, tokens=2048,
                             dtype="float32", repeats=50, out="a.json")),
    "bench_memory": (["--depth", "2", "--width", "16", "--heads", "2", "--seq-len", "32", "--attention", "uspa",
                      "--batch", "3", "--remat", "false", "--out", "m.json"],
                     dict(depth=2, width=16, heads=2, seq_len=32, attention="uspa", batch=3, remat=False,
                          out="m.json")),
    "bench_prepare": (["--corpus-mb", "256", "--workers", "4", "--tokenizer", "bpe:512", "--big-mb", "1024", "--out",
                       "p.json"], dict(corpus_mb=256.0, workers=4, tokenizer="bpe:512", big_mb=1024.0, out="p.json")),
    "bench_data": (["--out", "d.json", "--train-tokens-per-s", "1500", "--seconds", "0.5"],
                   dict(out="d.json", train_tokens_per_s=1500.0, seconds=0.5)),
    "bench_init_qr": (["--shapes", "2x16x8", "--repeats", "2", "--out", "q.json"],
                      dict(shapes="2x16x8", repeats=2, out="q.json")),
}
BAD = [  # (module, argv, words in the error line)
    ("bench_step", ["--cases", "nope"], "unknown case(s) ['nope']"),
    ("bench_step", ["--dtypes", "float16"], "unknown dtype(s) ['float16']"),
    ("bench_step", ["--steps", "0"], "--steps and --rounds must be >= 1"),
    ("bench_step", ["--steps", "many"], "--steps"),
    ("bench_step", ["--scan-unroll", "-1"], "--scan-unroll must be >= 0"),
    ("bench_step", ["--compile-depths", "12,x"], "--compile-depths"),
    ("bench_step", ["--malloc", "jemalloc"], "jemalloc"),
    ("bench_step", ["--no-torch", "true"], "true"),
    ("bench_step_ab", ["--cases", "tiny-espa"], "--baseline is required"),
    ("bench_step_ab", ["--baseline", "main", "--cases", "nope"], "unknown case(s) ['nope']"),
    ("bench_step_ab", ["--baseline", "main", "--dtypes", "float32,bfloat16"], "float32,bfloat16"),
    ("bench_step_ab", ["--baseline", "main", "--rounds", "0"], "--steps and --rounds must be >= 1"),
    ("bench_step_ab", ["--baseline", "no-such-revision-xyz", "--cases", "tiny-espa"], "neither a folder nor"),
    ("bench_attention", ["--methods", "nope"], "unknown method(s) ['nope']"),
    ("bench_attention", ["--seq-lens", "128,x"], "--seq-lens '128,x': give a comma list of positive integers"),
    ("bench_attention", ["--head-dims", ""], "--head-dims"),
    ("bench_attention", ["--heads", "0"], "--heads=0 must be a positive integer"),
    ("bench_attention", ["--dtype", "float16"], "float16"),
    ("bench_memory", ["--depth", "0"], "--depth, --width, --heads, --seq-len and --batch must be positive"),
    ("bench_memory", ["--attention", "flash"], "flash"),
    ("bench_memory", ["--remat", "maybe"], "maybe"),
    ("bench_memory", ["--remat"], "--remat"),
    ("bench_memory", ["--seq-len", "2k"], "--seq-len"),
    ("bench_prepare", ["--corpus-mb", "0"], "--corpus-mb=0.0 must be positive"),
    ("bench_prepare", ["--workers", "0"], "--workers=0 must be a positive integer"),
    ("bench_prepare", ["--big-mb", "-1"], "--big-mb=-1.0 must be >= 0"),
    ("bench_prepare", ["--tokenizer", "bpe:x"], "--tokenizer: tokenizer spec 'bpe:x'"),
    ("bench_prepare", ["--corpus-mb", "lots"], "--corpus-mb"),
    ("bench_data", ["--seconds", "0"], "--seconds=0.0 must be positive"),
    ("bench_data", ["--train-tokens-per-s", "-5"], "--train-tokens-per-s=-5.0 must be positive"),
    ("bench_data", ["--seconds", "three"], "--seconds"),
    ("bench_init_qr", ["--shapes", "8x512"], "--shapes entry '8x512' is not LxNxK"),
    ("bench_init_qr", ["--repeats", "0"], "--repeats=0 must be at least 1"),
    ("bench_init_qr", ["--repeats", "2.5"], "--repeats"),
]


@pytest.mark.parametrize("module", sorted(DEFAULTS))
def test_defaults_and_given_values(module):
    parse_options = importlib.import_module(f"evals.{module}").parse_options
    for argv, want in (DEFAULTS[module], GIVEN[module]):
        options = parse_options(argv)
        assert {name: getattr(options, name) for name in want} == want


@pytest.mark.parametrize("module,argv,words", BAD)
def test_bad_value_is_one_line_and_exit_2(module, argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:  # a benchmark's main exits 2, or returns 2 where it returns an exit status
        code = importlib.import_module(f"evals.{module}").main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", sorted(DEFAULTS))
def test_bad_value_as_a_process(module, tmp_path):
    done = subprocess.run([sys.executable, "-m", f"evals.{module}", "--no-such-flag", "1"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "--no-such-flag" in done.stderr and "Traceback" not in done.stderr


def test_bench_prepare_setting_process_measures_what_tokenising_in_process_does(tmp_path):
    """A setting's fresh process (started without a command line) reports the corpus's bytes and tokens as
    tokenising it in this process does."""
    from evals import bench_prepare

    corpus, tokenizer = str(tmp_path / "corpus"), tmp_path / "tokenizer"
    tokenizer.mkdir()
    text_bytes = bench_prepare.make_corpus(corpus, 0.05)
    bench_prepare._train_tokenizer(corpus, "bpe:300", str(tokenizer))
    row = bench_prepare._run_setting(corpus, str(tokenizer), 1, False)
    here = bench_prepare.tokenise_once(corpus, str(tokenizer), 1)
    assert row["text_bytes"] == here["text_bytes"] == text_bytes and row["tokens"] == here["tokens"] > 0

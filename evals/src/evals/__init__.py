"""evals: signal-propagation diagnostics, perplexity, method-comparison suites, plots and benchmarks.

Command-line tools (`python -m evals.<tool>`): `reproduce` (method-comparison suites), `perplexity`
(score a checkpoint), `signal_prop` (kernels at init), `bench_*` (speed benchmarks).

Public API of the comparison tools (import from the modules; nothing heavy is imported here):

- `evals.suites`: `Suite`, `RunSpec`, `METHODS`, `SUITES`, `get_suite`, `comparison_runs`, `ablation_runs`.
- `evals.reproduce`: `reproduce(suite, data, out)`, `write_results`, `dry_run`, `train_command`.
- `evals.suite_runs`: `resolve_data`, `model_config`, `train_config`, `execute_run`, `read_status`.
- `evals.results`: `collect`, `run_record`, `best_lr`; `evals.results_markdown.results_markdown`;
  `evals.plots.plot_loss_curves`.
- `evals.measures`: `curves`, `smoothed`, `steps_to_reach`, `run_measures`, `versus_baseline`.
- `evals.baselines`: `count_baselines`, `unigram_cross_entropy`, `bigram_cross_entropy_with`.
- `evals.init_summary`: `init_signal_summary` (inputs: `sigprop.orthogonal_inputs`).
- `evals.perplexity`: `evaluate_checkpoint`, `PerplexityReport`, `eval_windows`, `restore_model`.
"""

"""The preparation progress bar: input read, tokens written, rate and ETA.

Without a token budget the bar runs over the input (bytes read from disk, compressed bytes for a
compressed file, or rows for `hf:` data) and shows tokens beside it; with a budget it runs over the
budget's tokens and shows the input read beside. tqdm adds the rate and the ETA.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class PrepareProgress:
    """**Arguments:** `split` name, input `total` (or None), its `unit` ("B" or "row"),
    the split's `max_tokens` budget (or None), whether to draw at all (`enabled`), and the tokens
    the split already holds (`initial_tokens`, when a larger budget extends it)."""

    def __init__(self, split: str, total: int | None, unit: str, max_tokens: int | None, enabled: bool,
                 initial_tokens: int = 0):
        self.unit, self.budgeted = unit, max_tokens is not None
        self.read_amount, self.tokens = 0, initial_tokens
        self.bar = tqdm(
            total=max_tokens if self.budgeted else total,
            initial=initial_tokens if self.budgeted else 0,
            desc=f"tokenising {split}",
            unit="tok" if self.budgeted else unit,
            unit_scale=True,
            unit_divisor=1000,
            disable=not enabled,
            file=sys.stderr,
            mininterval=0.5,
        )

    def read(self, amount: int) -> None:
        """Input consumed (bytes or rows)."""
        self.read_amount += amount
        if not self.budgeted:  # read-ahead of a compressed file may overshoot its share: clamp
            room = amount if self.bar.total is None else max(0, min(amount, self.bar.total - self.bar.n))
            self.bar.update(room)

    def wrote(self, tokens: int) -> None:
        """Tokens written to the shards."""
        self.tokens += tokens
        if self.budgeted:
            self.bar.update(tokens)
        if self.budgeted:
            other = f"{tqdm.format_sizeof(self.read_amount, divisor=1000)}{self.unit} read"
        else:
            other = f"{tqdm.format_sizeof(self.tokens, divisor=1000)} tokens"
        self.bar.set_postfix_str(other, refresh=False)

    def close(self) -> None:
        self.bar.close()

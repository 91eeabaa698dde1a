"""The preparation progress bar: input read, tokens written, rate and ETA.

Without a token budget the bar runs over the input (bytes on disk, or rows for `hf:` data) and
shows tokens beside it; with a budget it runs over the budget's tokens and shows the input beside.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class PrepareProgress:
    """**Arguments:** `split` name, input `total` (or None), its `unit` ("B" or "row"),
    the split's `max_tokens` budget (or None), and whether to draw at all (`enabled`)."""

    def __init__(self, split: str, total: int | None, unit: str, max_tokens: int | None, enabled: bool):
        self.unit, self.budgeted = unit, max_tokens is not None
        self.read_amount, self.tokens = 0, 0
        self.bar = tqdm(
            total=max_tokens if self.budgeted else total,
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
        if not self.budgeted:
            self.bar.update(amount)

    def wrote(self, tokens: int) -> None:
        """Tokens written to the shards."""
        self.tokens += tokens
        if self.budgeted:
            self.bar.update(tokens)
        other = self.read_amount if self.budgeted else self.tokens
        unit = self.unit if self.budgeted else "tok"
        self.bar.set_postfix_str(f"{tqdm.format_sizeof(other, divisor=1000)}{unit}", refresh=False)

    def close(self) -> None:
        self.bar.close()

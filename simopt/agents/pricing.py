"""Token prices, so a session can be held to `--max-cost USD`.

Prices are USD per million tokens. The shipped table covers a few OpenAI models (list prices as
of 2025; check your provider's page). `SIMOPT_PRICES` names a JSON file that adds or overrides
entries: `{"model-name": {"prompt": 2.5, "completion": 10.0}}`. A model name matches an entry
exactly or by the longest entry that prefixes it, so dated snapshots (`gpt-4o-2024-08-06`) find
their family. Cached prompt tokens are charged at the full price: the estimate errs high.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from simopt.errors import UserError

PRICES_ENV = "SIMOPT_PRICES"


@dataclass(frozen=True)
class Price:
    """USD per million prompt tokens and per million completion tokens."""

    prompt: float
    completion: float

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The cost of that many tokens."""
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o3": Price(2.00, 8.00),
    "o4-mini": Price(1.10, 4.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
}


def price_table(overrides: Mapping[str, Any] | None = None) -> dict[str, Price]:
    """The shipped prices, then `SIMOPT_PRICES`'s file, then `overrides` (later entries win)."""
    table = dict(DEFAULT_PRICES)
    env_file = os.environ.get(PRICES_ENV)
    if env_file:
        table.update(_parse_prices(_read_json(Path(env_file)), source=env_file))
    if overrides:
        table.update(_parse_prices(overrides, source="the prices argument"))
    return table


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """The entry for `model`: exact, else the longest prefix, else None."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read the price file {path} ({PRICES_ENV}): {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"the price file {path} ({PRICES_ENV}) is not JSON: {error}") from None


def _parse_prices(raw: Any, *, source: str) -> dict[str, Price]:
    if not isinstance(raw, Mapping):
        raise UserError(f"prices in {source} must map model names to {{prompt, completion}}")
    table = {}
    for model, entry in raw.items():
        if isinstance(entry, Price):
            table[model] = entry
            continue
        values = [entry.get(key) if isinstance(entry, Mapping) else None for key in ("prompt", "completion")]
        if not all(isinstance(value, (int, float)) and value >= 0 for value in values):
            raise UserError(
                f"price of {model!r} in {source} must be {{\"prompt\": USD, \"completion\": USD}}"
                f" per million tokens, both >= 0 (got {entry!r})"
            )
        table[model] = Price(float(values[0]), float(values[1]))
    return table

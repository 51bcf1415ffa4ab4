"""Strict reading of scenario TOML tables: typed getters, unit-suffixed times, no unknown keys.

Every getter raises `ValueError` naming the full key, the value and the rule, e.g.
"links.delay_ns(=-1) must be an integer >= 0"; `finish()` rejects keys nobody asked for, so a
typo never passes silently.
"""

from __future__ import annotations

REQUIRED = object()
TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000}


class Table:
    """One TOML table, read key by key; `where` is its dotted path in the file."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a table, got {data!r}")
        self.data = data
        self.where = where
        self.asked: list[str] = []

    def key(self, key: str) -> str:
        """The full dotted name of `key`, for messages."""
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        """Whether the table sets `key` (counts as asking for it)."""
        self.asked.append(key)
        return key in self.data

    def get(self, key: str, default: object = REQUIRED) -> object:
        """The raw value of `key`, or the default; a missing required key is an error."""
        self.asked.append(key)
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            raise ValueError(f"{self.key(key)} is required")
        return default

    def integer(self, key: str, *, minimum: int, default: object = REQUIRED) -> int:
        """An integer >= minimum."""
        if self._absent(key, default):
            return default
        return check_integer(self.get(key), minimum, self.key(key))

    def string(self, key: str, *, choices: list[str] | None = None, default: object = REQUIRED) -> str:
        """A string, one of `choices` when given."""
        if self._absent(key, default):
            return default
        value = self.get(key)
        if not isinstance(value, str):
            raise ValueError(f"{self.key(key)}(={value!r}) must be a string")
        if choices is not None and value not in choices:
            raise ValueError(f"{self.key(key)}(={value!r}) must be one of {', '.join(choices)}")
        return value

    def time(self, stem: str, *, minimum: int = 0, default: object = REQUIRED) -> int:
        """An integer time from `stem_ns`, `stem_us` or `stem_ms` (at most one), in ns."""
        found = self._time_key(stem)
        if found is None:
            self.get(f"{stem}_ns", default)
            return default
        key, scale = found
        value = check_integer(self.get(key), 0, self.key(key)) * scale
        if value < minimum:
            raise ValueError(f"{self.key(key)}(={self.data[key]!r}) must be >= {minimum} ns")
        return value

    def value(self, key: str, *, minimum: int, default: object = REQUIRED, scale: int = 1) -> int | dict:
        """A fixed integer or a distribution table (uniform min/max, or choice values/weights), times `scale`."""
        if self._absent(key, default):
            return default
        raw = self.get(key)
        if not isinstance(raw, dict):
            return check_integer(raw, minimum, self.key(key)) * scale
        dist = Table(raw, self.key(key))
        kind = dist.string("dist", choices=["uniform", "choice"])
        if kind == "uniform":
            low = dist.integer("min", minimum=minimum)
            high = dist.integer("max", minimum=low)
            spec = {"dist": "uniform", "min": low * scale, "max": high * scale}
        else:
            values = dist.get("values")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{dist.key('values')}(={values!r}) must be a non-empty list")
            values = [check_integer(v, minimum, dist.key("values")) * scale for v in values]
            weights = dist.get("weights", None)
            if weights is not None:
                if not isinstance(weights, list) or len(weights) != len(values):
                    raise ValueError(f"{dist.key('weights')}(={weights!r}) must be a list as long as values")
                weights = [check_integer(w, 1, dist.key("weights")) for w in weights]
            spec = {"dist": "choice", "values": values, "weights": weights}
        dist.finish()
        return spec

    def time_value(self, stem: str, *, minimum: int = 0, default: object = REQUIRED) -> int | dict:
        """Like `value`, for a time given as `stem_ns`, `stem_us` or `stem_ms`, in ns."""
        found = self._time_key(stem)
        if found is None:
            self.get(f"{stem}_ns", default)
            return default
        key, scale = found
        return self.value(key, minimum=minimum, scale=scale)

    def table(self, key: str) -> "Table":
        """A sub-table (empty when absent)."""
        return Table(self.get(key, {}), self.key(key))

    def tables(self, key: str) -> list["Table"]:
        """An array of tables (empty when absent)."""
        items = self.get(key, [])
        if not isinstance(items, list):
            raise ValueError(f"{self.key(key)} must be an array of tables ([[{self.key(key)}]])")
        return [Table(item, f"{self.key(key)}[{i}]") for i, item in enumerate(items)]

    def rest(self) -> dict:
        """Every key not asked for yet, marked as asked (the caller checks them)."""
        remaining = {key: value for key, value in self.data.items() if key not in self.asked}
        self.asked.extend(remaining)
        return remaining

    def finish(self) -> None:
        """Reject any key that no getter asked for."""
        unknown = [key for key in self.data if key not in self.asked]
        if unknown:
            expected = ", ".join(dict.fromkeys(self.asked)) or "no keys"
            raise ValueError(f"unknown key {self.key(unknown[0])} (expected one of {expected})")

    def _absent(self, key: str, default: object) -> bool:
        """True when an optional key is not set (it still counts as asked for)."""
        self.asked.append(key)
        return key not in self.data and default is not REQUIRED

    def _time_key(self, stem: str) -> tuple[str, int] | None:
        present = [(f"{stem}_{unit}", scale) for unit, scale in TIME_UNITS.items() if f"{stem}_{unit}" in self.data]
        if len(present) > 1:
            raise ValueError(f"give only one of {', '.join(self.key(key) for key, _ in present)}")
        return present[0] if present else None


def check_integer(value: object, minimum: int, name: str) -> int:
    """`value` if it is an integer >= minimum (booleans and floats are not), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}(={value!r}) must be an integer >= {minimum}")
    return value

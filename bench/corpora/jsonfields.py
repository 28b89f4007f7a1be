"""Fields of parsed JSON, checked, with errors naming the file and the JSON path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.data import DataError


def load_json(path: Path) -> Any:
    """One JSON document; a syntax error names the file and line."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None


def parse_line(line: str, where: str) -> dict[str, Any]:
    """One JSON-lines object; ``where`` is ``file:line``."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


class Fields:
    """A JSON object at ``path`` (``document[0]``) inside ``where`` (a file, or ``file:line``)."""

    def __init__(self, value: Any, where: str, path: str = ""):
        if not isinstance(value, dict):
            raise DataError(f"{where}: {path or '(top)'}: expected an object")
        self.value, self.where, self.path = value, where, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> DataError:
        return DataError(f"{self.where}: {self._name(key)}: {problem}")

    def get(self, key: str, required: bool = True) -> Any:
        if self.value.get(key) is None and required:
            raise self.error(key, "missing")
        return self.value.get(key)

    def string(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def seconds(self, key: str) -> float:
        """A finite number >= 0."""
        value = self.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(key, f"expected a number of seconds, got {value!r}")
        if value < 0:
            raise self.error(key, f"{value} is negative")
        return float(value)

    def optional_seconds(self, key: str) -> float | None:
        return None if self.get(key, required=False) is None else self.seconds(key)

    def objects(self, key: str) -> list[Fields]:
        value = self.get(key)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {type(value).__name__}")
        return [Fields(item, self.where, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

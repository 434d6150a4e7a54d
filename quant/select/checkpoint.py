"""A resumable search's state file: one JSON document, written atomically, refused when it
belongs to another search (its ``signature`` differs), removed after a successful run."""

from __future__ import annotations

import json
import os

from ..errors import ConfigError


class SearchCheckpoint:
    def __init__(self, path, fmt: str, signature: dict, resume: bool = True):
        self.path = os.fspath(path) if path else None
        self.fmt = fmt
        self.signature = json.loads(json.dumps(signature))
        self.resume = bool(resume)

    def load(self) -> dict | None:
        """The saved state, or None when there is none (or ``resume`` is off)."""
        if not (self.path and self.resume and os.path.isfile(self.path)):
            return None
        try:
            with open(self.path) as f:
                state = json.load(f)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"checkpoint {self.path!r} is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != self.fmt:
            raise ConfigError(f"{self.path!r} is not a {self.fmt} file")
        if state.get("signature") != self.signature:
            raise ConfigError(f"checkpoint {self.path!r} belongs to a different search "
                              "(model, ratios or settings differ); delete it or pass resume=False")
        return state

    def save(self, state: dict) -> None:
        if not self.path:
            return
        state = dict(state, format=self.fmt, signature=self.signature)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        if self.path and os.path.isfile(self.path):
            os.remove(self.path)

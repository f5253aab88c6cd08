"""The live config: loaded at start, polled for changes, swapped only for a good new version."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from webhook.background import every
from webhook.config.model import Config, ConfigError, load_config
from webhook.memory import settle

log = logging.getLogger("tenant_guard.config")


class ConfigStore:
    """Holds the last good config. A ConfigMap mount swaps symlinks and sends no reliable
    filesystem events, so the file is polled and compared by content."""

    def __init__(self, path: Path | None, config: Config | None = None) -> None:
        """`path` None: a store that never reloads (give `config`)."""
        if config is None:
            if path is None:
                raise ValueError("a ConfigStore needs a path or a config")
            config = load_config(path)
        self.path = path
        self.current: Config = config
        settle()
        self._digest = self._read_digest(path) if path is not None else None
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None

    @classmethod
    def fixed(cls, config: Config) -> ConfigStore:
        """A store that never reloads (tests, benchmarks)."""
        return cls(None, config)

    @staticmethod
    def _read_digest(path: Path) -> str | None:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None

    def check_once(self) -> bool:
        """Reload if the file changed; True when a new config was swapped in."""
        if self.path is None:
            return False
        digest = self._read_digest(self.path)
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.error("config reload failed; keeping the last good config: %s", exc)
            return False
        self.current = config
        settle()
        self.reloads += 1
        self.last_error = None
        log.info("config reloaded from %s", self.path)
        return True

    async def run(self, interval: float = 5.0) -> None:
        await every(interval, self.check_once, log, "config poll")

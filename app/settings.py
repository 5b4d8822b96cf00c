"""User preferences: a typed object saved as JSON under platformdirs' user config dir
(WEFT_CONFIG_DIR overrides the folder). Window geometry and dock state live in QSettings instead.
Pure Python, so the CLI reads the same file without Qt."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

log = logging.getLogger("weft.settings")


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(os.environ.get("WEFT_CONFIG_DIR") or user_config_dir("weft"))


def data_dir() -> Path:
    """Where the studio keeps the autosaved session. WEFT_DATA_DIR overrides it; a WEFT_CONFIG_DIR override
    moves it beside the settings, so tests and portable installs never touch the user's real session."""
    from platformdirs import user_data_dir

    if os.environ.get("WEFT_DATA_DIR"):
        return Path(os.environ["WEFT_DATA_DIR"])
    if os.environ.get("WEFT_CONFIG_DIR"):
        return Path(os.environ["WEFT_CONFIG_DIR"]) / "data"
    return Path(user_data_dir("weft"))


def log_dir() -> Path:
    from platformdirs import user_log_dir

    return Path(os.environ.get("WEFT_LOG_DIR") or user_log_dir("weft"))


@dataclass
class Settings:
    theme: str = "dark"  # dark or light (an old "system" reads as dark)
    engine_endpoint: str = ""  # empty = start a local engine; else e.g. tcp://gpu-box:5555
    engine_token_file: str = ""  # token for a remote engine
    device: str = "auto"  # device for the local engine: auto, cpu, cuda
    recent_files: list[str] = field(default_factory=list)
    panel_state: dict = field(default_factory=dict)  # per-panel small preferences (last prompt, seed...)
    autosave_s: int = 60  # the session is saved to the data dir this often (and on quit); 0 = only on quit

    def __post_init__(self):
        self._listeners: list[Callable[[str], None]] = []

    # a `changed` signal without Qt: callbacks receive the field name
    def on_changed(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)

    def set(self, name: str, value) -> None:
        if name not in {f.name for f in fields(self)}:
            raise AttributeError(f"no setting named {name}")
        setattr(self, name, value)
        for fn in self._listeners:
            fn(name)

    def add_recent(self, path: str, limit: int = 10) -> None:
        path = os.path.abspath(path)
        self.set("recent_files", [path] + [p for p in self.recent_files if p != path][: limit - 1])

    @classmethod
    def path(cls) -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> "Settings":
        p = cls.path()
        if not p.exists():
            return cls()
        try:
            raw = json.loads(p.read_text())
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (OSError, ValueError, TypeError) as e:
            log.warning("ignoring unreadable settings %s: %s", p, e)
            return cls()

    def save(self) -> None:
        p = self.path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(p)

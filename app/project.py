"""Weft project files (`.weft`): every panel's prompts, settings, seeds, edits and results in one file.

A `.weft` file is a zip archive:

    manifest.json          {"format": "weft-project", "version": 1, "app": "Weft Studio 0.1",
                            "saved_at": "2025-01-31T12:00:00", "current": "icon",
                            "panels": {"icon": {"state": {...}, "files": ["editor.svg", ...]}, ...}}
    icon/editor.svg        the icon in the editor (plus editor.json with its exact path data)
    icon/candidates.json   the last generation's candidates (and candidate-N.svg to look at)
    shape/shape.npz        the 3D result: mesh vertices / faces and the streamed octree levels
    motion/take.bvh        the motion take (and take.npz: joint positions, channels, commands)
    speech/take-001.wav    each speech take as WAV (float32), with takes.json for its text and emotion
    world/recording.npz    the World recording, when one is short enough to keep

A panel's `state` is the small JSON dict its `save_state()` returns (also kept in settings between
runs); `files` are the results its `save_results()` returns, stored under the panel's task name.
Opening reads the whole archive into memory with limits checked first, and refuses a broken file
with one plain sentence. Pure Python (no Qt): the CLI or a script can read and write projects too.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "weft-project"
VERSION = 1
SUFFIX = ".weft"
MAX_MEMBERS = 2000
MAX_BYTES = 1_000_000_000  # uncompressed, all files together
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,120}$")  # a result file's name: no folders, no '..'


class ProjectFileError(ValueError):
    """A project file that cannot be read; the message is one plain sentence for the user."""


@dataclass
class PanelData:
    state: dict = field(default_factory=dict)  # JSON-able: prompts, sliders, seeds, strokes
    files: dict[str, bytes] = field(default_factory=dict)  # name -> bytes: SVG, npz, WAV, BVH results


@dataclass
class Project:
    panels: dict[str, PanelData] = field(default_factory=dict)  # task name -> its data
    current: str = ""  # the task of the panel that was open
    extra: dict = field(default_factory=dict)  # other manifest fields (e.g. the session's project path)

    def digest(self) -> str:
        """A fingerprint of the content (not of when it was saved): equal digests = nothing changed."""
        h = hashlib.sha1()
        for task in sorted(self.panels):
            d = self.panels[task]
            h.update(task.encode() + b"\0" + json.dumps(d.state, sort_keys=True, default=str).encode() + b"\0")
            for name in sorted(d.files):
                h.update(name.encode() + b"\0" + hashlib.sha1(d.files[name]).digest())
        return h.hexdigest()


def write_project(path: str | os.PathLike, project: Project) -> Path:
    """Write atomically (a temporary file next to it, then a rename): a crash never leaves half a file."""
    path = Path(path)
    manifest = {"format": FORMAT, "version": VERSION, "app": "Weft Studio 0.1",
                "saved_at": _dt.datetime.now().isoformat(timespec="seconds"), "current": project.current,
                **project.extra,
                "panels": {task: {"state": d.state, "files": sorted(d.files)} for task, d in project.panels.items()}}
    for task, d in project.panels.items():
        for name in d.files:
            if not _NAME.match(task) or not _NAME.match(name):
                raise ValueError(f"bad result name {task}/{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=5) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1, default=_json_default))
        for task, d in project.panels.items():
            for name, data in d.files.items():
                # WAV and npz barely compress: store them, deflate the text formats
                kind = zipfile.ZIP_STORED if name.endswith((".wav", ".npz", ".glb")) else zipfile.ZIP_DEFLATED
                z.writestr(f"{task}/{name}", data, compress_type=kind)
    tmp.replace(path)
    return path


def read_project(path: str | os.PathLike) -> Project:
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ProjectFileError(f"{path.name} does not exist.") from None
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ProjectFileError(f"{path.name} is not a Weft project file ({_reason(e)}).") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_BYTES:
            raise ProjectFileError(f"{path.name} is too large to be a Weft project "
                                   f"(over {MAX_MEMBERS} files or {MAX_BYTES // 1_000_000_000} GB).")
        try:
            manifest = json.loads(z.read("manifest.json").decode("utf-8"))
        except KeyError:
            raise ProjectFileError(f"{path.name} is not a Weft project file (no manifest.json inside).") from None
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
            raise ProjectFileError(f"{path.name} has an unreadable manifest ({_reason(e)}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ProjectFileError(f"{path.name} is not a Weft project file.")
        if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
            raise ProjectFileError(f"{path.name} was written by a newer Weft Studio (format version "
                                   f"{manifest.get('version')}); update the studio to open it.")
        panels_in = manifest.get("panels", {})
        if not isinstance(panels_in, dict):
            raise ProjectFileError(f"{path.name} has a broken manifest (panels is not a table).")
        project = Project(current=str(manifest.get("current", "")),
                          extra={k: v for k, v in manifest.items()
                                 if k not in ("format", "version", "app", "saved_at", "current", "panels")})
        project.extra["saved_at"] = str(manifest.get("saved_at", ""))
        for task, entry in panels_in.items():
            if not isinstance(entry, dict) or not _NAME.match(str(task)):
                continue  # an unknown or malformed panel entry is skipped, the rest still opens
            state = entry.get("state", {})
            files: dict[str, bytes] = {}
            for name in entry.get("files", []) if isinstance(entry.get("files"), list) else []:
                if not isinstance(name, str) or not _NAME.match(name):
                    continue
                try:
                    files[name] = z.read(f"{task}/{name}")
                except KeyError:
                    continue  # listed but missing: that result is simply not restored
                except (zipfile.BadZipFile, OSError, ValueError) as e:
                    raise ProjectFileError(f"{path.name} is damaged ({task}/{name}: {_reason(e)}).") from None
            project.panels[str(task)] = PanelData(state if isinstance(state, dict) else {}, files)
    return project


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    import numpy as np

    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_npz(data: bytes) -> dict:
    """npz bytes -> {name: array}; never unpickles (a project file is untrusted input)."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _reason(e: Exception) -> str:
    return str(e).strip().rstrip(".") or type(e).__name__

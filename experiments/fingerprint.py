"""The fingerprint of a run: what determines its result, hashed, to resume sweeps safely.

A run folder's ``metrics.json`` (and ``failed.json``) records the fingerprint of the run
that wrote it. A relaunch computes the fingerprint of the run it is asked for and reuses
the folder's result only if the two match; otherwise the run is *stale* and is redone
(``on_stale=redo``, the default) or refused (``on_stale=refuse``).

The fingerprint has three parts, each a SHA-256 hex digest:

``config``
    The resolved run config (every group, every option), except the settings that
    cannot change a result: :data:`NOT_FINGERPRINTED` (the experiment's ``name``, the
    ``data_root`` — the data part covers the files themselves — and ``on_stale``).
``code``
    The source of the ``mnmf`` and ``experiments`` packages (every ``.py`` and template
    file, by content) and the versions of the numerical dependencies. Editing the code
    makes earlier results stale, as it should: they may no longer be what the code
    computes.
``data``
    The data files the run reads (the ``data`` settings its data kind names in
    :attr:`experiments.data.DataKind.reads` — ``data.path``, the ``data.source_dir``
    pool —, and files or folders named in ``model.options`` or the ``task``
    settings): path, size and modification time of each. Generated data
    (``synthetic``, ``sine``) read no file.

``digest`` hashes the three parts together: two runs with the same digest are the same
run (the report counts them once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config import data_path

#: Top-level config keys left out of the config part: they cannot change a result.
NOT_FINGERPRINTED = ("name", "data_root", "on_stale")
#: Dependencies whose version can change a number.
DEPENDENCIES = ("numpy", "scipy", "pyroomacoustics", "mir_eval", "librosa", "soundfile")
#: Source files of the packages that are hashed for the code part.
SOURCE_SUFFIXES = (".py", ".j2", ".yaml")


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_part(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config that determines a result (without :data:`NOT_FINGERPRINTED`)."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(tree, dict):
        raise ValueError(f"a run config must be a mapping, got {type(tree).__name__}")
    return {key: value for key, value in tree.items() if key not in (*NOT_FINGERPRINTED, "hydra")}


@cache
def code_part() -> dict[str, Any]:
    """Digest of the packages' source files and the numerical dependencies' versions.

    Computed once per process (the source does not change under a running sweep).
    """
    import importlib.metadata

    import experiments
    import mnmf

    digest = hashlib.sha256()
    for package in (mnmf, experiments):
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root.parent).as_posix().encode())
                digest.update(b"\0")
                digest.update(path.read_bytes())
                digest.update(b"\0")
    versions = {"mnmf": mnmf.__version__}
    for name in DEPENDENCIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"source": digest.hexdigest(), "versions": versions}


def data_files(cfg: DictConfig) -> list[Path]:
    """The files a run reads: its data settings' paths, paths in model options and task.

    Folders are listed recursively (hidden files skipped); missing paths are left out
    (the run itself reports them).
    """
    from experiments.data import DATA_KINDS

    named: list[Path] = []
    for setting in DATA_KINDS.get(str(cfg.data.kind)).reads:
        value = cfg.data.get(setting)
        if value:
            named.append(data_path(cfg, str(value)))
    for settings in (cfg.model.options, cfg.task):  # paths named in options or a task's
        named += [data_path(cfg, text) for text in _strings(OmegaConf.to_container(settings))]
    files: set[Path] = set()
    for path in named:
        try:
            if path.is_file():
                files.add(path.resolve())
            elif path.is_dir():
                files.update(
                    found.resolve()
                    for found in path.rglob("*")
                    if found.is_file() and not any(p.startswith(".") for p in found.parts)
                )
        except OSError:  # an unreadable path: the run reports it
            continue
    return sorted(files)


def _strings(tree: Any) -> Iterator[str]:
    """Every string value of a nested container that could be a path."""
    if isinstance(tree, str):
        if ("/" in tree or "." in tree) and "\n" not in tree and len(tree) < 4096:
            yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from _strings(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _strings(value)


def data_part(files: Iterable[Path]) -> list[list[Any]]:
    """Name, size and modification time (ns) of each file."""
    described = []
    for path in files:
        stat = path.stat()
        described.append([path.as_posix(), stat.st_size, stat.st_mtime_ns])
    return described


def fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The fingerprint of the run ``cfg`` describes.

    Returns
    -------
    dict
        ``{"digest": hex, "parts": {"config": hex, "code": hex, "data": hex},
        "code_versions": {...}, "data_files": int}``.
    """
    files = data_files(cfg)
    code = code_part()
    parts = {
        "config": _sha256(config_part(cfg)),
        "code": _sha256(code),
        "data": _sha256(data_part(files)),
    }
    return {
        "digest": _sha256(parts),
        "parts": parts,
        "code_versions": code["versions"],
        "data_files": len(files),
    }


def what_changed(
    recorded: dict[str, Any] | None,
    current: dict[str, Any],
    *,
    old_params: dict[str, Any],
    new_params: dict[str, Any],
) -> str:
    """A short sentence saying which parts of a fingerprint differ, with config changes.

    Parameters
    ----------
    recorded : dict or None
        The fingerprint in the run folder (None: written before fingerprints existed).
    current : dict
        The fingerprint of the run asked for.
    old_params, new_params : dict
        Flattened configs (``"data.duration": 5.0``), to name the changed settings.
    """
    if not recorded or "parts" not in recorded:
        return "the folder's result has no fingerprint (written by an older mnmf)"
    changed = []
    if recorded["parts"].get("config") != current["parts"]["config"]:
        keys = sorted(
            key
            for key in set(old_params) | set(new_params)
            if old_params.get(key) != new_params.get(key)
            and key.split(".")[0] not in NOT_FINGERPRINTED
        )
        shown = ", ".join(
            f"{key}: {old_params.get(key)!r} -> {new_params.get(key)!r}" for key in keys[:5]
        )
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        changed.append(f"config changed ({shown}{more})" if keys else "config changed")
    if recorded["parts"].get("code") != current["parts"]["code"]:
        changed.append("code changed (mnmf/experiments source or a dependency's version)")
    if recorded["parts"].get("data") != current["parts"]["data"]:
        changed.append("data files changed (size or modification time)")
    return "; ".join(changed) or "fingerprint differs"

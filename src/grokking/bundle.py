"""Result bundles: a preset's finished results in one verified archive, so that its figures, tables and claims
build without training (README, "Result bundles"; ``python -m grokking bundle pack|fetch``).

:func:`pack` archives what a build's figures, tables and claims read (:func:`expected`): the named runs and
their datasets, the merged grids of the enabled figures, the pruning sweeps and the width sweep; no grid chunks,
checkpoints or logs. Its ``manifest.json`` gives each file's SHA-256, size and result, and each result's
resolved spec (what the config makes for that target) and provenance as the result records it (code version,
torch, device, precision). The archive is deterministic: the same results pack to the same bytes.

:func:`fetch` takes a file, a URL or a DOI (downloaded by pooch into ``bundle/downloads/``), checks each result's
spec against what the current config makes (an error names the setting, its config key and both values),
extracts and hashes every file into a staging folder and only then moves them into place. A file already on
disk is kept when it is the bundle's and never overwritten when it is not. ``bundle/fetched.json`` records what
was fetched with its specs, so that a later config change is caught before anything is built from those
results (:func:`check_fetched`, run by the workflow).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import yaml

from .atomic import atomic_open
from .config import built_runs, deep_merge, enabled_figures, figure_grids, figure_runs, load_preset, validate
from .report import figures as figure_catalog
from .runspec import cell_spec, grid_settings, resolve_run, width_spec

FORMAT = "grok-or-not result bundle"
VERSION = 1
MANIFEST = "manifest.json"
REMOTE = ("http://", "https://", "doi:")  # fetched through pooch; anything else is a local file
# What breaks while reading an archive that is cut short or damaged (gzip's OSError is BadGzipFile).
DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, json.JSONDecodeError, UnicodeDecodeError)
ABSENT = "(not set)"


class BundleError(RuntimeError):
    """A bundle that cannot be packed, fetched or used with this config; the message says why and what to do."""


def load_config(preset=None, configfiles=(), config_json=None, config_dir="config") -> dict:
    """The config of a build: ``config_json`` (the workflow's own), else ``config.yaml`` with the preset's overlay
    and then ``configfiles`` laid over it, as ``snakemake --configfile`` merges them; validated."""
    if config_json:
        return json.loads(config_json)
    config = load_preset(config_dir, preset or "paper")
    for f in configfiles:
        config = deep_merge(config, yaml.safe_load(Path(f).read_text()) or {})
    return validate(config)


def source_of(config) -> tuple[str, str | None] | None:
    """(source, archive SHA-256 or None) of config ``results_bundle``; None when the build trains."""
    b = config.get("results_bundle")
    if not b:
        return None
    return (b, None) if isinstance(b, str) else (b["source"], b.get("sha256"))


# --- what a build reads, and the spec of each result --------------------------------------------------------


def _dataset_spec(config, spec) -> dict:
    data = config["data"]
    if spec["dataset"] == "modular":  # the operation and p are in the file's name
        return {"data": {"pair_seed": data["pair_seed"], "label_seed": data["label_seed"]}}
    name = spec["dataset"]
    own = {k: data[name][k] for k in ("train_pool", "pool_seed")}
    out = {"data": {"label_seed": data["label_seed"], name: own}}
    if name == "mnist":  # a rehearsal reads stand-in files instead of MNIST's
        out["rehearsal"] = config.get("rehearsal")
    return out


def _grid_spec(config, grid) -> dict:
    """The grid's axes and options (not ``chunk_size``: how cells are batched into jobs does not change them)
    and each panel's resolved cell settings (all but its alpha and xi, and its seed when ``seeds`` sets it)."""
    g = grid_settings(config, grid)
    drop = {"train_fraction", "corruption"} | ({"seed"} if g.get("seeds") else set())
    cells = [cell_spec(config, grid, value, g["train_fractions"][0], g["corruptions"][0]) for value in g["panels"]]
    panels = [{k: v for k, v in cell.items() if k not in drop} for cell in cells]
    own = {k: v for k, v in g.items() if k not in ("chunk_size", "settings")}
    return {"grid": own, "panels": panels, "phases": config["phases"]}


def _width_sweep_spec(config) -> dict:
    ws = config["width_sweep"]
    first = int(ws.get("first_seed", 1))
    return {
        "widths": {str(w): {k: v for k, v in width_spec(config, w).items() if k != "seed"} for w in ws["widths"]},
        "seeds": list(range(first, first + int(ws["seeds"]))),
        "width_sweep": {"retention": ws.get("retention", {})},
    }


def _plain(x):
    return json.loads(json.dumps(x, sort_keys=True))


def expected(config, layout) -> dict:
    """Every result a build's figures, tables and claims read: ``kind/name`` -> kind, name, files (relative to
    ``results/<preset>``) and the spec the config makes for it."""
    out = {}

    def add(kind, name, files, spec):
        out[f"{kind}/{name}"] = {
            "kind": kind,
            "name": name,
            "files": [layout.relative(f) for f in files],
            "spec": _plain(spec),
        }

    figs = enabled_figures(config)
    for run in built_runs(config):
        spec = resolve_run(config, run)
        add("run", run, layout.run_files(run), {"settings": spec, "phases": config["phases"]})
        data = layout.dataset_of(spec)
        add("dataset", Path(data).stem, [data], _dataset_spec(config, spec))
    for grid in sorted({g for f in figs for g in figure_grids(config, f).values()}):
        add("grid", grid, [layout.grid(grid), layout.grid(grid, ".csv")], _grid_spec(config, grid))
    pruned = {r for f in figs if config["figures"][f].get("pruning") for r in figure_runs(config, f).values()}
    for run in sorted(pruned):
        add("pruning", run, [layout.pruning(run)], {"settings": resolve_run(config, run)})
    if any(config["figures"][f].get("width_sweep") for f in figs):
        files = [layout.width_sweep(".npz"), layout.width_sweep(".csv")]
        add("width_sweep", "width_sweep", files, _width_sweep_spec(config))
    read = {layout.relative(f) for fig in figs for f in figure_catalog.result_files(config, fig, layout)}
    unbundled = read - {f for r in out.values() for f in r["files"]}
    if unbundled:  # a figure that reads a new kind of result: bundle it here
        raise BundleError(f"the figures read {sorted(unbundled)}, which no bundled result holds")
    return out


def needed_files(config, layout) -> list[str]:
    """The result files a bundle supplies to this config's build (paths under ``results/<preset>``)."""
    return sorted({f"{layout.results}/{f}" for r in expected(config, layout).values() for f in r["files"]})


# --- spec differences, named by the config key that sets them ------------------------------------------------


def _difference(old, new, path=()):
    """(path, old value, new value) of the first setting where ``old`` and ``new`` differ, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            d = _difference(old.get(k, ABSENT), new.get(k, ABSENT), (*path, k))
            if d:
                return d
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            d = _difference(a, b, (*path, i))
            if d:
                return d
        return None
    return None if old == new else (path, old, new)


DATA_KEYS = {"pair_seed": "data.pair_seed", "label_seed": "data.label_seed", "ipr_mode": "ipr.mode"}


def _setting_key(config, overlays, settings, key) -> str:
    """The config key that sets the resolved run setting ``key``: the first of ``overlays`` (prefix, mapping),
    the model family's defaults and ``run_defaults`` that holds it."""
    if key in DATA_KEYS:
        return DATA_KEYS[key]
    if key in ("train_pool", "pool_seed"):
        return f"data.{settings.get('dataset')}.{key}"
    model = settings.get("model")
    layers = [*overlays, (f"model_defaults.{model}", (config.get("model_defaults") or {}).get(model))]
    for prefix, d in [*layers, ("run_defaults", config["run_defaults"])]:
        if d and key in d:
            name = f"{prefix}.{key}"
            break
    else:
        return key
    if key in ("steps", "log_every") and (config.get("rehearsal") or {}).get("steps"):
        name += " (capped by rehearsal.steps)"
    return name


def _config_key(config, result, path) -> str:
    kind, name, spec = result["kind"], result["name"], result["spec"]
    if kind in ("run", "pruning") and path[0] == "settings":
        return _setting_key(config, [(f"runs.{name}", config["runs"].get(name))], spec["settings"], path[1])
    if kind == "grid" and path[0] in ("grid", "panels"):
        g, own = grid_settings(config, name), config["grids"].get(name) or {}
        key = "curve_points" if path[0] == "panels" and path[2] == "log_every" else path[-1 if path[0] == "grid" else 2]
        if path[0] == "grid" or key in ("curve_points", "minibatch_rule"):
            return f"grids.{name}.{key}" if key in own else f"grid_defaults.{key}"
        if key == g["panel_key"]:
            return f"grids.{name}.panels"
        overlays = [(f"grids.{name}.settings", own.get("settings")), ("grid_defaults.settings", g["settings"])]
        return _setting_key(config, overlays, spec["panels"][path[1]], key)
    if kind == "width_sweep" and path[0] == "widths":
        if path[2] == "log_every":
            return "width_sweep.curve_points"
        overlays = [("width_sweep.settings", config["width_sweep"].get("settings"))]
        return _setting_key(config, overlays, spec["widths"][path[1]], path[2])
    if kind == "width_sweep" and path[0] == "seeds":
        return "width_sweep.seeds, width_sweep.first_seed"
    return ".".join(map(str, path))  # data.*, phases.*, rehearsal, width_sweep.retention.*: the config's own keys


def spec_errors(config, wanted: dict, have: dict, where: str) -> list[str]:
    """One line per result of ``wanted`` whose spec in ``have`` differs: its first differing setting, the config
    key that sets it, and both values."""
    errors = []
    for key, want in wanted.items():
        d = _difference(have[key]["spec"], want["spec"]) if key in have else None
        if d:
            path, old, new = d
            setting = next((p for p in reversed(path) if isinstance(p, str)), "")
            errors.append(
                f"{want['kind']} {want['name']}: {setting} is {old!r} {where} and {new!r} in the current config "
                f"(config key '{_config_key(config, want, path)}')"
            )
    return errors


def _listing(lines, n=12) -> str:
    return "\n  ".join(lines[:n] + ([f"... and {len(lines) - n} more"] if len(lines) > n else []))


def check_fetched(config, layout) -> None:
    """Results fetched earlier (``bundle/fetched.json``) must be what the current config makes: an error names
    each setting that differs (the workflow runs this before building anything)."""
    path = Path(layout.bundle_record())
    if not path.is_file():
        return
    root = Path(layout.results)
    record = json.loads(path.read_text())
    have = {k: r for k, r in record["results"].items() if any((root / f).exists() for f in r["files"])}
    errors = spec_errors(config, expected(config, layout), have, "in the results fetched from a bundle")
    if errors:
        raise BundleError(
            f"{layout.results} holds results fetched from a bundle ({path}) that the current config would make "
            f"otherwise:\n  {_listing(errors)}\nSet the config back, or delete the fetched results (the files "
            f"{path.name} lists, and it) to train them."
        )


# --- pack ------------------------------------------------------------------------------------------------------


def sha256_of(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _profiles(value) -> list[dict]:
    """The numeric profiles (numerics.describe) a result records: one JSON object, or a list of them."""
    doc = json.loads(str(value))
    return [json.loads(p) if isinstance(p, str) else p for p in (doc if isinstance(doc, list) else [doc])]


def _one(values):
    """The value all of ``values`` share, their sorted list when they differ, None when none is recorded."""
    values = sorted({v for v in values if v is not None})
    return values[0] if len(values) == 1 else values or None


def _settings_of(result) -> list[dict]:
    spec = result["spec"]
    return [spec["settings"]] if "settings" in spec else spec.get("panels") or list(spec.get("widths", {}).values())


def _provenance(result, root: Path) -> dict:
    """Code version, torch, device, precision and numeric profile, as the result's own file records them (None
    where it does not: a dataset is numpy's work, a pruning sweep records no code version)."""
    import numpy as np

    first = root / result["files"][0]
    code, profiles = None, []
    if result["kind"] == "run":
        s = json.loads((first.parent / "summary.json").read_text())
        code, profiles = s.get("code_version"), [dict(s.get("numerics") or {}, device=s["device"], torch=s["torch"])]
    elif result["kind"] != "dataset":
        with np.load(first) as z:
            code = str(z["code_version"]) if "code_version" in z.files else None
            profiles = _profiles(z["numerics"]) if "numerics" in z.files else []
    return {
        "code_version": code,
        "torch": _one(p.get("torch") for p in profiles),
        "device": _one(p["device"] + (f" ({p['gpu']})" if p.get("gpu") else "") for p in profiles),
        "precision": _one(s.get("precision") for s in _settings_of(result)),
        "numerics": _one(p.get("profile") for p in profiles),
    }


def _check_recorded(config, result, root: Path):
    """A run's spec.json and a grid's settings must be what the config makes: else the build is older than the
    config, and its results would go out under specs that did not make them."""
    import numpy as np

    if result["kind"] == "run":
        path = root / result["files"][0]
        want = result["spec"]["settings"]
        recorded = json.loads(path.read_text())
        d = _difference({k: recorded.get(k, ABSENT) for k in want}, want)
    elif result["kind"] == "grid":
        path = root / result["files"][0]
        with np.load(path) as z:
            recorded = json.loads(str(z["settings"]))
        want = _plain(grid_settings(config, result["name"]))
        d = _difference(*({k: v for k, v in s.items() if k != "chunk_size"} for s in (recorded, want)))
    else:
        return
    if d:
        raise BundleError(
            f"{path} records {d[0][-1]} = {d[1]!r}, but the config makes {d[2]!r}: the build is older than the "
            "config; finish it (snakemake with the same config) before packing"
        )


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644  # no dates, owners: the same results, the same bytes
    return info


def pack(config, layout, out=None) -> tuple[Path, dict]:
    """Archive the results a build of ``config`` read (at ``out``, by default ``layout.bundle_archive()``)."""
    import platform
    from importlib import metadata

    from ._version import __version__
    from .results import code_version

    root = Path(layout.results)
    results = expected(config, layout)
    missing = [f for r in results.values() for f in r["files"] if not (root / f).is_file()]
    if missing:
        raise BundleError(
            f"{layout.results} is not a finished build: {len(missing)} result file(s) missing, e.g. "
            f"{root / missing[0]}; build the preset first (snakemake with the same config)"
        )
    files = {}
    for key, r in results.items():
        _check_recorded(config, r, root)
        r.update(_provenance(r, root))
        for f in r["files"]:
            files[f] = {"sha256": sha256_of(root / f), "bytes": (root / f).stat().st_size, "result": key}
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "preset": config["preset"],
        "packed_with": {
            "code_version": code_version(),
            "grokking": __version__,
            "torch": torch_version,
            "python": platform.python_version(),
        },
        "config": config,
        "results": results,
        "files": dict(sorted(files.items())),
    }
    out = Path(out or layout.bundle_archive())
    data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    with atomic_open(out) as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_member(MANIFEST, len(data)), io.BytesIO(data))
            for f, entry in manifest["files"].items():
                with open(root / f, "rb") as src:
                    tar.addfile(_member(f, entry["bytes"]), src)
    return out, manifest


# --- fetch -----------------------------------------------------------------------------------------------------


def local_archive(source: str, sha256, layout) -> Path:
    """The archive of ``source`` on this machine: a local file or ``file://`` URL as it is; an http(s) URL or a
    ``doi:DOI/FILE`` downloaded once by pooch into ``layout.bundle_downloads()`` (checked against ``sha256``
    when given, as a local file is)."""
    if source.startswith(REMOTE):
        import pooch

        known = f"sha256:{sha256}" if sha256 else None
        try:
            return Path(pooch.retrieve(source, known_hash=known, path=Path(layout.bundle_downloads()).resolve()))
        except ValueError as err:  # pooch's hash check (the download deleted), a DOI that is no data repository
            raise BundleError(f"{source}: {err}") from err
        except OSError as err:  # requests' errors: refused, unknown host, timeout, an HTTP error status
            raise BundleError(
                f"cannot download {source}: {err}. Check the address and the network, or download the archive "
                "yourself and give its path"
            ) from err
    if source.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        path = Path(unquote(urlsplit(source).path))
    else:
        path = Path(source)
    if not path.is_file():
        raise BundleError(f"{source}: no such file (a bundle is a file, an http(s):// or file:// URL, or doi:DOI/FILE)")
    if sha256 and sha256_of(path) != sha256:
        raise BundleError(f"{path}: SHA-256 {sha256_of(path)}, expected {sha256}: not that bundle, or damaged")
    return path


def _read_manifest(tar, archive) -> dict:
    first = tar.next()
    if first is None or first.name != MANIFEST:
        raise BundleError(f"{archive} is not a result bundle: it does not begin with {MANIFEST}")
    manifest = json.loads(tar.extractfile(first).read())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BundleError(
            f"{archive}: {manifest.get('format')!r} version {manifest.get('version')!r}; this code reads "
            f"{FORMAT!r} version {VERSION}"
        )
    return manifest


def _check_manifest(manifest, config, wanted, archive):
    """The bundle holds every result the build reads, each made with the spec that the config makes for it."""
    if manifest["preset"] != config["preset"]:
        raise BundleError(
            f"{archive} holds the {manifest['preset']!r} preset; the config builds {config['preset']!r} (config key "
            f"'preset'): fetch it with that preset's config (--preset {manifest['preset']})"
        )
    lacking = [f"{w['kind']} {w['name']}" for k, w in wanted.items() if k not in manifest["results"]]
    lacking += [f for w in wanted.values() for f in w["files"] if f not in manifest["files"]]
    if lacking:
        raise BundleError(f"{archive} lacks results this config builds:\n  {_listing(lacking)}")
    errors = spec_errors(config, wanted, manifest["results"], "in the bundle")
    if errors:
        raise BundleError(
            f"{archive} was made with other settings than the current config's; nothing was placed:\n  "
            f"{_listing(errors)}\nFetch it with the config it was packed with (its manifest.json has it), or train."
        )


def _extract(tar, member, dest: Path) -> str:
    """Copy an archive member to ``dest``; its SHA-256."""
    digest = hashlib.sha256()
    src = tar.extractfile(member)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def fetch(source: str, config, layout, sha256=None) -> dict:
    """Place the results of the bundle at ``source`` that a build of ``config`` reads into ``layout.results``;
    a summary (archive, its SHA-256, files placed and kept, the manifest)."""
    from .results import write_json

    archive = local_archive(source, sha256, layout)
    root = Path(layout.results)
    wanted = expected(config, layout)
    placed, kept = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest = _read_manifest(tar, archive)
            _check_manifest(manifest, config, wanted, archive)
            files = {f: manifest["files"][f] for w in wanted.values() for f in w["files"]}
            differ = []
            for f, entry in files.items():
                if (root / f).exists():
                    (kept if sha256_of(root / f) == entry["sha256"] else differ).append(f)
            if differ:
                raise BundleError(
                    f"{root} already holds files that differ from the bundle's; nothing was placed, nothing is "
                    f"overwritten:\n  {_listing(differ)}\nMove them away to fetch, or unset results_bundle to keep "
                    "them."
                )
            (root / "bundle").mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root / "bundle"))
            try:
                for member in tar:
                    if member.name == MANIFEST:
                        continue
                    if member.name not in manifest["files"] or not member.isfile():
                        raise BundleError(f"{archive}: member {member.name} is not a file its manifest lists")
                    if member.name not in files or member.name in kept:
                        continue
                    got, want = _extract(tar, member, staging / member.name), files[member.name]["sha256"]
                    if got != want:
                        raise BundleError(
                            f"{member.name}: SHA-256 {got}, but the bundle's manifest says {want}: the file was "
                            f"altered or damaged ({archive}); nothing was placed"
                        )
                    placed.append(member.name)
                lacking = sorted(set(files) - set(kept) - set(placed))
                if lacking:
                    raise BundleError(f"{archive} lacks files its manifest lists (truncated?):\n  {_listing(lacking)}")
                for f in placed:
                    (root / f).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / f, root / f)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except DAMAGED as err:
        raise BundleError(
            f"{archive} is truncated or corrupt ({type(err).__name__}: {err}); nothing was placed. Get it again "
            "(a download is kept in " + layout.bundle_downloads() + ": delete it there first)"
        ) from err
    record_path = Path(layout.bundle_record())
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"results": {}}
    record["results"].update({k: {"spec": w["spec"], "files": w["files"]} for k, w in wanted.items()})
    archive_sha256 = sha256_of(archive)
    record["last_fetch"] = {"source": source, "sha256": archive_sha256, "packed_with": manifest["packed_with"]}
    write_json(record_path, record)
    return {"archive": archive, "sha256": archive_sha256, "placed": placed, "kept": kept, "manifest": manifest}


# --- the command ---------------------------------------------------------------------------------------------


def summary(done: dict, layout) -> str:
    """What a fetch did, for its log and the command's output."""
    from .results import code_version

    packed = done["manifest"]["packed_with"]["code_version"]
    return (
        f"{len(done['placed'])} files placed, {len(done['kept'])} already there, in {layout.results} from "
        f"{done['archive']} (SHA-256 {done['sha256']}); packed at code {packed}, this code is {code_version()}"
    )


def run_command(a) -> None:
    """``python -m grokking bundle pack|fetch`` (arguments: cli.py)."""
    import sys

    from .layout import Layout

    config = load_config(a.preset, a.configfile, a.config_json)
    if a.preset and config["preset"] != a.preset:
        raise BundleError(f"--preset {a.preset}, but the config files say preset {config['preset']!r}")
    layout = Layout.from_config(config)
    if a.action == "pack":
        out, manifest = pack(config, layout, a.out)
        print(
            f"bundle of the {config['preset']} preset: {len(manifest['files'])} files of {len(manifest['results'])} "
            f"results, {out.stat().st_size / 1e6:.1f} MB -> {out}\nSHA-256 {sha256_of(out)}",
            file=sys.stderr,
        )
        return
    if not a.source:
        raise BundleError("bundle fetch needs a SOURCE: a file, an http(s):// or file:// URL, or doi:DOI/FILE")
    done = fetch(a.source, config, layout, a.sha256)
    print(summary(done, layout), file=sys.stderr)
    if not a.config_json:  # by hand, not the workflow's fetch: how to build from here
        overlay = "" if config["preset"] == "paper" else f" --configfile config/{config['preset']}.yaml"
        print(
            "Build with results_bundle set, or Snakemake trains the grid chunks that a bundle does not carry:\n"
            f"  snakemake --cores 2{overlay} --config results_bundle={a.source}",
            file=sys.stderr,
        )

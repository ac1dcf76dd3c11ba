"""What every part of the GPU acceptance check shares: the context it runs in (:class:`Context`: device, sizes,
folders, the preset it takes its shapes from, its time budget), what it returns (:class:`Outcome`), and the
helpers that build the datasets and run a command with a time limit."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import grokking

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
SRC = Path(grokking.__file__).resolve().parents[1]  # the package this check runs (src/ of a checkout)


class Skip(Exception):
    """A part that cannot run here; the message says why (a missing checkout, no snakemake, ...)."""


@dataclass
class Outcome:
    """A part's result: ``status`` pass, fail or skipped; ``reason``, one line saying what it showed or why
    it failed; ``numbers``, what it measured (JSON); ``rows``, its table in the report; ``notes``, lines under
    the table (what is left to do, what a number means)."""

    status: str
    reason: str
    numbers: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)


@dataclass
class Run:
    """A finished (or killed) command: exit status (None: killed at its time limit), wall seconds, its log."""

    rc: int | None
    seconds: float
    log: Path

    def tail(self, lines: int = 6) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return " | ".join(line.strip() for line in text[-lines:])


@dataclass
class Context:
    """Where and how the check runs. ``device``: ``cuda:N``, or ``cpu`` in a development run (``tiny``); the
    sizes come from the paper preset (``config/config.yaml``), or the smoke preset's when ``tiny``. ``out``
    holds the report, ``work`` (inside it) everything the parts make; ``repo`` is the checkout (its config,
    benchmarks and Snakefile; None when there is none). ``deadline``: when the running part's budget ends
    (``time.monotonic``); ``earlier``: the outcomes of the parts that ran before, by name."""

    device: str
    tiny: bool
    out: Path
    repo: Path | None
    python: str = sys.executable
    deadline: float = float("inf")
    earlier: dict = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return self.out / "work"

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def guard_device(self) -> str:
        """Where the sync audit trains: the GPU, or the ``meta`` stand-in in a development run on the CPU."""
        return self.device if self.gpu else "meta"

    @property
    def preset(self) -> str:
        return "smoke" if self.tiny else "paper"

    def left(self) -> float:
        """Seconds left of the running part's budget."""
        return self.deadline - time.monotonic()

    def need_repo(self, what: str) -> Path:
        if self.repo is None:
            raise Skip(f"{what} needs a checkout of the project (--repo); none was found")
        return self.repo

    @cached_property
    def config(self) -> dict:
        """The preset's validated config (``config.yaml``, with ``smoke.yaml`` laid over it when tiny)."""
        from ..config import load_preset, validate

        return validate(load_preset(self.need_repo("the preset's config") / "config", self.preset))

    def environment(self) -> dict:
        """The environment of the commands the check starts: this very package first on the path."""
        path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        return dict(os.environ, PYTHONPATH=path)

    def dataset(self, spec: dict) -> Path:
        """The dataset file of a resolved ``spec`` under ``work/data``, made as the workflow's dataset rules
        make it (MNIST from stand-in files of its exact shapes, as a rehearsal: the check needs no network)."""
        from ..layout import Layout
        from ..results import write_npz

        path = Path(Layout.of_results(str(self.work)).dataset_of(spec))
        if path.exists():
            return path
        data = self.config["data"]
        name = spec.get("dataset", "modular")
        if name == "modular":
            from ..data import Universe

            arrays = Universe.build(spec["operation"], int(spec["p"]), data["pair_seed"], data["label_seed"])
        else:
            from ..data.images import build_image_set

            kw = {}
            if name == "mnist":
                from ..data.standin import write_standin

                kw = {"mnist_dir": self.work / "data" / "mnist_standin", "download": False, "standin": True}
                write_standin(kw["mnist_dir"])
            d = data[name]
            arrays = build_image_set(
                name, pool=d["train_pool"], pool_seed=d["pool_seed"], label_seed=data["label_seed"], **kw
            )
        write_npz(path, **arrays.to_arrays())
        return path

    def command(self, args: list, name: str, timeout: float, cwd=None) -> Run:
        """Run ``args`` with its output in ``work/logs/<name>.log``, killed (with its children) after
        ``timeout`` seconds."""
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with open(log, "w") as fh:
            fh.write("$ " + shlex.join(map(str, args)) + "\n")
            fh.flush()
            proc = subprocess.Popen(
                [str(a) for a in args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.repo or None,
                env=self.environment(),
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=max(1.0, timeout))
            except subprocess.TimeoutExpired:
                stop(proc)
                rc = None
        return Run(rc, time.monotonic() - start, log)


def stop(proc: subprocess.Popen, sig=signal.SIGKILL):
    """End ``proc`` and the processes it started (its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait()


def seconds(x: float) -> str:
    return f"{x:.1f} s" if x < 10 else f"{x:.0f} s"

"""The device guard: the real engine trained on a device other than the CPU, under checks that fail where a
GPU run would break or would make the host wait for the GPU.

It runs on two devices. PyTorch's ``meta`` device stands for a GPU where there is none (``make test``,
tests/test_device_guard.py): its tensors have shapes, dtypes and a device but no data, every kernel runs
(shape inference only, so paper-sized shapes cost nothing), and a copy between it and the host is an
explicit operation, as with CUDA. On a real CUDA device (``python -m grokking gpu-check``) the same checks
watch real kernels, and PyTorch's own ``torch.cuda.set_sync_debug_mode("error")`` is switched on in the
armed steps as an independent check (it sees syncs inside CUDA libraries that the modes below cannot).

Two modes watch the run: a ``TorchFunctionMode`` sees the Python calls (``torch.tensor(...)``,
``Tensor.item()``, a generator as the engine made it) and a ``TorchDispatchMode`` every ATen operation
below them (the devices of all tensor arguments, copies, ``aten._local_scalar_dense``). While a
:class:`DeviceGuard` is active:

(a) **device mixing**: an operation that gets a CPU tensor and a device tensor fails, anywhere in the run,
    as on CUDA (whose kernels reject it, or copy the CPU tensor silently, as indexing does). A 0-dim
    CPU tensor is allowed, as CUDA allows it (its value is passed to the kernel as a scalar, no copy).
(b) **host generator**: a random draw on device tensors from a CPU generator (or on CPU tensors from a
    device generator) fails, anywhere in the run; CUDA refuses both. ``meta`` has no generators, so
    while a meta guard is active ``torch.Generator(device="meta")`` makes a CPU generator marked as the
    meta device's (meta kernels never draw from it).
(c) **host sync**: inside a training step that is not a log step (``grokking.engine.loop._train_step``
    called with ``logging`` false: the guard is armed there and only there), any copy between host and
    device fails (``.item()``, ``float()``, ``bool()``, ``.tolist()``, ``.cpu()``, ``.numpy()``,
    ``.to(device)`` of a host tensor, ``torch.tensor(...)`` or ``torch.as_tensor(...)`` of host data
    placed on the device, ``copy_`` across devices), as does an operation whose output size depends on
    the data (``nonzero``, boolean indexing, ``unique``, ...: CUDA must wait to know the size). The one
    exception is an upload through :func:`grokking.engine.transfer.upload` with ``non_blocking`` (on
    CUDA from pinned memory: the host does not wait for it).

Outside the armed steps (setup, log steps, checkpoints, pruning) copies are allowed. On ``meta`` one that
reads data from the device gets zeros (meta tensors have no data), so a run completes and writes its
results, whose values mean nothing: there the guard checks where tensors live and when the host reads
them, not the numbers (tests/test_numerics.py, tests/test_engine_equivalence.py test those on the CPU).

What the meta stand-in cannot show: whether ``upload`` really pins its memory (CUDA only); syncs inside a
CUDA library (cuBLAS, cuSPARSE, cuDNN); kernel launch counts. Where meta lacks a kernel (the sparse
product of the MLP's first-layer gradient) a shim checks the shapes instead; PyTorch has no autocast for
meta, so a bf16 run on meta goes through its own code path without the casts.

The first fault raises :class:`DeviceGuardError`, naming the kind of fault, the operation, whether the
guard was armed, and the line of Python that caused it (``collect=True`` records them all instead).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from grokking.engine import loop, transfer

STAND_IN = torch.device("meta")  # the device that stands for a GPU where there is none
aten = torch.ops.aten

MIXING, GENERATOR, SYNC = "device mixing", "host generator", "host sync"

# Operations whose output size depends on the data: on CUDA the host waits for the device to know it.
DATA_DEPENDENT = {
    "_local_scalar_dense",
    "nonzero",
    "masked_select",
    "_unique",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "bincount",
    "equal",
    "is_nonzero",
}
COPIES = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default, aten._copy_from_and_resize.default}
# How PyTorch's sync debug mode ("error") words the error it raises at a synchronizing CUDA call
CUDA_SYNC_ERROR = "synchronizing CUDA operation"
# Python-level reads of a device tensor (named in the message; the dispatch check is the backstop)
READS = {"item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__", "__array__"}
MAKERS = {"tensor", "as_tensor", "asarray", "new_tensor"}

_HERE = Path(__file__).resolve()
_TORCH = Path(torch.__file__).resolve().parent
_REAL_GENERATOR = torch.Generator
_REAL_AUTOCAST = torch.autocast


class DeviceGuardError(AssertionError):
    """A fault the guard found: ``kind`` is one of ``device mixing``, ``host generator``, ``host sync``."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _tensors(args, kwargs) -> list[torch.Tensor]:
    flat, _ = tree_flatten((args, kwargs or {}))
    return [a for a in flat if isinstance(a, torch.Tensor)]


def _outside(path: Path) -> bool:
    return path != _HERE and not path.is_relative_to(_TORCH)


def _where() -> str:
    """The innermost line of Python outside torch and this file: where the fault was written."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if _outside(path):
            return f"{path.parent.name}/{path.name}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "?"


def _raised_at(err: BaseException) -> str:
    """The innermost line of Python outside torch and this file in ``err``'s traceback."""
    for f in reversed(traceback.extract_tb(err.__traceback__)):
        path = Path(f.filename).resolve()
        if _outside(path):
            return f"{path.parent.name}/{path.name}:{f.lineno} ({f.name})"
    return "?"


def _called_from(code) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _describe(t: torch.Tensor) -> str:
    return f"{t.device.type} tensor {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"


class _GuardGenerator(_REAL_GENERATOR):
    """``torch.Generator`` while a meta guard is active: for the stand-in device a CPU generator marked
    as the device's (``stands_for``); for any other device a plain one."""

    def __new__(cls, device="cpu"):
        dev = torch.device(device)
        stand_in = dev.type == STAND_IN.type
        gen = super().__new__(cls, device="cpu" if stand_in else dev)
        gen.stands_for = dev if stand_in else None
        return gen


def _autocast(device_type, *args, **kwargs):
    """``torch.autocast`` while a meta guard is active: PyTorch has no autocast for the meta device, so a
    bf16 run on the stand-in goes through its own code path (autograd instead of hand-written gradients)
    without the casts; their dtypes go unchecked, the device rules do not."""
    if device_type == STAND_IN.type:
        return contextlib.nullcontext()
    return _REAL_AUTOCAST(device_type, *args, **kwargs)


def generator_device(gen) -> torch.device:
    return getattr(gen, "stands_for", None) or gen.device


class DeviceGuard:
    """The checks (a), (b), (c) of the module docstring, in a ``with`` block around training on ``device``
    (``meta``, the stand-in, or a CUDA device). Counts what it saw: ``steps`` (training steps),
    ``armed_steps`` (those checked for host syncs), ``device_draws`` (random draws from a device generator)
    and ``uploads`` (copies through :func:`grokking.engine.transfer.upload` in armed steps), so that a test
    can show the guard saw what it is meant to check.

    ``sync_debug`` (CUDA only): PyTorch's ``torch.cuda.set_sync_debug_mode("error")`` in the armed steps
    as well; a synchronizing CUDA call there is a host-sync fault."""

    def __init__(self, collect: bool = False, device="meta", sync_debug: bool = False):
        self.collect = collect  # record every fault (``faults``) instead of raising at the first
        self.device = torch.device(device)
        if self.device.type == "cpu":
            raise ValueError("DeviceGuard: the CPU is the host; guard the meta device or a GPU")
        if sync_debug and self.device.type != "cuda":
            raise ValueError(f"DeviceGuard: sync_debug is PyTorch's CUDA sync check, not one for {self.device}")
        self.kind = self.device.type
        self.stand_in = self.kind == STAND_IN.type
        self.sync_debug = sync_debug
        self.faults: list[DeviceGuardError] = []
        self.armed = self.in_step = False
        self.step_logging = None
        self.steps = self.armed_steps = self.device_draws = self.uploads = self.vouched = 0
        self._function = _FunctionGuard(self)
        self._dispatch = _DispatchGuard(self)

    def on_device(self, t) -> bool:
        return isinstance(t, torch.Tensor) and t.device.type == self.kind

    def host_data(self, data) -> bool:
        """Whether ``data`` (what ``torch.tensor`` and its kin read) is not already on the device."""
        if isinstance(data, torch.Tensor):
            return not self.on_device(data)
        if isinstance(data, (list, tuple)):
            return any(self.host_data(d) for d in data) or not any(self.on_device(d) for d in data)
        return True

    def _when(self) -> str:
        if self.in_step:
            return "in a training step between log steps" if self.armed else "in the training step of a log step"
        return "outside the training steps (setup, metrics, checkpoints, pruning)"

    def fail(self, kind: str, what: str, where: str | None = None):
        err = DeviceGuardError(kind, f"{what}, {self._when()}, at {where or _where()}")
        if not self.collect:
            raise err
        self._record(err)

    def _record(self, err: DeviceGuardError):
        if str(err) not in {str(f) for f in self.faults}:
            self.faults.append(err)

    def check_generator(self, func, gen, tensors, kwargs):
        target = tensors[0].device if tensors else torch.device(kwargs.get("device") or "cpu")
        source = generator_device(gen)
        if source.type != target.type:
            name = getattr(func, "__name__", str(func))
            self.fail(GENERATOR, f"a {source.type} generator draws {target.type} randomness in {name}")
        if source.type == self.kind:
            self.device_draws += 1

    # --- arming: the training steps of the engine that are not log steps ---
    def _guarded_step(self, real):
        def step(*args, **kwargs):
            logging = kwargs["logging"] if "logging" in kwargs else args[-1]
            self.steps += 1
            self.armed_steps += not logging
            before = self.armed, self.in_step
            self.armed, self.in_step = not logging, True
            try:
                with self._sync_check(not logging):
                    return real(*args, **kwargs)
            finally:
                self.armed, self.in_step = before

        return step

    @contextlib.contextmanager
    def _sync_check(self, armed: bool):
        """PyTorch's CUDA sync debug mode, "error", around an armed step (``sync_debug``); its error becomes a
        host-sync fault (always raised: the step cannot go on after it)."""
        if not (self.sync_debug and armed):
            yield
            return
        before = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        except RuntimeError as err:
            if CUDA_SYNC_ERROR not in str(err):
                raise
            fault = DeviceGuardError(
                SYNC,
                f"torch.cuda's sync debug mode: {str(err).splitlines()[0]}, {self._when()}, at {_raised_at(err)}",
            )
            self._record(fault)
            raise fault from err
        finally:
            torch.cuda.set_sync_debug_mode(before)

    def __enter__(self):
        self._real_step = loop._train_step
        loop._train_step = self._guarded_step(self._real_step)
        if self.stand_in:
            torch.Generator = _GuardGenerator
            torch.autocast = _autocast
        self._function.__enter__()
        self._dispatch.__enter__()
        return self

    def __exit__(self, *exc):
        self._dispatch.__exit__(*exc)
        self._function.__exit__(*exc)
        torch.Generator = _REAL_GENERATOR
        torch.autocast = _REAL_AUTOCAST
        loop._train_step = self._real_step
        return False


class _FunctionGuard(TorchFunctionMode):
    """Python-level calls: tensors made from host data on the device, and reads of device tensors, in
    an armed step (named as written; :class:`_DispatchGuard` is the backstop for what this misses)."""

    def __init__(self, guard: DeviceGuard):
        super().__init__()
        self.guard = guard

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        g = self.guard
        name = getattr(func, "__name__", "")
        gen = kwargs.get("generator")
        if gen is not None:  # here the generator is still the object the engine made (below, a new wrapper)
            g.check_generator(func, gen, _tensors(args, kwargs), kwargs)
            g.vouched += 1
            try:
                return func(*args, **kwargs)
            finally:
                g.vouched -= 1
        if g.armed:
            if name in MAKERS and kwargs.get("device") is not None:
                data = args[1] if name == "new_tensor" else (args[0] if args else kwargs.get("data"))
                if torch.device(kwargs["device"]).type == g.kind and g.host_data(data):
                    g.fail(SYNC, f"torch.{name}(...) copies host data to the device")
            if name == "new_tensor" and args and g.on_device(args[0]) and "device" not in kwargs:
                g.fail(SYNC, "Tensor.new_tensor(...) copies host data to the device")
            if name in READS and args and g.on_device(args[0]):
                g.fail(SYNC, f"Tensor.{name}() copies a device tensor to the host")
        return func(*args, **kwargs)


class _DispatchGuard(TorchDispatchMode):
    """Every ATen operation: device mixing, generators, transfers and data-dependent sizes; on meta, D2H
    copies outside the armed steps get zeros, and operations meta has no kernel for get a shim."""

    def __init__(self, guard: DeviceGuard):
        super().__init__()
        self.guard = guard

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        g = self.guard
        tensors = _tensors(args, kwargs)
        made_on = torch.device(kwargs.get("device") or "cpu").type
        on_device = any(g.on_device(t) for t in tensors) or made_on == g.kind
        if func in COPIES:
            return self._copy(func, args, kwargs)
        name = func.overloadpacket.__name__
        if on_device:
            self._check_mixing(func, tensors)
            if name in DATA_DEPENDENT or _bool_index(func, args):
                if g.armed:
                    g.fail(SYNC, f"aten.{func.__name__} reads device data on the host (the output size or value)")
                if name == "_local_scalar_dense" and g.stand_in:
                    return _zero_scalar(args[0].dtype)
        gen = kwargs.get("generator")
        if gen is not None and not g.vouched:  # a generator that no Python call handed over: from C++
            g.check_generator(func, gen, tensors, kwargs)
        return self._run(func, args, kwargs, tensors)

    def _check_mixing(self, func, tensors):
        host = [t for t in tensors if t.device.type == "cpu" and t.dim() > 0]
        if host:
            dev = next(t for t in tensors if self.guard.on_device(t))
            self.guard.fail(MIXING, f"a {_describe(host[0])} meets a {_describe(dev)} in aten.{func.__name__}")

    def _copy(self, func, args, kwargs):
        g = self.guard
        if func is aten._to_copy.default:
            src = args[0]
            dst_dev = torch.device(kwargs.get("device") or src.device)
            non_blocking = bool(kwargs.get("non_blocking", False))
        else:
            dst, src = args[0], args[1]
            dst_dev = dst.device
            non_blocking = bool(args[2] if len(args) > 2 else kwargs.get("non_blocking", False))
        up = src.device.type == "cpu" and dst_dev.type == g.kind
        down = g.on_device(src) and dst_dev.type == "cpu"
        if g.armed and up:
            if non_blocking and _called_from(transfer.upload.__code__):
                g.uploads += 1
            else:
                g.fail(SYNC, f"aten.{func.__name__} copies a {_describe(src)} to the device")
        if g.armed and down:
            g.fail(SYNC, f"aten.{func.__name__} copies a {_describe(src)} to the host")
        if down and g.stand_in:  # meta tensors have no data: the host reads zeros
            if func is aten._to_copy.default:
                return torch.zeros(src.shape, dtype=kwargs.get("dtype") or src.dtype)
            return dst.zero_()
        return func(*args, **kwargs)

    def _run(self, func, args, kwargs, tensors):
        try:
            return func(*args, **kwargs)
        except NotImplementedError:
            shim = SHIMS.get(func)
            if shim is None or not self.guard.stand_in or not any(self.guard.on_device(t) for t in tensors):
                raise
            return shim(*args, **kwargs)


def _bool_index(func, args) -> bool:
    """Indexing with a boolean mask: the number of selected elements is data (CUDA syncs for it)."""
    if func not in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default):
        return False
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])


def _zero_scalar(dtype):
    return False if dtype == torch.bool else 0.0 if dtype.is_floating_point else 0


def _addmm_(out, a, b, *, beta=1, alpha=1):
    """``out += a @ b`` where the meta device has no kernel (a sparse CSR ``a``): shapes only."""
    if out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]:
        raise RuntimeError(f"addmm_: shapes {tuple(out.shape)}, {tuple(a.shape)}, {tuple(b.shape)} do not match")
    return out


SHIMS = {aten.addmm_.default: _addmm_}

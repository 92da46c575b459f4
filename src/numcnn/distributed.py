"""Data-parallel training over MPI: ``mpirun -n K numcnn train --distributed ...``.

Every rank (MPI process) holds a full replica of the model. Each global batch, the batch a
single process would train on (same ``--batch-size``, same ``--seed``, same loader), is split
into K disjoint contiguous shards, one per rank (as even as possible; a batch of fewer than 2K
images goes to fewer ranks, so that BatchNorm never sees a single image). Each rank computes
the gradient of the mean loss over its shard and scales it by ``n_local / n_global``; one
``Allreduce`` (sum) per step over a single flat buffer gives every rank the gradient of the
mean loss over the whole batch: the K ranks together take exactly the steps of a single
process, up to floating-point rounding.

* Start: rank 0's parameters and buffers are broadcast (one ``Bcast`` of one flat buffer), and
  on ``--resume`` only rank 0 reads the checkpoint and sends its state (model, optimizer,
  scheduler, epoch, metrics history) to the others, so the number of ranks may change between
  runs.
* Evaluation (:func:`numcnn.train.evaluate` with this hook) is sharded the same way; the loss
  sum, the sample count and the confusion matrix are summed with one ``Allreduce``.
* Only rank 0 prints, creates the run folder, writes ``metrics.jsonl`` and the checkpoints
  (atomically).
* Errors of the setup (a bad ``--out``, a run that must not be overwritten, missing data) are
  agreed on by all ranks (:meth:`DataParallel.agree`): rank 0 prints the one
  ``numcnn: error:`` line and every rank exits with status 1.
* BatchNorm normalizes with per-rank batch statistics (not synchronized); at the end of every
  epoch the running estimates are averaged over the ranks (then rank 0's state is broadcast, so
  every replica evaluates and saves the same model).
* Dropout: with more than one rank, each epoch reseeds the library generator from
  ``(seed, epoch, rank)`` so ranks draw independent masks.
* A rank that raises prints ``numcnn: error: rank R failed: ...`` and aborts the whole job
  (``MPI_Abort``), so no rank waits forever in a collective; the last checkpoint stays valid.

NumPy stays the only requirement of numcnn: this module imports ``mpi4py`` only when a
:class:`DataParallel` is made (``pip install 'numcnn[mpi]'``).

Testing hook: with ``NUMCNN_FAIL_RANK=R`` and ``NUMCNN_FAIL_STEP=S`` in the environment, rank R
raises ``RuntimeError`` at its S-th training step (counted from 1 in each process), to exercise
the failure path.

>>> [shard_bounds(10, rank, size=3) for rank in range(3)]
[(0, 4), (4, 7), (7, 10)]
>>> [shard_bounds(3, rank, size=3, minimum=2) for rank in range(3)]
[(0, 3), (3, 3), (3, 3)]
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

from . import random as nc_random
from .errors import USER_ERRORS, error_message, is_user_error, report

__all__ = ["AgreedError", "DataParallel", "is_available", "launched_rank", "launched_ranks",
           "run_or_abort", "shard_bounds", "world"]

FAIL_RANK_ENV = "NUMCNN_FAIL_RANK"
FAIL_STEP_ENV = "NUMCNN_FAIL_STEP"

#: The fewest images a rank trains on in a step (BatchNorm needs two): a global batch smaller
#: than ``MIN_TRAIN_SHARD * ranks`` is split over fewer ranks, the others sit the step out.
MIN_TRAIN_SHARD = 2

#: Environment variables through which MPI launchers announce the number of processes and
#: the rank of this one.
_SIZE_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_RANK_ENV = ("OMPI_COMM_WORLD_RANK", "PMI_RANK")


def is_available() -> bool:
    """Whether ``mpi4py`` can be imported (without importing it: MPI starts on import)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def launched_ranks() -> int:
    """The number of processes the MPI launcher started (1 when not under ``mpirun``).

    Read from the launcher's environment variables, without initializing MPI.
    """
    for name in _SIZE_ENV:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def launched_rank() -> int:
    """This process's rank as the MPI launcher announced it (0 when not under ``mpirun``)."""
    for name in _RANK_ENV:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def world():
    """``MPI.COMM_WORLD`` (imports mpi4py, which initializes MPI)."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("distributed training needs mpi4py and an MPI library: "
                           "pip install 'numcnn[mpi]'") from None
    return MPI.COMM_WORLD


def shard_bounds(n: int, rank: int, size: int, minimum: int = 1) -> tuple[int, int]:
    """``(lo, hi)``: the contiguous slice of ``n`` samples that ``rank`` of ``size`` takes.

    The samples go to the first ``min(size, n // minimum)`` ranks (at least one), as evenly as
    possible, the first ones taking one sample more; the other ranks get an empty slice. So no
    rank gets fewer than ``minimum`` samples, unless ``n`` itself is smaller.
    """
    active = max(1, min(size, n // max(minimum, 1)))
    if rank >= active:
        return n, n
    q, r = divmod(n, active)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


def _unique(params) -> list:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _state_arrays(model) -> list[np.ndarray]:
    """Every parameter's data and every buffer of ``model``, in a fixed order."""
    arrays = [p.data for p in model.parameters()]
    arrays += [b for _, b in model.named_buffers()]
    return arrays


class AgreedError(ValueError):
    """An error every rank raises together (see :meth:`DataParallel.agree`): rank 0 reports it
    in one line, the other ranks end quietly, and nothing is aborted."""


def run_or_abort(fn, *args, comm=None, **kwargs):
    """Call ``fn(*args, **kwargs)``; if it raises on this rank, end the whole job.

    The rank prints ``numcnn: error: rank R failed: ...`` (after the traceback, for errors that
    are not the user's) and calls ``comm.Abort(1)``: the other ranks may be waiting for it in a
    collective and would otherwise never return. With a single rank the exception propagates.
    """
    comm = world() if comm is None else comm
    try:
        return fn(*args, **kwargs)
    except AgreedError:
        if comm.Get_size() == 1 or comm.Get_rank() == 0:
            raise
        raise SystemExit(1) from None  # rank 0 prints the one line
    except BaseException as err:
        if comm.Get_size() == 1:
            raise
        if not isinstance(err, KeyboardInterrupt) and not is_user_error(err):
            traceback.print_exc(file=sys.stderr)
        report(err, rank=comm.Get_rank())
        comm.Abort(1)
        raise  # not reached: Abort ends the process


class DataParallel:
    """Data-parallel training of model replicas over an MPI communicator.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.
    log : callable, optional
        Rank 0 reports each epoch's share of time spent in ``Allreduce`` through it.

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of ranks.
    is_root : bool
        ``rank == 0``: the rank that prints and writes files.
    timings : dict
        Of the last epoch trained with this hook: ``steps``, ``seconds`` (wall time of the epoch),
        ``allreduce_seconds`` (time inside the gradient ``Allreduce``, including waiting for the
        slowest rank) and ``images`` (global).

    Examples
    --------
    It is the synchronisation hook of :func:`numcnn.train.train_epoch` and
    :func:`numcnn.train.evaluate`; by hand::

        dp = DataParallel()
        dp.broadcast_state(model)                        # identical replicas
        params = list(model.parameters())
        for x, y in loader:                              # the global batches
            lo, hi = dp.shard_bounds(len(y), minimum=2)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(Tensor(x[lo:hi])), y[lo:hi])
            loss.backward()
            dp.allreduce_gradients(params, hi - lo, len(y), loss.item())
            optimizer.step()
    """

    def __init__(self, comm=None, log=None) -> None:
        self.comm = world() if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_root = self.rank == 0
        self.log = log
        self.timings: dict = {}
        self._params: list = []
        self._epoch_steps = self._epoch_images = 0
        self._epoch_start = 0.0
        self._steps = 0
        self._allreduce_seconds = 0.0
        fail_rank, fail_step = os.environ.get(FAIL_RANK_ENV), os.environ.get(FAIL_STEP_ENV)
        self._fail_step = None
        if fail_rank is not None and fail_step is not None and int(fail_rank) == self.rank:
            self._fail_step = int(fail_step)
        self._share_cores_with_local_ranks()

    def _share_cores_with_local_ranks(self) -> None:
        """Ranks on one machine split its cores for numcnn's kernel threads (unless the thread
        count was chosen): k ranks on c cores get c // k threads each, at least 1."""
        if os.environ.get("NUMCNN_NUM_THREADS") or not hasattr(self.comm, "Split_type"):
            return
        from mpi4py import MPI

        from .ops import parallel

        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            ranks_here = local.Get_size()
        finally:
            local.Free()
        if ranks_here > 1:
            parallel.set_num_threads(max(1, parallel.get_num_threads() // ranks_here))

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, size={self.size})"

    # --- collectives --------------------------------------------------------------------------
    def shard_bounds(self, n: int, minimum: int = 1) -> tuple[int, int]:
        """This rank's ``(lo, hi)`` slice of a global batch of ``n`` samples."""
        return shard_bounds(n, self.rank, self.size, minimum)

    def broadcast_object(self, obj, root: int = 0):
        """A picklable object from ``root`` to every rank (small, one-off messages only)."""
        return self.comm.bcast(obj, root=root)

    def broadcast_state(self, model, root: int = 0) -> None:
        """Copy ``root``'s parameters and buffers into every replica: one ``Bcast`` of all of
        them as one flat byte buffer (exact for every dtype)."""
        arrays = _state_arrays(model)
        layout = [(a.dtype.str, a.shape) for a in arrays]
        root_layout = self.comm.bcast(layout, root=root)
        if root_layout != layout:
            raise RuntimeError(f"rank {self.rank}: the model's parameters and buffers differ from "
                               f"those of rank {root}")
        flat = np.concatenate([np.ascontiguousarray(a).reshape(-1).view(np.uint8)
                               for a in arrays]) if arrays else np.empty(0, np.uint8)
        self.comm.Bcast(flat, root=root)
        if self.rank != root:
            offset = 0
            for a in arrays:
                chunk = flat[offset:offset + a.nbytes]
                np.copyto(a, chunk.view(a.dtype).reshape(a.shape))
                offset += a.nbytes

    def average_buffers(self, model) -> None:
        """Replace every floating buffer (BatchNorm's running mean and variance) by its mean
        over the ranks (one ``Allreduce``)."""
        buffers = [b for _, b in model.named_buffers() if np.issubdtype(b.dtype, np.floating)]
        if self.size == 1 or not buffers:
            return
        flat = np.concatenate([b.reshape(-1).astype(np.float64) for b in buffers])
        self._allreduce(flat)
        flat /= self.size
        offset = 0
        for b in buffers:
            np.copyto(b, flat[offset:offset + b.size].reshape(b.shape), casting="unsafe")
            offset += b.size

    def allreduce_gradients(self, params, n_local: int, n_global: int, loss: float = 0.0,
                            correct: int = 0) -> tuple[float, int]:
        """Turn each rank's local mean-loss gradients into the global mean-loss gradient.

        Packs ``grad * n_local / n_global`` of every parameter, a has-gradient flag per
        parameter, the weighted loss and the correct count into one flat buffer (the
        parameters' dtype) and sums it over the ranks with a single ``Allreduce``. A parameter
        that got no gradient on any rank keeps ``grad = None``, as in a single process.

        Returns
        -------
        (float, int)
            The mean loss over the global batch and the number of correct predictions in it.
        """
        params = list(params)
        dtype = np.result_type(*[p.data.dtype for p in params]) if params else np.float64
        sizes = [p.data.size for p in params]
        total = sum(sizes)
        flat = np.zeros(total + len(params) + 2, dtype=dtype)
        weight = n_local / n_global if n_global else 0.0
        offset = 0
        for i, (p, n) in enumerate(zip(params, sizes)):
            if p.grad is not None and n_local > 0:
                np.multiply(np.asarray(p.grad).reshape(-1), weight, out=flat[offset:offset + n],
                            casting="unsafe")
                flat[total + i] = 1
            offset += n
        flat[-2] = loss * weight if n_local > 0 else 0.0
        flat[-1] = correct
        start = time.perf_counter()
        self._allreduce(flat)
        self._allreduce_seconds += time.perf_counter() - start
        offset = 0
        for i, (p, n) in enumerate(zip(params, sizes)):
            p.grad = (flat[offset:offset + n].reshape(p.data.shape).astype(p.data.dtype, copy=False)
                      if flat[total + i] > 0 else None)
            offset += n
        return float(flat[-2]), int(np.rint(flat[-1]))

    def _allreduce(self, array: np.ndarray) -> None:
        if self.size > 1:
            from mpi4py import MPI

            self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)

    def agree(self, fn, root_only: bool = False):
        """Run ``fn()`` (on rank 0 only, when ``root_only``; the other ranks pass None) and make
        every rank share its fate: if it raised a user error (missing data, a bad --out) on any
        rank, every rank raises :class:`AgreedError` with the first rank's message, so the job
        ends with one error line instead of one per rank and no rank waits in a collective.
        Returns ``fn()``'s result on the ranks that ran it, else None."""
        result, message = None, None
        if fn is not None and (self.is_root or not root_only):
            try:
                result = fn()
            except USER_ERRORS as err:
                message = error_message(err)
        if root_only:
            messages = [self.comm.bcast(message, root=0)]
        else:
            messages = self.comm.allgather(message)
        first = next((m for m in messages if m is not None), None)
        if first is not None:
            raise AgreedError(first)
        return result

    # --- training ----------------------------------------------------------------------------
    def sync_start(self, model, optimizer, scheduler, start_epoch: int, history: list):
        """Give every rank rank 0's starting point: model, optimizer and scheduler state,
        generator state, epoch and metrics history (rank 0 may have resumed from a checkpoint).

        Returns ``(start_epoch, history)`` as known to rank 0.
        """
        self.broadcast_state(model)
        if self.size == 1:
            return start_epoch, history
        payload = None
        if self.is_root:
            payload = {"optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict() if scheduler is not None else None,
                       "rng_state": nc_random.get_rng_state(),
                       "start_epoch": start_epoch, "history": history}
        payload = self.broadcast_object(payload)
        if not self.is_root:
            optimizer.load_state_dict(payload["optimizer"])
            if scheduler is not None and payload["scheduler"] is not None:
                scheduler.load_state_dict(payload["scheduler"])
            nc_random.set_rng_state(payload["rng_state"])
        return payload["start_epoch"], payload["history"]

    def _reseed(self, loader) -> None:
        """Independent dropout masks per rank: reseed from (seed, epoch, rank)."""
        if self.size > 1:
            seq = np.random.SeedSequence([int(loader.seed), int(loader.epoch), self.rank])
            nc_random.manual_seed(int(seq.generate_state(1, np.uint64)[0]))

    def _check_failure_hook(self) -> None:
        if self._fail_step is not None and self._steps == self._fail_step:
            raise RuntimeError(f"failure injected at step {self._steps} "
                               f"({FAIL_RANK_ENV}={self.rank} {FAIL_STEP_ENV}={self._fail_step})")

    # --- the synchronisation hook of numcnn.train.train_epoch and numcnn.train.evaluate -----
    def start_epoch(self, model, loader, optimizer) -> None:
        """Every rank must train on the same loader (same seed and epoch) in step."""
        self._params = _unique(p for group in optimizer.param_groups for p in group["params"])
        self._reseed(loader)
        self._allreduce_seconds = 0.0
        self._epoch_steps = 0
        self._epoch_images = 0
        self._epoch_start = time.perf_counter()

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's slice of a global training batch of ``n`` images."""
        return self.shard_bounds(n, MIN_TRAIN_SHARD)

    def synchronize(self, n_local: int, n_global: int, loss: float,
                    correct: int) -> tuple[float, int]:
        """One ``Allreduce`` of the gradients, loss and correct count (see
        :meth:`allreduce_gradients`); returns the global batch's mean loss and correct count."""
        self._steps += 1
        self._epoch_steps += 1
        self._epoch_images += n_global
        self._check_failure_hook()
        return self.allreduce_gradients(self._params, n_local, n_global, loss, correct)

    def end_epoch(self, model) -> None:
        """Average BatchNorm's running estimates, make the replicas identical again, and report
        the epoch's time in ``Allreduce`` (:attr:`timings`)."""
        self.average_buffers(model)
        self.broadcast_state(model)  # replicas stay bit-identical whatever the reduction order
        seconds = time.perf_counter() - self._epoch_start
        steps = self._epoch_steps
        self.timings = {"steps": steps, "seconds": seconds, "images": self._epoch_images,
                        "allreduce_seconds": self._allreduce_seconds}
        if self.log is not None and self.is_root and steps:
            self.log(f"  {self.size} {'rank' if self.size == 1 else 'ranks'}: "
                     f"{1e3 * seconds / steps:.1f} ms/step, "
                     f"{100 * self._allreduce_seconds / max(seconds, 1e-9):.1f}% in Allreduce")

    def eval_shard(self, n: int) -> tuple[int, int]:
        """This rank's slice of a global test batch of ``n`` images (no minimum: evaluation
        runs BatchNorm on its running estimates)."""
        return self.shard_bounds(n)

    def reduce_eval(self, loss_sum: float, count: int,
                    confusion: np.ndarray) -> tuple[float, int, np.ndarray]:
        """The evaluation totals of every rank summed, with one ``Allreduce``."""
        flat = np.concatenate([[loss_sum, count], confusion.reshape(-1)]).astype(np.float64)
        self._allreduce(flat)
        return (float(flat[0]), int(np.rint(flat[1])),
                np.rint(flat[2:]).astype(np.int64).reshape(confusion.shape))

"""Data-parallel training over MPI (numcnn.distributed).

The MPI tests launch ``mpirun`` and compare against one process training the same LeNet-5 (no
BatchNorm) on 1625 MNIST images, batch 64 (26 steps per epoch, the last batch of 25 images
splits unevenly), for 8 epochs (208 steps): final parameters and every epoch's metrics must agree
to a relative 1e-4. They skip when mpi4py or mpirun is missing (``pip install 'numcnn[mpi]'``);
the two-namespace test also skips when network namespaces cannot be made (it needs root and
``ip``). Every process uses one BLAS thread: the machines running the tests are small and shared.
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import numcnn
from numcnn import checkpoint
from numcnn.cli import main
from numcnn.distributed import launched_ranks, shard_bounds

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data"
SRC = Path(numcnn.__file__).resolve().parents[1]  # the folder numcnn is imported from
RTOL = 1e-4
TIMEOUT = 120
DATA_DIR = ["--data-dir", str(DATA)] if (DATA / "mnist").is_dir() else []
TRAIN = ["--model", "lenet5", "--dataset", "mnist", "--epochs", "8", "--batch-size", "64",
         "--limit", "1625", "--test-limit", "250", "--seed", "3", "--no-progress", *DATA_DIR]
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "lr")


def _mpirun() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


MPIRUN = _mpirun()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIRUN is None,
    reason="needs mpi4py and mpirun: pip install 'numcnn[mpi]'")


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    for name in ("NUMCNN_FAIL_RANK", "NUMCNN_FAIL_STEP"):
        env.pop(name, None)
    env.update(extra)
    return env


def _mpi_command(ranks: int, *options: str) -> list[str]:
    cmd = [MPIRUN, "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *options]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    for name in ("PYTHONPATH", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        cmd += ["-x", name]
    return cmd


def _train(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "numcnn", "train", *TRAIN, "--out", str(out), *extra]


def _run(cmd, env=None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(out: Path, reference: Path) -> None:
    """Same final parameters (per tensor: max |a - b| <= RTOL * max |b|) and metrics."""
    got = checkpoint.load(out / "last.npz")
    want = checkpoint.load(reference / "last.npz")
    assert got["epoch"] == want["epoch"] == 8
    assert list(got["model_state"]) == list(want["model_state"])
    for name, b in want["model_state"].items():
        a = got["model_state"][name]
        assert a.shape == b.shape and a.dtype == b.dtype
        rel = np.abs(a - b).max() / np.abs(b).max()
        assert rel <= RTOL, f"{name}: relative difference {rel:.2e}"
    rows, ref_rows = _rows(out), _rows(reference)
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref_rows] == list(range(1, 9))
    for row, ref in zip(rows, ref_rows):
        for key in METRICS:
            assert row[key] == pytest.approx(ref[key], rel=RTOL, abs=1e-7), (row["epoch"], key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process, the usual loop."""
    out = tmp_path_factory.mktemp("single") / "run"
    _run(_train(out))
    return out


# --- without MPI ---------------------------------------------------------------------------

@pytest.mark.parametrize("minimum", [1, 2, 3])
def test_shards_split_every_batch_into_disjoint_covering_slices(minimum):
    for size in (1, 2, 3, 5, 8):
        for n in (0, 1, 2, 3, 7, 25, 64):
            bounds = [shard_bounds(n, rank, size, minimum) for rank in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(hi1 == lo2 for (_, hi1), (lo2, _) in itertools.pairwise(bounds))
            sizes = [hi - lo for lo, hi in bounds if hi > lo]
            assert max(sizes, default=0) - min(sizes, default=0) <= 1
            assert min(sizes, default=n) >= min(minimum, n)
            assert len(sizes) == (min(size, max(1, n // minimum)) if n else 0)


def test_importing_numcnn_never_imports_mpi():
    code = ("import sys, numcnn, numcnn.train, numcnn.cli, numcnn.distributed; "
            "numcnn.cli.build_parser(); sys.exit('mpi4py' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True, timeout=60)


def test_training_under_mpirun_without_distributed_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert launched_ranks() == 2
    assert main(["train", "--out", str(tmp_path / "run"), "--epochs", "1"]) == 1
    assert "add --distributed" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- mpirun on this machine ----------------------------------------------------------------

@needs_mpi
def test_two_ranks_train_exactly_like_one_process(reference, tmp_path):
    out = tmp_path / "run"
    result = _run(_mpi_command(2) + _train(out, "--distributed"))
    assert "data parallel over 2 ranks" in result.stdout
    assert result.stdout.count("training lenet5") == 1  # only rank 0 prints
    _assert_same_run(out, reference)
    config = json.loads((out / "config.json").read_text())
    assert config["distributed"] is True and config["batch_size"] == 64


@needs_mpi
def test_ranks_on_one_machine_share_its_cores_for_kernel_threads():
    """Without a thread count chosen, k ranks on one machine split its cores: each rank's
    numcnn kernel threads become cores // k (at least 1)."""
    env = _env()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMCNN_NUM_THREADS"):
        env.pop(name, None)
    code = ("import numcnn; from numcnn.ops import parallel; "
            "from numcnn.distributed import DataParallel; before = parallel.get_num_threads(); "
            "DataParallel(); print('threads', before, parallel.get_num_threads())")
    cmd = [MPIRUN, "-n", "2", "--oversubscribe", "--bind-to", "none", "-x", "PYTHONPATH"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    result = _run(cmd + [sys.executable, "-c", code], env=env)
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("threads")]
    assert len(lines) == 2
    for _, before, after in lines:
        assert int(after) == max(1, int(before) // 2)


@needs_mpi
def test_failed_rank_ends_the_job_and_a_resume_with_other_ranks_finishes_the_run(reference,
                                                                                  tmp_path):
    """Rank 2 of 3 raises in epoch 4 (step 80 of 26 per epoch); the whole job ends by itself (a
    job that outlives the failed rank runs into the wait's timeout, which fails the test), epoch
    3's checkpoint is intact, and 2 ranks resume to the reference result."""
    out = tmp_path / "run"
    env = _env(NUMCNN_FAIL_RANK="2", NUMCNN_FAIL_STEP="80")
    with (tmp_path / "stdout").open("w") as stdout:
        proc = subprocess.Popen(_mpi_command(3) + _train(out, "--distributed"), env=env,
                                stdout=stdout, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    lines: list[str] = []

    def read_stderr():
        lines.extend(proc.stderr)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:  # a hung job: end the launcher and the ranks it started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode != 0, (tmp_path / "stdout").read_text() + stderr
    assert "numcnn: error: rank 2 failed: failure injected at step 80" in stderr
    last = checkpoint.load(out / "last.npz")
    assert last["epoch"] == 3 and [r["epoch"] for r in _rows(out)] == [1, 2, 3]
    assert not list(out.glob(".*.numcnn-tmp"))

    result = _run(_mpi_command(2) + _train(out, "--distributed", "--resume"))
    assert "resuming from" in result.stdout and "after epoch 3" in result.stdout
    _assert_same_run(out, reference)


@needs_mpi
@pytest.mark.parametrize("case", ["run exists", "no data"])
def test_a_setup_error_is_one_line_from_rank_0(tmp_path, case):
    """Errors every rank meets (a folder holding a run, missing data) end the job with one
    ``numcnn: error:`` line, not one per rank, and no rank hangs or aborts."""
    out = tmp_path / "run"
    out.mkdir()
    extra = ["--limit", "64", "--test-limit", "20", "--epochs", "1", "--no-progress"]
    if case == "run exists":
        (out / "metrics.jsonl").write_text("")
        extra += DATA_DIR
        fragment = "already holds a run"
    else:
        (tmp_path / "empty").mkdir()
        extra += ["--data-dir", str(tmp_path / "empty"), "--no-download"]
        fragment = "does not hold the mnist data set"
    cmd = _mpi_command(2) + [sys.executable, "-m", "numcnn", "train", "--out", str(out),
                             "--distributed", *extra]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)
    errors = [line for line in proc.stderr.splitlines() if "numcnn: error" in line]
    assert proc.returncode != 0
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    assert "rank 1" not in errors[0] and "MPI_ABORT" not in proc.stderr


@needs_mpi
def test_batchnorm_model_trains_on_two_ranks_with_a_last_batch_of_two(tmp_path):
    """ConvNet (BatchNorm, dropout): per-rank batch statistics; the last batch (2 images) goes
    to rank 0 alone, since BatchNorm cannot normalize a single image."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "numcnn", "train", "--model", "convnet", "--epochs", "1",
           "--batch-size", "32", "--limit", "66", "--test-limit", "50", "--no-progress",
           "--out", str(out), "--distributed", *DATA_DIR]
    _run(_mpi_command(2) + cmd)
    state = checkpoint.load(out / "last.npz")["model_state"]
    assert int(state["features.1.num_batches_tracked"]) == 3
    assert all(np.isfinite(v).all() for v in state.values())
    assert np.isfinite(_rows(out)[0]["test_loss"])


# --- two "hosts": network namespaces joined by a veth pair --------------------------------

SUBNET = "10.231.0.0/30"
ADDRESSES = ("10.231.0.1", "10.231.0.2")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def namespaces(tmp_path):
    """Two network namespaces, each with one end of a veth pair and one address of SUBNET.

    Yields ``[(namespace, device, address), ...]``; everything is removed afterwards.
    """
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.skip("network namespaces need root, ip and unshare")
    tag = f"{os.getpid() % 100000}"
    hosts = [(f"numcnn{tag}a", f"ncv{tag}a", ADDRESSES[0]),
             (f"numcnn{tag}b", f"ncv{tag}b", ADDRESSES[1])]
    made: list[str] = []
    try:
        for ns, _, _ in hosts:
            result = _ip("netns", "add", ns, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {result.stderr.strip()}")
            made.append(ns)
        (_, dev_a, _), (_, dev_b, _) = hosts
        result = _ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot create a veth pair: {result.stderr.strip()}")
        for ns, dev, address in hosts:
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{address}/30", "dev", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        yield hosts
    finally:
        for ns in made:  # deleting a namespace deletes its end of the pair, and so the pair
            _ip("netns", "delete", ns, check=False)
        if _ip("link", "show", hosts[0][1], check=False).returncode == 0:  # never moved
            _ip("link", "delete", hosts[0][1], check=False)


def _rx_bytes(ns: str, dev: str) -> int:
    result = subprocess.run(["ip", "netns", "exec", ns, "cat",
                             f"/sys/class/net/{dev}/statistics/rx_bytes"],
                            capture_output=True, text=True, check=True, timeout=30)
    return int(result.stdout)


@needs_mpi
def test_ranks_on_two_hosts_over_tcp_train_exactly_like_one_process(reference, namespaces,
                                                                    tmp_path):
    """mpirun runs in namespace a (host 10.231.0.1) and starts the daemon of host 10.231.0.2
    through a remote-shell agent that enters namespace b, so rank 0 and rank 1 are in
    different network namespaces (and hostnames) and talk TCP over the veth pair only."""
    (ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b) = namespaces
    agent = tmp_path / "netns_rsh.sh"
    shutil.copy(HERE / "netns_rsh.sh", agent)
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
    hostfile = tmp_path / "hosts"
    hostfile.write_text(f"{addr_a} slots=1\n{addr_b} slots=1\n")
    out = tmp_path / "run"
    mpi = _mpi_command(2, "--hostfile", str(hostfile), "--map-by", "node",
                       "--mca", "plm_rsh_agent", str(agent), "--mca", "btl", "tcp,self",
                       "--mca", "btl_tcp_if_include", SUBNET,
                       "--mca", "oob_tcp_if_include", SUBNET)
    where = [sys.executable, "-c", ("import socket, os; "
                                    "print('rank', os.environ['OMPI_COMM_WORLD_RANK'], "
                                    "socket.gethostname(), os.readlink('/proc/self/ns/net'))")]
    # mpirun itself runs in namespace a, with its own hostname, as the first host would
    enter_a = ["ip", "netns", "exec", ns_a, "unshare", "--uts", "sh", "-c",
               'hostname "$0" && exec "$@"', ns_a]
    env = _env(NUMCNN_NETNS_HOSTS=f"{addr_a}={ns_a} {addr_b}={ns_b}")

    placed = _run(enter_a + mpi + where, env=env).stdout.splitlines()
    ranks = sorted(line.split()[1:] for line in placed if line.startswith("rank "))
    assert [(r[0], r[1]) for r in ranks] == [("0", ns_a), ("1", ns_b)], placed
    assert ranks[0][2] != ranks[1][2], placed  # different network namespaces

    before = _rx_bytes(ns_a, dev_a), _rx_bytes(ns_b, dev_b)
    result = _run(enter_a + mpi + _train(out, "--distributed"), env=env)
    received = _rx_bytes(ns_a, dev_a) - before[0], _rx_bytes(ns_b, dev_b) - before[1]
    assert "data parallel over 2 ranks" in result.stdout
    _assert_same_run(out, reference)
    # 208 steps, each summing 61,706 float32 gradients: both ends received them over the veth
    gradient_bytes = 208 * 61706 * 4
    assert min(received) > 0.9 * gradient_bytes, received

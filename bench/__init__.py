"""Side-by-side speed of numcnn and PyTorch CPU: the benchmark harness of ``make bench``.

It lives beside the package, not in it, and uses numcnn's public API only. Run it from a source
checkout with ``python bench/run.py`` or ``make bench``; ``numcnn bench`` (an editable install)
runs it too, with the same flags.

Each case runs for numcnn and, when installed, for PyTorch (``torch.set_num_threads`` equal to
NumPy's BLAS threads) in the same process, both used the ordinary way: no allocator or thread
setting is made for either. Libraries are timed in separate blocks, never call by call
interleaved (on a small machine both libraries' worker threads keep spinning after a call and
would steal the cores from each other), and the blocks alternate A B A B. Each block warms up,
repeats, and gives its median; each library's figure is its **fastest block**, far less
sensitive to a shared machine's load than a median over blocks. The load average is printed
with every row, and a row measured above :data:`bench.timing.LOADED` is marked as such. GFLOP/s
are given against this machine's float32 GEMM peak measured in the same run with one large
``np.matmul``.

Then, each in its own small table: the peak extra memory of each conv case's forward+backward
for both libraries (measured in a fresh process per library and case), numcnn against MyGrad
(another autograd library on NumPy alone) on the LeNet convs, and the wall time of one full
MNIST epoch of ``numcnn train``. ``--memory-budget`` caps numcnn's im2col buffer everywhere
numcnn runs, to show what less memory costs in time.

NumPy's OpenBLAS is slowed by ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` where those are set:
run benchmarks with both unset (``make bench`` does).

Modules, one job each: :mod:`.command` (the flags and the run), :mod:`.suite` (the tables in
order), :mod:`.timing` (alternating blocks, the load), :mod:`.machine` (BLAS and its peak),
:mod:`.cases` (the case tables), :mod:`.numcnn_cases`, :mod:`.torch_cases`,
:mod:`.other_libraries` (each library's runners), :mod:`.speed` (the numcnn/PyTorch table),
:mod:`.memory` (the peak-memory table) with :mod:`.memory_probe` (its measurement in a
fresh process), :mod:`.epoch` (one MNIST epoch),
:mod:`.naive` (the reference loops), :mod:`.targets` (the target table) and :mod:`.results`
(the JSON file).
"""

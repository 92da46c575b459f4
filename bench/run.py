"""Benchmark numcnn against PyTorch CPU: ``python bench/run.py [flags]`` from anywhere, or
``make bench``. ``--help`` lists the flags; the harness is the package this file is in."""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a file, Python puts this folder first on sys.path; the harness is the package
    # ``bench`` though, imported from the folder above (so that none of its modules can stand
    # in for another top-level module of the same name).
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parent))

    from bench.command import main

    sys.exit(main())

"""Benchmark numcnn against PyTorch CPU; see ``numcnn.bench``. Run with ``make bench``."""
import sys

from numcnn.bench import main

if __name__ == "__main__":
    sys.exit(main())

"""What numcnn knows about its data sets: file names, published checksums and mirrors.

Both data sets use the same four IDX files, gzip-compressed, under the names their
publishers gave them. A data directory ``D`` holds a data set ``name`` when
``D/name/`` contains the files (see :mod:`numcnn.data.paths`).
"""
from __future__ import annotations

#: Data sets numcnn can read, by directory name.
DATASET_NAMES = ("mnist", "fashion-mnist")

#: The (images, labels) files of each split.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: All four files of a data set, train split first.
ALL_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]

#: SHA-256 of every published ``.gz`` file (the values of ``data/SHA256SUMS``).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

#: Base URLs tried in order when a file has to be downloaded; ``base + file name`` is fetched.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}


def check_name(name: str) -> str:
    """Return ``name`` if it is a known data set, else raise ``ValueError``.

    Parameters
    ----------
    name : str
        Data set directory name, ``'mnist'`` or ``'fashion-mnist'``.

    Returns
    -------
    str
        ``name`` unchanged.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set name {name!r}; expected one of {DATASET_NAMES}")
    return name

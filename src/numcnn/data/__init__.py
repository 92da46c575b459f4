"""Data for numcnn, in pure NumPy: IDX files, MNIST/Fashion-MNIST, transforms, DataLoader.

>>> from numcnn.data import MNIST, Compose, DataLoader, Normalize, ToFloat
>>> test = MNIST(train=False, transform=Compose([ToFloat(), Normalize(MNIST.mean, MNIST.std)]))
>>> loader = DataLoader(test, batch_size=64, shuffle=True, seed=0)
>>> x, y = next(iter(loader))
>>> x.shape, x.dtype, y.shape, y.dtype
((64, 1, 28, 28), dtype('float32'), (64,), dtype('int64'))
"""
from numcnn.data.catalog import DATASET_NAMES, MIRRORS, SHA256
from numcnn.data.datasets import MNIST, ArrayDataset, FashionMNIST, Subset, random_split
from numcnn.data.download import ChecksumError, download_dataset, download_file, sha256_file
from numcnn.data.idx import read_idx
from numcnn.data.loader import DataLoader
from numcnn.data.paths import (
    ENV_VAR,
    bundled_data_dir,
    cache_dir,
    find_dataset_dir,
    resolve_dataset_dir,
    search_dirs,
)
from numcnn.data.transforms import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomShift,
    ToFloat,
    ToTensor,
    Transform,
    apply_batch,
)
from numcnn.errors import DownloadError, IdxFormatError

__all__ = [
    "DATASET_NAMES", "ENV_VAR", "MIRRORS", "MNIST", "SHA256",
    "ArrayDataset", "ChecksumError", "Compose", "DataLoader", "DownloadError", "FashionMNIST",
    "IdxFormatError", "Normalize", "Pad", "RandomCrop", "RandomShift", "Subset", "ToFloat",
    "ToTensor",
    "Transform", "apply_batch", "bundled_data_dir", "cache_dir", "download_dataset",
    "download_file", "find_dataset_dir", "random_split", "read_idx", "resolve_dataset_dir",
    "search_dirs", "sha256_file",
]

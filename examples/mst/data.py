"""Fashion-MNIST from the Debian package's IDX files (big-endian, gzip), as numpy arrays.

The network sees 28x28 images zero-padded to 32x32 (so a 4x4 patch grid is 8x8 tokens), pixel
values scaled to [0, 1]. No mean subtraction: the analog image enters the first layer unchanged,
and zero padding stays exactly "black" in the spiking network too.
"""
import gzip
import os

import numpy as np

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
IMAGE_SIZE = 32   # padded side length
PAD = (IMAGE_SIZE - 28) // 2
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Reads one IDX file (optionally gzip-compressed) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    count = int(np.prod(shape))
    if len(raw) != header + count * dtype.itemsize:
        raise ValueError(f"{path}: size does not match the header's shape {shape}")
    return np.frombuffer(raw, dtype, count, header).reshape(shape).astype(dtype.newbyteorder("="))


def load(split, data_dir=DATA_DIR):
    """Returns (images uint8 [N, 28, 28], labels int64 [N]) for split 'train' or 'test'."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{data_dir}: {split} images and labels differ in count")
    return images, labels.astype(np.int64)


def to_network_input(images):
    """uint8 [N, 28, 28] -> float32 [N, 1, 32, 32] in [0, 1], centred in the zero padding."""
    out = np.zeros((images.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out[:, 0, PAD:PAD + 28, PAD:PAD + 28] = images.astype(np.float32) / 255.0
    return out


def load_test_inputs(offset=0, count=None, data_dir=DATA_DIR):
    """The test images [offset, offset + count) as network input and their labels."""
    images, labels = load("test", data_dir)
    end = images.shape[0] if count is None else min(images.shape[0], offset + count)
    return to_network_input(images[offset:end]), labels[offset:end]

"""Importing TensorFlow the one way edgeq needs it.

TF-MOT 0.8 only works with tf-keras, so ``tf.keras`` must be the legacy Keras
(``TF_USE_LEGACY_KERAS=1``) before TensorFlow is first imported. TensorFlow's C++ and absl log
noise is hidden unless the user asked for ``-v``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

_VERBOSE = False


def set_verbose(verbose: bool) -> None:
    global _VERBOSE
    _VERBOSE = verbose


def is_verbose() -> bool:
    return _VERBOSE


def configure_environment() -> None:
    """Set the environment TensorFlow reads at import time (idempotent)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _VERBOSE else "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    if not _VERBOSE:
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        os.environ.setdefault("GLOG_minloglevel", "3")


def import_tf() -> ModuleType:
    """Return the ``tensorflow`` module with edgeq's environment applied and logs quiet."""
    configure_environment()
    with quiet_native_output():  # CUDA/absl chatter printed by C++ during the first import
        import tensorflow as tf

    if not _VERBOSE:
        tf.get_logger().setLevel(logging.ERROR)
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:  # pragma: no cover
            pass
        warnings.filterwarnings("ignore", module="tensorflow")
        warnings.filterwarnings("ignore", module="tf_keras")
        warnings.filterwarnings("ignore", module="keras")
    return tf


@contextlib.contextmanager
def quiet_native_output(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Silence what C++ code writes to these file descriptors (converter, MLIR quantizer, absl,
    TFLM print there, out of Python's reach) unless ``-v``. Default: stderr only."""
    if _VERBOSE:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def import_tf_keras() -> Any:
    """The tf-keras package (Keras 2), which TF-MOT and ``.h5`` models use."""
    import_tf()
    import tf_keras

    return tf_keras


def import_keras3() -> Any:
    """The Keras 3 package, for ``.keras`` files saved by Keras 3."""
    import_tf()
    import keras

    return keras

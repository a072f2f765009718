"""Datasets (built-ins, ``.npz``/``.npy``, image folders) and the model-specific preparation."""

from edgeq.data.datasets import BUILTINS, Dataset, load_dataset, split_dataset
from edgeq.data.prepare import (
    Normalization,
    RepresentativeDataset,
    fit_to_input,
    prepare_input_list,
    prepare_inputs,
    representative_dataset,
)

__all__ = [
    "BUILTINS",
    "Dataset",
    "Normalization",
    "RepresentativeDataset",
    "fit_to_input",
    "load_dataset",
    "prepare_input_list",
    "prepare_inputs",
    "representative_dataset",
    "split_dataset",
]

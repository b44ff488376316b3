"""valuegrad's neural-net library on top of :mod:`engine`: modules, losses, optimizers, data,
training.

    >>> from nn import MLP
    >>> model = MLP(2, [16, 16, 1], rng=0)
    >>> len(model([0.5, -1.0]))
    1
"""

from nn.data import (
    Dataset,
    Standardizer,
    load_csv,
    load_digits,
    load_iris,
    load_wine,
    make_moons,
    standardize,
    train_test_split,
)
from nn.diagnostics import layer_statistics
from nn.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    log_softmax,
    logsumexp,
    mse_loss,
    softmax,
)
from nn.module import MLP, Layer, Module, Neuron, draw_model
from nn.optim import SGD, Adam, Optimizer
from nn.torch_bridge import adam_to_torch, from_torch, to_torch
from nn.train import History, evaluate, fit

__all__ = [
    "MLP", "SGD", "Adam", "Dataset", "adam_to_torch", "History", "Layer", "Module", "Neuron", "Optimizer",
    "Standardizer", "binary_cross_entropy_with_logits", "cross_entropy", "draw_model", "evaluate",
    "fit", "from_torch", "hinge_loss", "layer_statistics", "load_csv", "load_digits", "load_iris",
    "load_wine", "log_softmax", "logsumexp", "make_moons", "mse_loss", "softmax", "standardize", "to_torch",
    "train_test_split",
]

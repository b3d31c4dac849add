"""skillcall's training side: example files, prompts, datasets, generation, training, export, evaluation.

Front doors: ``load_examples``, ``build_dataset``, ``generate``, ``train``, ``evaluate``; heavy libraries load
inside them.
"""

from .dataset import DatasetOptions, build_dataset
from .evaluate import EvalReport, evaluate
from .examples import ExampleFileError, load_examples
from .generate import GenerateOptions, generate
from .prompts import load_template
from .train import TrainOptions, train

__all__ = [
    "DatasetOptions", "EvalReport", "ExampleFileError", "GenerateOptions", "TrainOptions", "build_dataset",
    "evaluate", "generate", "load_examples", "load_template", "train",
]  # fmt: skip

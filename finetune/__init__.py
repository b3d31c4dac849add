"""skillcall's training side: example files, prompts, datasets, generation, training, export, evaluation.

Front doors: ``load_examples``, ``build_dataset`` (``export_dataset`` for other trainers' formats), ``generate``,
``train``, ``evaluate``; heavy libraries load inside them.
"""

from .dataset import DatasetOptions, build_dataset
from .evaluate import EvalReport, evaluate
from .examples import ExampleFileError, load_examples
from .formats import FormatOptions, export_dataset
from .generate import GenerateOptions, generate
from .prompts import load_template
from .train import TrainOptions, train

__all__ = [
    "DatasetOptions", "EvalReport", "ExampleFileError", "FormatOptions", "GenerateOptions", "TrainOptions",
    "build_dataset", "evaluate", "export_dataset", "generate", "load_examples", "load_template", "train",
]  # fmt: skip

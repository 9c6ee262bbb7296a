"""mnistgan: train and explore the report's DCGAN on MNIST, from Python or the command line.

The API (docs/api.md)::
    import mnistgan
    run = mnistgan.train("out/", recipe="fast", minutes=10)
    images = run.generator().sample(16, seed=1)
    mnistgan.grid(images)

Importing mnistgan does not import TensorFlow; the functions that need it do.
"""

from mnistgan.version import __version__
from mnistgan.animation import Animation, animate
from mnistgan.api import Run, Table, evaluate, grid, open_run, preview_dataset, preview_sheet, train
from mnistgan.config import ModelConfig, RunConfig, TrainConfig
from mnistgan.data import Mnist, load_mnist, preview_images
from mnistgan.epochlog import Reporter
from mnistgan.errors import (
    CheckpointError,
    DataError,
    MnistganError,
    RunError,
    TrainingDiverged,
    TrainingInterrupted,
    UsageError,
)
from mnistgan.evaluation import Evaluation
from mnistgan.imagefolder import Conversion
from mnistgan.images import Sheet
from mnistgan.export import Export, export
from mnistgan.interpolation import Walk, walk
from mnistgan.projection import Projection, project
from mnistgan.sampling import Generator, load_generator, load_noise, save_images

__all__ = [
    "Animation",
    "CheckpointError",
    "Conversion",
    "DataError",
    "Evaluation",
    "Export",
    "Generator",
    "Mnist",
    "MnistganError",
    "ModelConfig",
    "Projection",
    "Run",
    "Reporter",
    "RunConfig",
    "RunError",
    "Sheet",
    "Table",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "UsageError",
    "Walk",
    "__version__",
    "animate",
    "evaluate",
    "export",
    "grid",
    "load_generator",
    "load_mnist",
    "load_noise",
    "open_run",
    "preview_dataset",
    "preview_images",
    "preview_sheet",
    "project",
    "save_images",
    "train",
    "walk",
]

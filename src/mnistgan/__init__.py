"""mnistgan: train and explore the report's DCGAN on MNIST from the command line."""

__version__ = "0.3.2"

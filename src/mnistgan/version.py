"""mnistgan's version: one place, read by the package, the build (pyproject.toml) and config.json."""

__version__ = "0.4.0.dev0"

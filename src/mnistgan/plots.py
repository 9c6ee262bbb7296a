"""The loss-curve picture beside each run (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from mnistgan.files import atomic_path


def save_loss_curves(epochs: list[int], generator: list[float], discriminator: list[float], path: Path) -> Path:
    """Generator and discriminator loss per epoch as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    try:
        ax.plot(epochs, generator, marker="o", markersize=3, label="generator")
        ax.plot(epochs, discriminator, marker="o", markersize=3, label="discriminator")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean loss (sigmoid cross-entropy)")
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) < 12:
            ax.set_xticks(epochs)
        fig.tight_layout()
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)

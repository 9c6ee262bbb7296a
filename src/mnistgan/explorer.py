"""``mnistgan explore``: a local web page over a run, or a folder of runs (the ``explore`` extra).

:class:`Explorer` is what the page shows, as functions of the public API that return files and
text; :func:`explore` lays them out with Gradio and serves them. The page has no logic of its
own beyond layout (what a request may ask, how a picker's words are read, which classes a run
offers: all of it is :class:`Explorer`'s), and reads nothing but the runs it was given: it never takes a run's lock, so
it can watch a run that is still training.
"""

from __future__ import annotations

import dataclasses
import html
import shlex
import shutil
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan import interpolation, project
from mnistgan.api import Run, grid, open_run
from mnistgan.conditioning import Conditioning
from mnistgan.config import number_list
from mnistgan.errors import CheckpointError, MnistganError, RunError, UsageError, arg
from mnistgan.monitoring import best_epoch
from mnistgan.projection import Projection, prepare_image
from mnistgan.runs import epoch_choice
from mnistgan.seeds import MAX_CLASSES

SCALE = 2  # `mnistgan sample`'s default --scale, so the page's grid is the command's bytes
CACHED_GENERATORS = 4
# What one request may ask of the server, whatever the page's widgets allow (a request can be
# made without them): images per grid (per row with "all"), frames between two walk points,
# points of a walk, pixels of a drawing or an uploaded image. A grid of every class, a walk
# whose frames show every class and a projection that searches every class grow with the class
# count: they are bounded in all, so that the page's defaults work for any count (16 images a
# class, 4 seeds and 24 frames, 8 starts) and a request costs what MNIST's ten digits cost at the
# limits, or less (a walk's frames stay in each browser session's state: 10,000 images at scale 4
# are about 125 MB).
MAX_IMAGES, MAX_FRAMES, MAX_POINTS, MAX_PIXELS = 100, 60, 10, 4096 * 4096
MAX_GRID_IMAGES, MAX_WALK_IMAGES, MAX_STARTS = 16 * MAX_CLASSES, 10_000, 80
RANDOM, ALL, BY_NOISE = "random", "all", "by noise"  # the pickers' words beside the classes and clusters
KEPT_FILES = 64  # the page's newest pictures kept on disk; older ones are removed
EXTRA = 'pip install "mnistgan[explore]"'
MAX_UPLOAD = "5mb"  # larger files are refused in the page
# Grids are small; the browser enlarges them without blurring their pixels.
CSS = ("#grid img, #walk-gif img, #walk-frame img, #epoch-grid img, #projection img "
       "{image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain;}")
BUTTONS = ["download", "fullscreen"]


def find_runs(path: Path | str) -> dict[str, Run]:
    """The runs under ``path``, by name: ``path`` itself if it is a run, else the runs in its
    sub-folders. Errors are the CLI's (a missing folder, a folder without runs, a damaged
    config.json), raised before anything is served."""
    path = Path(path)
    if (path / "config.json").is_file() or not path.is_dir():
        return {path.name or str(path): open_run(path)}
    runs = {p.name: open_run(p) for p in sorted(path.iterdir()) if (p / "config.json").is_file()}
    if not runs:
        raise RunError(f"{path} is not an mnistgan run folder (no config.json) and holds none")
    return runs


def _shared_flags(ckpt: str, truncation: float, ema: bool) -> tuple[list[str], list[str]]:
    """The flags of sample and interpolate that the page sets: (before the seeds, after them)."""
    return (["--ckpt", ckpt] if ckpt != "latest" else [],
            (["--truncation", f"{truncation:g}"] if truncation != 1 else []) + ([] if ema else ["--no-ema"]))


def sample_command(run: Path, ckpt: str, n: int, seed: int, truncation: float, ema: bool,
                   digit: str | None = None, cluster: int | str | None = None,
                   out: str = "samples.png", classes: str | None = None) -> str:
    """The ``mnistgan sample`` command that writes the same PNG bytes as :meth:`Explorer.samples`
    (``digit``: one class, as spelled; ``classes``: a row per class, as ``--classes`` takes them)."""
    first, last = _shared_flags(ckpt, truncation, ema)
    words = ["mnistgan", "sample", "--run", str(run), *first, "--seed", str(seed), "-n", str(n), *last]
    if classes is not None:
        words += ["--classes", classes]
    elif digit is not None:
        words += ["--class", str(digit)]
    if cluster is not None:
        words += ["--cluster", str(cluster)]
    return shlex.join([*words, "--out", out])


def walk_command(run: Path, ckpt: str, seeds: list[int], digits: str | None, frames: int,
                 truncation: float, ema: bool, out: str = "walk.gif") -> str:
    """The ``mnistgan interpolate`` command that writes the page's walk (``digits``: the classes, as
    ``--classes`` takes them)."""
    first, last = _shared_flags(ckpt, truncation, ema)
    words = ["mnistgan", "interpolate", "--run", str(run), *first, "--seeds", ",".join(map(str, seeds))]
    if digits:
        words += ["--classes", digits]
    words += ["--frames", str(frames), *last]
    return shlex.join([*words, "--out", out])


def again_command(run: Path, ckpt: str, ema: bool, noise: Path, digit: str | None, out: str = "again.png") -> str:
    """The ``mnistgan sample`` command that draws a projection again from its noise file (named
    as it is beside the page's PNG: the command is run where the file was saved)."""
    first, last = _shared_flags(ckpt, 1.0, ema)
    words = ["mnistgan", "sample", "--run", str(run), *first, "--noise", noise.name, *last]
    return shlex.join([*words, *(["--class", digit] if digit is not None else []), "--out", out])


@dataclass(frozen=True)
class Pickers:
    """What a run offers the page's pickers: its checkpoints, and its classes or clusters by
    name after the pickers' own words (``random``/``all`` as :meth:`Explorer.words` gives them,
    ``by noise``/``all``; a picker whose
    run has none offers only those, and is hidden)."""

    checkpoints: list[str]
    classes: list[str]
    clusters: list[str]
    conditional: bool  # the class picker is shown
    clustered: bool  # the cluster picker is shown


@dataclass(frozen=True)
class Projected:
    """A projection the page shows: the search's result, saved; the class it was found as, by
    name (None without classes); and the command that draws it again from its noise."""

    projection: Projection
    found: str | None
    command: str

    def text(self) -> str:
        """The line under the picture."""
        found = f" as class {self.found}" if self.found is not None else ""
        return (f"projected{found}: RMS difference {self.projection.error:.1f} grey levels. "
                f"`{self.command}` draws it again.")


@dataclass(frozen=True)
class Picture:
    """A file the page shows, and the command that makes the same file."""

    path: Path
    command: str


class Explorer:
    """What the page shows of some runs: grids, walks, training curves, projections.

    Files are written to a folder of its own (removed by :meth:`close`); generators are loaded
    through ``Run.generator`` and kept for the last few checkpoints asked for.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.runs = find_runs(self.path)
        self.folder = Path(tempfile.mkdtemp(prefix="mnistgan-explore-"))
        self._generators: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self._count = 0
        self._folders: deque[Path] = deque()  # the pictures' folders, oldest first

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # What a run offers

    def run(self, name: str) -> Run:
        """The run called ``name`` (only the runs found at the start can be named)."""
        if name not in self.runs:
            raise UsageError(f"no run called {name!r} here")
        return open_run(self.runs[name].path)  # read again: a run in training moves on

    def checkpoints(self, name: str) -> list[str]:
        """The checkpoints to choose from: latest, best (runs with scores), each epoch's."""
        run = self.run(name)
        epochs = [str(e) for e in reversed(run.checkpoint_epochs())]
        return ["latest", *(["best"] if run.best_epoch is not None else []), *epochs]

    def conditioning(self, name: str) -> Conditioning:
        """How the run's networks are conditioned: which picker the page shows."""
        return self.run(name).config.model.conditioning

    def classes(self, name: str) -> list[str]:
        """A conditional run's classes to choose from, by name (numbers where the data has none)."""
        labels = self.conditioning(name)
        return labels.choices() if labels.classes else []

    def words(self, name: str) -> tuple[str, str]:
        """The class picker's own words, for a class drawn from the seed and for a row of every
        class: 'random' and 'all', in brackets where a class has that name (a class's name always
        picks that class, as on the command line)."""
        labels = self.conditioning(name)

        def free(word: str) -> str:
            while labels.classes and labels.names_class(word):
                word = f"({word})"
            return word

        return free(RANDOM), free(ALL)

    def pickers(self, name: str) -> Pickers:
        labels = self.conditioning(name)
        clusters = labels.choices() if labels.clusters else []
        return Pickers(self.checkpoints(name), [*self.words(name), *self.classes(name)], [BY_NOISE, ALL, *clusters],
                       labels.classes, labels.clusters)

    def generator(self, name: str, ckpt: str, ema: bool):
        """``Run.generator(ckpt, ema)``, cached; ``latest`` and ``best`` are read again once
        training has saved a checkpoint since. ``ckpt`` must be one of :meth:`checkpoints`."""
        run = self.run(name)
        if ckpt not in self.checkpoints(name):
            raise UsageError(f"{name} has no checkpoint {ckpt!r} to choose")
        epoch = epoch_choice(ckpt)
        saved = [] if epoch is not None else [f.stat().st_mtime_ns for f in (run.layout.checkpoints,
                                           run.layout.interrupted, run.layout.best) if f.is_dir()]
        key = (name, ckpt, ema, *saved)
        with self._lock:
            if key in self._generators:
                self._generators.move_to_end(key)
                return self._generators[key]
        g = run.generator(ckpt if epoch is None else epoch, ema=None if ema else False).load()
        with self._lock:
            self._generators[key] = g
            while len(self._generators) > CACHED_GENERATORS:
                self._generators.popitem(last=False)
        return g

    def _checkpoint_of(self, name: str, ckpt: str, generator) -> str:
        """``ckpt`` as a command must name it to mean the same weights later: ``latest`` of a run
        still in training moves on, so it is written as the epoch (or mid-epoch path) it was."""
        if ckpt != "latest":
            return ckpt
        info = generator.checkpoint
        return str(info.epoch) if not info.step else info.prefix  # an epoch's checkpoint, or a mid-epoch save

    def _file(self, name: str) -> Path:
        """A new path for a picture; the oldest pictures go once there are KEPT_FILES (the page
        shows its own copies), so a page left open for days does not fill the disk."""
        with self._lock:
            self._count += 1
            folder = self.folder / str(self._count)
            self._folders.append(folder)
            old = [self._folders.popleft() for _ in range(len(self._folders) - KEPT_FILES)]
        folder.mkdir()
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return folder / name

    # The page's parts

    def samples(self, name: str, ckpt: str = "latest", n: int = 16, seed: int = 0, truncation: float = 1.0,
                ema: bool = True, digit: int | str | None = None, cluster: int | str | None = None) -> Picture:
        """The grid ``mnistgan sample`` draws with these settings, as a PNG, and that command.
        ``digit``: a class by name or number, the picker's word for a row of ``n`` per class
        (``"all"``; see :meth:`words`), or None or its word for a class drawn from the seed
        (``"random"``); ``cluster`` likewise (None or ``"by noise"``, ``"all"``). Either is ignored on a
        run that has no classes or clusters (the page's picker for it is hidden)."""
        labels = self.conditioning(name)
        anyone, every = self.words(name)
        all_classes, all_clusters = labels.classes and digit == every, labels.clusters and cluster == ALL
        # The pickers offer names: a class named '10' is that class, not class 10 (Conditioning.label).
        digit = None if not labels.classes or digit in (None, anyone, every) else labels.label(digit, "class")
        cluster = None if not labels.clusters or cluster in (None, BY_NOISE, ALL) else labels.label(cluster, "cluster")
        rows = labels.count if all_classes or all_clusters else 1
        _bounded(n, "images" + (" a row" if rows > 1 else ""), 1, min(MAX_IMAGES, max(1, MAX_GRID_IMAGES // rows)))
        _bounded(seed, "the seed", 0, 2**32 - 1)
        sheet = self.generator(name, ckpt, ema).sample_sheet(n, seed, digit, truncation, cluster,
                                                             all_classes=all_classes, all_clusters=all_clusters)
        path = self._file("samples.png")
        grid(*sheet, scale=SCALE).save(path, format="PNG")
        # Every class as --classes reads it: 'all', or each by number where a class has that name.
        classes = None if not all_classes else ALL if not labels.names_class(ALL) else \
            labels.spelled_list(range(labels.count))
        one = None if digit is None else labels.spelled(digit)
        clusters = ALL if all_clusters else None if cluster is None else labels.spelled(cluster)
        return Picture(path, sample_command(self.runs[name].path, ckpt, n, seed, truncation, ema, one, clusters,
                                            classes=classes))

    def compare(self, names: list[str], n: int = 16, seed: int = 0, truncation: float = 1.0) -> list[tuple[Path, str]]:
        """Each run's latest grid at the same seed, with the run's name."""
        return [(self.samples(name, "latest", n, seed, truncation).path, name) for name in names]

    def walk(self, name: str, ckpt: str = "latest", seeds: str = "0,1,2,3", digits: str = "", frames: int = 24,
             truncation: float = 1.0, ema: bool = True) -> tuple[Picture, np.ndarray]:
        """A latent walk as a looping GIF (``mnistgan interpolate``) and its frames. ``digits``:
        classes to walk between, by number or name ('3,8', 'cat,bird'); ignored on a run
        without classes (the page hides the box)."""

        labels = self.conditioning(name)
        seed_list = number_list(seeds, "seeds", 0, 2**32 - 1)
        digit_list = labels.labels(digits, "classes") if labels.classes and digits.strip() else None
        _bounded(len(seed_list), "seeds to walk through", 1, MAX_POINTS)
        _bounded(len(digit_list or []), "classes to walk between", 0, MAX_POINTS)
        _bounded(frames, "frames", 2, MAX_FRAMES)
        # A walk through seeds shows every class in each frame: its frames are bounded by the images.
        points, tiles = (len(digit_list), 1) if digit_list else (len(seed_list), labels.count if labels.classes else 1)
        _bounded(frames * points * tiles, "images in the walk (frames times points times classes)", 1, MAX_WALK_IMAGES)
        result = interpolation.walk(self.generator(name, ckpt, ema), seed_list, frames, digits=digit_list,
                                    truncation=truncation).save(self._file("walk.gif"))
        named = None if digit_list is None else labels.spelled_list(digit_list)
        command = walk_command(self.runs[name].path, ckpt, seed_list, named, frames, truncation, ema)
        return Picture(result.path, command), result.frames

    def training(self, name: str) -> dict:
        """The run's progress: losses per chunk of steps (``losses``, ``epoch`` the progress in
        epochs, so that a run of one epoch draws a curve; per epoch for runs written before
        losses.csv), scores per epoch, the epochs that have a grid, a summary."""
        run = self.run(name)
        metrics, scores = run.metrics(), run.evaluations()
        chunks = [{**r, "epoch": r["epochs"]} for r in run.losses()]
        # Before losses.csv began (a run from before it, resumed): the epochs' own means.
        losses = [m for m in metrics if not chunks or m["epoch"] < chunks[0]["epoch"]] + chunks
        done, total = run.epochs_done, run.config.train.epochs
        summary = f"{done} of {total} epochs"
        stop = run.stop()
        if stop is not None:  # as the stop line says it
            summary += f", stopped at step {stop['step']}/{stop['steps']} of epoch {stop['epoch']} by {stop['reason']}"
        if metrics:
            last = metrics[-1]
            summary += (f"; epoch {last['epoch']}: {last['seconds']:.0f} s, "
                        f"{last['images_per_second']:.0f} images/s")
        else:
            summary += "; no epoch has finished yet: its losses and grid appear here when one has"
        best = best_epoch(scores)  # NaN rows (a diverged epoch) are passed over
        if best is not None:
            fid = next(r["fid"] for r in scores if r["epoch"] == best)
            summary += f"; lowest FID {fid:.1f} (epoch {best})"
        elif run.config.train.eval_every is not None:
            summary += f"; no scores yet (one every {run.config.train.eval_every} epochs)"
        return {"metrics": metrics, "losses": losses, "scores": scores, "grids": run.grid_epochs(), "summary": summary}

    def epoch_grid(self, name: str, epoch: int) -> Path:
        """The run's fixed-noise grid after ``epoch``, as a copy the page may serve."""
        path = self._file(f"epoch_{int(epoch):04d}.png")
        self.run(name).epoch_grid(int(epoch)).save(path, format="PNG")
        return path

    def project(self, name: str, image: np.ndarray | Path | str, ckpt: str = "latest", ema: bool = True,
                digit: int | str | None = None, steps: int = 300, starts: int = 8):
        """``mnistgan project`` of a drawn (array) or uploaded (file) digit: the Projection,
        saved as a side-by-side PNG with its noise (.npy) beside it, the class it was found as
        and the command that draws it again. ``digit``: the class to search, by number or name; None,
        or the picker's words (:meth:`words`) search every class (``steps`` and ``starts`` as for
        :func:`mnistgan.project`; the page uses their defaults)."""

        labels = self.conditioning(name)
        digit = None if not labels.classes or digit in (None, *self.words(name)) else labels.label(digit, "class")
        if isinstance(image, np.ndarray):
            image = drawing_to_grey(image)
        else:
            image = prepare_image(image, MAX_PIXELS)
        generator = self.generator(name, ckpt, ema)
        if labels.classes and digit is None:  # every class is searched: fewer starts each on many classes
            starts = min(starts, max(1, MAX_STARTS // labels.count))
        result = project(generator, image, digit=digit, steps=steps, starts=starts).save(self._file("projection.png"))
        found = None if result.digit is None else labels.name(result.digit)
        spelled = None if result.digit is None else labels.spelled(result.digit)
        again = again_command(self.runs[name].path, self._checkpoint_of(name, ckpt, generator), ema,
                              result.path.with_suffix(".npy"), spelled)
        return Projected(result, found, again)


def _bounded(value: int, what: str, lo: int, hi: int) -> None:
    """Refuse a request the page's widgets would not make."""
    if not lo <= value <= hi:
        raise UsageError(f"{what}: between {lo} and {hi}, not {value}")


def epoch_strip(grids: list[int]) -> tuple[int, int, bool]:
    """The epoch grid slider's (minimum, maximum, visible) for the epochs that have a grid. A
    slider needs two different ends: with fewer than two grids it is hidden (the one grid is
    shown without it)."""
    if len(grids) >= 2:
        return grids[0], grids[-1], True
    return 0, max([1, *grids]), False


def drawing_to_grey(pixels: np.ndarray) -> np.ndarray:
    """A drawing (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA with unpainted pixels transparent,
    as grey levels on white paper. Its shape and size are checked before a copy is made."""
    shape = np.shape(pixels)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (3, 4)):
        raise UsageError(f"a drawing must be a greyscale or colour image, not an array of shape {shape}")
    _bounded(int(np.prod(shape[:2])), "pixels of the drawing", 1, MAX_PIXELS)
    x = np.asarray(pixels, np.float64)
    if x.ndim == 2:
        return x
    grey = x[..., :3].mean(axis=2)
    if x.shape[2] == 4:  # transparent = white paper
        alpha = x[..., 3] / 255.0
        grey = grey * alpha + 255.0 * (1 - alpha)
    return grey


# The page (Gradio)


GENERIC_ERROR = "something went wrong; the terminal running mnistgan explore shows what"


def _shown(call: Callable) -> Callable:
    """``call``, with mnistgan's own errors shown in the page as their one line; anything else
    shows a short generic line there and keeps its traceback in the terminal."""
    import functools
    import traceback

    import gradio as gr

    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except MnistganError as exc:
            raise gr.Error(html.escape(exc.render()), print_exception=False) from None
        except Exception:
            traceback.print_exc()
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None

    return wrapper


def _table(rows: list[dict], columns: dict[str, str], x: str = "epoch"):
    """Rows of a run's CSV as a long table for a line plot: x, value, series."""
    import pandas as pd

    long = [{x: r[x], "value": r[key], "series": label} for r in rows for key, label in columns.items()
            if r.get(key) is not None]
    return pd.DataFrame(long, columns=[x, "value", "series"])


def build_page(explorer: Explorer, refresh_seconds: float = 5.0):
    """The page as a Gradio Blocks app (not yet served)."""
    import gradio as gr

    names = list(explorer.runs)
    first = names[0]

    def pickers(name):
        offered = explorer.pickers(name)
        return (
            gr.update(choices=offered.checkpoints, value="latest"),
            gr.update(visible=offered.conditional, value=offered.classes[0], choices=offered.classes),
            gr.update(visible=offered.clustered, value=BY_NOISE, choices=offered.clusters),
            gr.update(visible=offered.conditional),
        )

    def draw(name, ckpt, n, seed, truncation, ema, digit, cluster):
        try:
            picture = explorer.samples(name, ckpt, int(n), int(seed), round(float(truncation), 2), bool(ema), digit,
                                       cluster)
        except CheckpointError as exc:  # no checkpoint yet (or a damaged one): said where the grid would be
            return None, exc.render()
        return str(picture.path), picture.command

    def walk(name, ckpt, seeds, digits, frames, truncation, ema):
        picture, frames_ = explorer.walk(name, ckpt, seeds, digits, int(frames), round(float(truncation), 2),
                                         bool(ema))
        return (str(picture.path), picture.command, frames_,
                gr.update(maximum=len(frames_) - 1, value=0), frames_[0])

    def curves(name, strip_value, follow):
        """The training tab: summary, loss and FID curves, and the epoch strip, which moves to a
        new epoch's grid when ``follow`` (a new run shown) or when it was at the newest one."""
        t = explorer.training(name)
        grids = t["grids"]
        losses = _table(t["losses"], {"generator_loss": "generator", "discriminator_loss": "discriminator"})
        fid = _table(t["scores"], {"fid": "FID"})
        at_end = follow or strip_value is None or not grids or int(strip_value) >= grids[-1] - 1
        low, high, visible = epoch_strip(grids)
        strip = gr.update(minimum=low, maximum=high, visible=visible, interactive=visible,
                          **({"value": grids[-1]} if grids and at_end else {}))
        return (t["summary"], gr.update(value=losses, visible=bool(t["losses"])),
                gr.update(value=fid, visible=bool(t["scores"])), strip)

    def training(name):
        return curves(name, None, True)

    def refresh(name, strip_value):
        """Timer tick: what a run in training has added (checkpoints, curves, grids)."""
        return gr.update(choices=explorer.checkpoints(name)), *curves(name, strip_value, False)

    def project(name, ckpt, ema, digit, drawing, upload):
        if upload is not None:
            image = upload
        elif drawing is not None and drawing.get("composite") is not None:
            image = np.asarray(drawing["composite"])
        else:
            raise UsageError("draw a digit or upload an image first")
        result = explorer.project(name, image, ckpt, bool(ema), digit)  # random or all: every class
        path = result.projection.path
        return str(path), str(path.with_suffix(".npy")), result.text()

    offered = explorer.pickers(first)
    # Gradio's copies of the pictures: those older than an hour go, and all of them at the next start.
    with gr.Blocks(title="mnistgan explore", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"## mnistgan explore: {html.escape(str(explorer.path))}")
        with gr.Row():
            run = gr.Dropdown(names, value=first, label="run", visible=len(names) > 1, elem_id="run")
            ckpt = gr.Dropdown(offered.checkpoints, value="latest", label="checkpoint", elem_id="ckpt")
            ema = gr.Checkbox(True, label="averaged generator (--ema)", elem_id="ema")
        with gr.Tab("Samples"):
            with gr.Row():
                with gr.Column(scale=1):
                    seed = gr.Slider(0, 9999, 0, step=1, label="seed", elem_id="seed")
                    truncation = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="truncation (psi)",
                                           elem_id="truncation")
                    n = gr.Slider(1, 100, 16, step=1, label="images (per row with 'all')", elem_id="n")
                    digit = gr.Dropdown(offered.classes, value=offered.classes[0], label="class",
                                        visible=offered.conditional,
                                        elem_id="digit")
                    cluster = gr.Dropdown(offered.clusters, value=BY_NOISE, label="cluster",
                                          visible=offered.clustered, elem_id="cluster")
                with gr.Column(scale=2):
                    picture = gr.Image(label="samples", type="filepath", format="png", elem_id="grid",
                                       interactive=False, height=480, buttons=BUTTONS)
                    command = gr.Textbox(label="the same grid from the command line", elem_id="command",
                                         interactive=False, buttons=["copy"])
        with gr.Tab("Latent walk"):
            with gr.Row():
                with gr.Column(scale=1):
                    seeds = gr.Textbox("0,1,2,3", label="seeds to walk through", elem_id="walk-seeds")
                    digits = gr.Textbox("", label="or classes to walk between (conditional runs), e.g. 3,8",
                                        visible=offered.conditional, elem_id="walk-digits")
                    frames = gr.Slider(2, 60, 24, step=1, label="frames from one to the next")
                    walk_truncation = gr.Slider(0.05, 1.0, 1.0, step=0.05, label="truncation (psi)")
                    walk_button = gr.Button("walk", variant="primary", elem_id="walk")
                with gr.Column(scale=2):
                    gif = gr.Image(label="the walk", type="filepath", format="gif", interactive=False,
                                   elem_id="walk-gif", height=240, buttons=BUTTONS)
                    step = gr.Slider(0, 1, 0, step=1, label="step through it", elem_id="walk-step")
                    frame = gr.Image(label="frame", format="png", interactive=False, elem_id="walk-frame", height=240,
                                     buttons=BUTTONS)
                    walk_cmd = gr.Textbox(label="the same walk from the command line", interactive=False,
                                          buttons=["copy"])
            walk_frames = gr.State(None)
        with gr.Tab("Training"):
            summary = gr.Markdown(elem_id="summary")
            with gr.Row():
                losses = gr.LinePlot(x="epoch", y="value", color="series", title="losses", elem_id="losses")
                fid = gr.LinePlot(x="epoch", y="value", color="series", title="FID (lower is better)")
            strip = gr.Slider(0, 1, 0, step=1, label="epoch grid", elem_id="strip")
            epoch_picture = gr.Image(label="fixed-noise grid", type="filepath", format="png", interactive=False,
                                     elem_id="epoch-grid", height=400, buttons=BUTTONS)
        with gr.Tab("Project"):
            gr.Markdown("Draw a digit, or upload an image of one: the generator's closest image, and its noise. "
                        "On a conditional run, the class picked under Samples is the one searched (every class "
                        "when it is random or all).")
            with gr.Row():
                sketch = gr.Sketchpad(label="draw (pick the brush on the left)", type="numpy", image_mode="RGBA",
                                      canvas_size=(280, 280), elem_id="sketch",
                                      brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
                upload = gr.File(label="or upload an image", file_types=["image"], type="filepath")
            project_button = gr.Button("project", variant="primary", elem_id="project")
            with gr.Row():
                side_by_side = gr.Image(label="target and projection", type="filepath", format="png",
                                        interactive=False, elem_id="projection", height=240, buttons=BUTTONS)
                noise_file = gr.File(label="its noise, for `mnistgan sample --noise`", interactive=False)
            found = gr.Markdown(elem_id="found")
        if len(names) > 1:
            with gr.Tab("Compare runs"):
                chosen = gr.CheckboxGroup(names, value=names[:4], label="runs")
                compare_seed = gr.Slider(0, 9999, 0, step=1, label="seed")
                compare_button = gr.Button("compare", variant="primary")
                gallery = gr.Gallery(label="latest checkpoint of each run", columns=min(4, len(names)), format="png")
            compare_button.click(_shown(lambda c, s: explorer.compare(c, 16, int(s))), [chosen, compare_seed],
                                 gallery)

        sample_inputs = [run, ckpt, n, seed, truncation, ema, digit, cluster]
        for control in (ckpt, seed, truncation, n, ema, digit, cluster):
            control.change(_shown(draw), sample_inputs, [picture, command], trigger_mode="always_last")
        run.change(_shown(pickers), run, [ckpt, digit, cluster, digits]).then(
            _shown(draw), sample_inputs, [picture, command]).then(
            _shown(training), run, [summary, losses, fid, strip])
        walk_button.click(_shown(walk), [run, ckpt, seeds, digits, frames, walk_truncation, ema],
                          [gif, walk_cmd, walk_frames, step, frame])
        step.change(lambda f, i: None if f is None else f[int(i)], [walk_frames, step], frame)
        strip.change(_shown(lambda name, e: str(explorer.epoch_grid(name, int(e))) if e else None), [run, strip],
                     epoch_picture, trigger_mode="always_last")
        project_button.click(_shown(project), [run, ckpt, ema, digit, sketch, upload],
                             [side_by_side, noise_file, found])
        timer = gr.Timer(refresh_seconds)
        timer.tick(_shown(refresh), [run, strip], [ckpt, summary, losses, fid, strip])
        page.load(_shown(draw), sample_inputs, [picture, command]).then(
            _shown(training), run, [summary, losses, fid, strip])
    return page


@dataclass
class Page:
    """A served page: its address; :meth:`wait` blocks until Ctrl-C, :meth:`close` stops it."""

    url: str
    runs: list[str]
    _page: object = dataclasses.field(repr=False)
    _explorer: Explorer = dataclasses.field(repr=False)
    _signals: dict = dataclasses.field(default_factory=dict, repr=False)  # the handlers to put back
    _waiting: bool = dataclasses.field(default=False, repr=False)
    _stop_asked: bool = dataclasses.field(default=False, repr=False)

    def wait(self) -> None:
        """Serve until Ctrl-C or SIGTERM (see :func:`explore`), then stop and remove the page's files."""
        import time

        self._waiting = True
        try:
            while not self._stop_asked:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def _stop(self, signum, frame) -> None:
        """The handler of Ctrl-C and SIGTERM: ends :meth:`wait`, or the next one if none runs yet."""
        self._stop_asked = True
        if self._waiting:
            raise KeyboardInterrupt

    def close(self) -> None:
        import signal

        for sig, handler in self._signals.items():
            signal.signal(sig, handler)
        self._signals = {}
        self._page.close()
        self._explorer.close()


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host``:``port`` now."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # an unknown host: Gradio says so
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def explore(path: Path | str = "out", host: str = "127.0.0.1", port: int | None = None,
            open_browser: bool = False) -> Page:
    """Serve the page for the run (or folder of runs) at ``path`` on ``host``:``port`` (a free
    port from 7860 up when None); returns once it is up. Needs the ``explore`` extra."""
    explorer = Explorer(path)  # the CLI's errors for a bad folder, before Gradio is imported
    try:
        import gradio  # noqa: F401
    except ImportError:
        explorer.close()
        raise MnistganError(f"explore needs Gradio, which the core install leaves out: {EXTRA}") from None
    if port is not None and not port_free(host, port):  # Gradio would try for half a minute, then give advice
        explorer.close()
        raise UsageError(f"port {port} on {host} is in use; give another {arg('port')}, or none for the first free one")
    try:
        explorer.generator(next(iter(explorer.runs)), "latest", True)  # the first picture comes fast
    except MnistganError:
        pass  # e.g. no checkpoint yet: the page says so
    page = build_page(explorer)
    page.queue(default_concurrency_limit=1)
    _, url, _ = page.launch(server_name=host, server_port=port, inbrowser=open_browser, prevent_thread_lock=True,
                            quiet=True, show_error=True, max_file_size=MAX_UPLOAD, footer_links=[], css=CSS,
                            allowed_paths=[], share=False)
    served = Page(url=url, runs=list(explorer.runs), _page=page, _explorer=explorer)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and SIGTERM end Page.wait, set before the address is known to anyone: a process
        # started where SIGINT is ignored (a shell's background job, a test runner's worker)
        # would otherwise not stop on Ctrl-C.
        import signal

        served._signals = {sig: signal.signal(sig, served._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    return served

"""The command line: each command parses, validates, calls the core once and reports.

No TensorFlow is imported here; the core modules import it only in the commands that train or
sample, so ``--help`` and ``animate`` stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

import mnistgan
from mnistgan import caches, console, files
from mnistgan.config import (FOLDER_SETTINGS, RECIPES, ModelConfig, Positive, TrainConfig, annotation, choices,
                             number_list, options, problem, python_type)
from mnistgan.errors import MnistganError, option
from mnistgan.explorer import explore
from mnistgan.files import check_output_file
from mnistgan.projection import check_png_path, noise_path
from mnistgan.sampling import check_sample_output, truncation_problem
from mnistgan.version import __version__


class _Refused(typer.BadParameter):
    """A value an option's callback refuses, with the library's own words (no "Invalid value")."""

    def format_message(self) -> str:
        return self.message


class _Commands(TyperGroup):
    """mnistgan's commands, each error of which is one line on stderr and an exit code: typer's
    usage errors (its usage line and help hint become a hint at the end of the line), mnistgan's
    own errors (naming the options) and I/O errors. Anything else is a bug and keeps its traceback.
    """

    def make_context(self, *args, **kwargs):  # the top level's own options: mnistgan --bogus
        with self._one_line(None):
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # the command's name, its options and what the command refuses
        with self._one_line(ctx):
            return super().invoke(ctx)

    @contextlib.contextmanager
    def _one_line(self, ctx):
        def command():  # the command being run, once the group has found it
            return self.commands.get(ctx.invoked_subcommand) if ctx is not None and ctx.invoked_subcommand else None

        def where() -> str:  # the help to read, at the end of a usage error
            return f"(see '{ctx.command_path} {ctx.invoked_subcommand} -h')" if command() else "(see 'mnistgan -h')"

        try:
            yield
        except typer.TyperException as exc:  # the usage errors of typer's parser, and _Refused
            if not hasattr(exc, "format_message") or type(exc).show is not typer.BadParameter.show:
                raise  # e.g. no arguments at all: typer shows the help
            hint = f"(see '{exc.ctx.command_path} -h')" if getattr(exc, "ctx", None) else where()
            message = _in_our_words(exc) or _named_plainly(exc) or exc.format_message().rstrip(".")
            raise _fail(f"{message} {hint}", exc.exit_code) from None
        except MnistganError as exc:
            if _debug["on"]:
                raise
            message = exc.render(self._option_names(command()))
            raise _fail(f"{message} {where()}" if exc.exit_code == 2 else message, exc.exit_code) from None
        except OSError as exc:
            if _debug["on"]:
                raise
            place = f": {exc.filename}" if exc.filename else ""
            raise _fail(f"{exc.strerror or exc}{place}", 1) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    def _option_names(self, command) -> Callable[[str], str]:
        """How the command line writes the arguments the core's errors name: as ``command``'s
        options first, then the other commands' (a sample error may name train's --conditional).
        ``no_x`` is the off switch of flag ``x``."""
        params = [p for c in self.commands.values() for p in c.params]
        names = {p.name: p for p in [*params, *(command.params if command else ())] if p.opts}  # the command's win

        def name(argument: str) -> str:
            param = names.get(argument)
            if param is not None:
                return param.opts[0]
            param = names.get(argument[3:]) if argument.startswith("no_") else None
            if param is not None and param.secondary_opts:
                return param.secondary_opts[0]
            return option(argument)

        return name


def _in_our_words(exc: typer.TyperException) -> str | None:
    """A value typer's parser refused through pydantic (a whole number that is not one, one out
    of range), said as mnistgan says it: '--frames must be a whole number from 2 to 500, not
    '1''. None for typer's other usage errors, which are its own words already."""
    param, cause = getattr(exc, "param", None), exc.__cause__
    if param is None or not hasattr(cause, "errors") or not cause.errors():
        return None
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    kind = {int: "a whole number", float: "a number"}.get(annotation, "a valid value")
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    bounds = (f" from {low:g} to {high:g}" if low is not None and high is not None else
              f" of at least {low:g}" if low is not None else f" of at most {high:g}" if high is not None else "")
    return f"{_flag(param)} must be {kind}{bounds}, not {cause.errors()[0].get('input')!r}"


def _named_plainly(exc: typer.TyperException) -> str | None:
    """A value typer's parser refused (a path that does not exist, say), without its "Invalid
    value for '--samples':" preamble: '--samples: path 's.npy' does not exist'. None for other errors."""
    param = getattr(exc, "param", None)
    if type(exc) is not typer.BadParameter or param is None or not getattr(param, "opts", None):
        return None
    argument = param.param_type_name == "argument"
    name = (getattr(param, "metavar", None) or param.name.upper()) if argument else _flag(param)  # FOLDER, --data
    return f"{name}: {exc.message.rstrip('.')}"


def _flag(param) -> str:
    """How errors name an option: its long form (--num, not -n)."""
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


app = typer.Typer(
    cls=_Commands,
    name="mnistgan",
    help="Train and explore the classic TensorFlow DCGAN on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and errors, no boxes
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = {"on": False}  # set by the app callback before any command runs


def _fail(message: str, code: int) -> typer.Exit:
    console.error(message)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.result(f"mnistgan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks (also MNISTGAN_DEBUG=1).")
    ] = False,
) -> None:
    """Train and explore the classic TensorFlow DCGAN on MNIST."""
    # Set on every invocation, so one --debug call does not leak into the next in one process.
    _debug["on"] = debug or os.environ.get("MNISTGAN_DEBUG") == "1"


def _checked(check: Callable[[typing.Any], str | None]) -> typing.Callable:
    """A Typer callback from a library check (what is wrong with a value, or None): a bad value is a
    usage error naming the option."""

    def callback(param: typer.CallbackParam, value):
        wrong = None if value is None else check(value)
        if wrong:  # said as _in_our_words says typer's own refusals: '--beta1 must be ..., not 2.0'
            raise _Refused(f"{_flag(param)} {wrong}, not {value}")
        return value

    return callback


def _output(check) -> typing.Callable:
    """A Typer callback from a library output check: an output that cannot be written is refused
    before any work is done (the library checks it again when it writes)."""

    def callback(value):
        if value is not None:
            try:
                check(value)
            except MnistganError as exc:
                raise _Refused(exc.render(option)) from None
        return value

    return callback


def _default_text(name: str, default) -> str:
    """' Default: 256; fast: 32.': the field's default and what each recipe sets instead."""

    def show(v):
        return ("on" if v else "off") if isinstance(v, bool) else str(v)

    others = [f"{recipe}: {show(values[name])}" for recipe, values in RECIPES.items() if name in values]
    if default is None and not others:
        return ""  # the help says what happens without the option
    return f" Default: {'none' if default is None else show(default)}" + "".join(f"; {o}" for o in others) + "."


def config_parameters(only: tuple[str, ...] | None = None) -> list[inspect.Parameter]:
    """A keyword parameter, None by default, for each config field a user may set (config.py),
    or for those named in ``only``."""

    params = []
    for cls in (ModelConfig, TrainConfig):
        for name, opt, default in options(cls):
            if not opt.cli or (only is not None and name not in only):
                continue
            kind, listed = python_type(annotation(cls, name)), choices(annotation(cls, name))
            flag = "--" + (opt.flag or name.replace("_", "-"))
            decl = f"{flag}/--no-{flag[2:]}" if kind is bool else flag
            info = typer.Option(
                decl,
                help=opt.help + _default_text(name, default),
                callback=None if kind is bool else _checked(functools.partial(problem, annotation(cls, name))),
                metavar=f"[{'|'.join(listed)}]" if listed else None,
                show_default=False,
            )
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[Optional[kind], info]))
    return params


def with_config_options(command=None, *, only: tuple[str, ...] | None = None):
    """Replace ``command``'s ``**settings`` by one option per config field (see config.py), or
    per field named in ``only``."""
    if command is None:
        return functools.partial(with_config_options, only=only)
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*own, *config_parameters(only)])
    return command


def _data_option(first: str = "") -> typing.Any:
    """--data, whose default starts with ``first`` (commands on a run look at the run's data first)."""
    return Annotated[Optional[Path], typer.Option(
        "--data", exists=True, show_default=False, help="mnist.npz (Keras layout; or another set in it), a folder "
        "of the four IDX files, or a folder of images (docs/own-images.md). "
        f"Default: {first}$MNISTGAN_DATA, else Keras's download cache.")]


DataOpt = _data_option()
RunDataOpt = _data_option("the data the run was trained on, where it still is, else ")
TrainDataOpt = _data_option("with --resume, the data the run was trained on, where it still is; else ")
DEFAULT_PREVIEW = Path("out/dataset_preview.png")
RunOpt = Annotated[
    Path, typer.Option("--run", file_okay=False, help="Run folder written by `mnistgan train` (not needed with "
                       "a --ckpt path: a checkpoint carries its run's settings).")
]
ScaleOpt = Annotated[int, typer.Option("--scale", min=1, max=16, help="Enlarge the PNG by this integer factor.")]
CkptOpt = Annotated[str, typer.Option("--ckpt", help="latest, best (runs trained with --eval-every), an epoch "
                                      "number, or a checkpoint path.")]
TruncationOpt = Annotated[
    float,
    typer.Option("--truncation", callback=_checked(truncation_problem), metavar="PSI",
                 help="Draw the noise closer to its mean: psi times standard normal noise, 0 < psi <= 1. "
                 "Cleaner, more typical digits, less variety; 1 = none."),
]


def ClassOpt(what: str) -> typing.Any:  # noqa: N802 (an option's declaration, like typer.Option)
    """--class (--digit): a conditional run's class, by number or by name."""
    return typer.Option("--class", "--digit", metavar="CLASS", show_default=False,
                        help=f"Conditional runs: {what}. By name (cat), as the data names it, or by number (7); a "
                             "class's name wins where it is also a number (folders 1/, 3/, 7/: 7 is folder 7/).")


EmaOpt = Annotated[
    Optional[bool],
    typer.Option("--ema/--no-ema", help="Draw from the averaged generator (--ema) or the trained one (--no-ema). "
                 "Default: the averaged one when the checkpoint has it.", show_default=False),
]


def _images_out(default: Path | None) -> typing.Callable:
    """--out of a PNG grid or .npy array (checked before any work; a default folder is ours to create)."""
    return _output(lambda out: out == default or check_sample_output(out))


@app.command("preview-dataset")
@with_config_options(only=FOLDER_SETTINGS)
def preview_dataset_command(
    out: Annotated[Path, typer.Option("--out", help="PNG to write.", callback=_images_out(DEFAULT_PREVIEW))
                   ] = DEFAULT_PREVIEW,
    data: DataOpt = None,
    scale: ScaleOpt = 1,
    **folder_settings: typing.Any,
) -> None:
    """Save the report's 10x20 grid: row d shows the first 20 training images of digit d (a row
    per class for other data; data without labels: its first 200 images).

    \b
    Example:
      mnistgan preview-dataset --data mnist.npz --scale 2
      mnistgan preview-dataset --data my_images/ --invert --center
    """
    sheet = mnistgan.preview_sheet(data, console.info, **folder_settings)  # out/ is created once the data has loaded
    console.result(str(mnistgan.save_images(sheet.images, out, scale, rows=sheet.rows, cols=sheet.cols,
                                            make_folder=out == DEFAULT_PREVIEW)))


@app.command("train")
@with_config_options
def train_command(
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("out"),
    data: TrainDataOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run in --out.")] = False,
    minutes: Annotated[
        Optional[float],
        typer.Option("--minutes", callback=_checked(functools.partial(problem, Positive)), help="Stop after this many minutes of training "
                     "(a checkpoint and grid are saved; --resume continues). With --epochs: whichever comes first.",
                     show_default=False),
    ] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Require a GPU (an error if TensorFlow sees none).")] = False,
    switch_data: Annotated[bool, typer.Option("--switch-data", help="With --resume: continue on data whose content "
                                              "differs from the run's (a resume checks the content, not the path).")
                           ] = False,
    mixed_precision: Annotated[
        Optional[bool],
        typer.Option("--mixed-precision/--no-mixed-precision",
                     help="float16 (with --gpu) or bfloat16 (CPU) compute; logits, losses and the averaged generator "
                     "stay float32. Default: on for the fast recipe on a CPU with bfloat16 instructions (avx512_bf16 "
                     "or AMX), off otherwise. Refused on a CPU without them, where it is many times slower "
                     "(MNISTGAN_ALLOW_EMULATED_BFLOAT16=1 insists). With --resume, --no-mixed-precision goes on in "
                     "float32 (no longer byte-exact) a bfloat16 run; a float16 run is refused (its loss scale).",
                     show_default=False),
    ] = None,
    **settings,
) -> None:
    """Train the report's DCGAN; one grid PNG, metrics line and checkpoint per epoch.

    \b
    Example:
      mnistgan train --recipe fast --minutes 10        # good digits in minutes on a CPU
      mnistgan train --epochs 2 --subset 2048 --out out/
    """
    run = mnistgan.train(out, data=data, resume=resume, overwrite=overwrite, minutes=minutes, gpu=gpu,
                         mixed_precision=mixed_precision, progress=console.TrainingReporter(),
                         switch_data=switch_data, **settings)
    if run.worker is not None:  # a multi-worker run's non-chief process
        console.info(f"{run.worker} done: trained {run.config.train.epochs} epochs; the chief wrote {run.path}")
        return
    console.info(run.stopped or f"done: {run.path} has {run.epochs_done} of {run.config.train.epochs} epochs")
    console.result(str(run.path))


@app.command("sample")
def sample_command(
    run: RunOpt = Path("out"),
    ckpt: CkptOpt = "latest",
    n: Annotated[int, typer.Option("-n", "--num", min=1, max=100_000, help="Number of images.")] = 16,
    seed: Annotated[int, typer.Option(min=0, help="Noise seed: same checkpoint and seed, same bytes.")] = 0,
    out: Annotated[Path, typer.Option("--out", callback=_images_out(None), help="A .png grid, or .npy for the raw "
                                      "uint8 (n, 28, 28) array.")] = Path("samples.png"),
    scale: ScaleOpt = 2,
    class_: Annotated[Optional[str], ClassOpt("draw this class only")] = None,
    classes: Annotated[
        Optional[str], typer.Option("--classes", "--digits", help="Conditional runs: a grid with a row of -n "
                                    "images per class: 'all' (row d is class d; where a class is named all, that class), "
                                    "or the classes to draw, by name or number as --class takes them (cat,bird or "
                                    "3,8).", show_default=False)
    ] = None,
    ema: EmaOpt = None,
    truncation: TruncationOpt = 1.0,
    cols: Annotated[Optional[int], typer.Option("--cols", min=1, max=1000, help="Images per row of the PNG "
                    "grid. Default: as square as -n allows.", show_default=False)] = None,
    noise: Annotated[
        Optional[Path], typer.Option("--noise", help="Draw from these noise vectors instead of --seed's: a .npy "
                                     "of shape (N, noise_dim) or (noise_dim,), as `mnistgan project` writes. "
                                     "-n does not apply.", show_default=False)
    ] = None,
    cluster: Annotated[
        Optional[str], typer.Option("--cluster", metavar="C", help="Runs trained with --clusters: draw from cluster C only, or "
                                    "'all' for a grid with a row per cluster, -n of each (row c is cluster c).",
                                    show_default=False)
    ] = None,
) -> None:
    """Draw images from a trained generator.

    \b
    Example:
      mnistgan sample --run out/ --ckpt latest -n 16 --seed 1 --out samples.png
      mnistgan sample --run cond/ --class 7 -n 16
      mnistgan sample --run cond/ --classes all -n 10
      mnistgan sample --run pets/ --classes cat,dog -n 8
      mnistgan sample --run out/ --ckpt best --truncation 0.7
      mnistgan sample --run out/ -n 1000 --cols 40 --scale 1 --out sheet.png
      mnistgan sample --run out/ --cluster all -n 10
    """
    generator = mnistgan.load_generator(run, ckpt, ema)  # the weights load when the first image is drawn
    sheet = generator.sample_sheet(
        n, seed, class_, truncation, None if cluster in (None, "all") else cluster, classes=classes,
        all_clusters=cluster == "all",
        noise=None if noise is None else mnistgan.load_noise(noise, generator.noise_dim), cols=cols)
    path = mnistgan.save_images(sheet.images, out, scale, rows=sheet.rows, cols=sheet.cols)
    console.info(f"{len(sheet.images)} images from {generator.describe()}")
    console.result(str(path))


@app.command("animate")
def animate_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A run folder, or a folder of epoch_XXXX.png files.",
                                           show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", help="GIF to write. Default: FOLDER/animation.gif.",
                                                show_default=False)] = None,
    fps: Annotated[float, typer.Option(min=0.1, max=100.0, help="Frames per second.")] = 10.0,
    loop: Annotated[int, typer.Option(min=0, help="Times to play; 0 loops forever.")] = 0,
) -> None:
    """Make a GIF of the epoch grids, in epoch order; the last frame is held a second longer.

    \b
    Example:
      mnistgan animate out/ --fps 5
    """
    result = mnistgan.animate(folder, out, fps, loop)
    console.info(f"{result.frames} frames, {result.first.name} .. {result.last.name}")
    console.result(str(result.path))


@app.command("interpolate")
def interpolate_command(
    run: RunOpt = Path("out"),
    ckpt: CkptOpt = "latest",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated noise seeds to walk through.")] = "0,1,2,3",
    classes: Annotated[
        Optional[str], typer.Option("--classes", "--digits", help="Conditional runs: walk between these classes, "
                                    "by name or number as sample's --class takes them (cat,bird or 3,8), with the "
                                    "noise of the first seed held fixed.", show_default=False)
    ] = None,
    frames: Annotated[int, typer.Option(min=2, max=500, help="Frames from one seed (or class) to the next.")] = 24,
    fps: Annotated[float, typer.Option(min=0.1, max=100.0, help="Frames per second.")] = 12.0,
    out: Annotated[Path, typer.Option("--out", callback=_output(check_output_file), help="GIF to write.")
                   ] = Path("walk.gif"),
    scale: Annotated[int, typer.Option("--scale", min=1, max=16, help="Enlarge frames by this factor.")] = 4,
    ema: EmaOpt = None,
    truncation: TruncationOpt = 1.0,
    start: Annotated[Optional[Path], typer.Option("--from", help="Walk from this noise (.npy, e.g. from "
                     "`mnistgan project`) to --to and back, instead of through --seeds.", show_default=False)] = None,
    end: Annotated[Optional[Path], typer.Option("--to", help="The other end of a --from walk.",
                                                show_default=False)] = None,
) -> None:
    """A looping GIF walking the latent space through several seeds (spherical interpolation).

    Conditional runs show every class side by side in every frame; with --classes the walk goes
    from class to class instead, the noise held fixed.

    \b
    Example:
      mnistgan interpolate --run out/ --seeds 1,2,3 --frames 24 --out walk.gif
      mnistgan interpolate --run cond/ --classes 0,1,2,3,4,5,6,7,8,9 --seeds 5
      mnistgan interpolate --run out/ --from mine.npy --to test7.npy
    """
    if (start is None) != (end is None):
        raise _Refused("give both --from and --to")
    if start is not None and classes is not None:
        raise _Refused("--from and --to walk between noise vectors; they cannot be combined with --classes")
    seed_list = number_list(seeds, "seeds", 0, 2**32 - 1)
    generator = mnistgan.load_generator(run, ckpt, ema)
    points = None if start is None else [mnistgan.load_noise(p, generator.noise_dim) for p in (start, end)]
    walk = mnistgan.walk(generator, seed_list, frames, classes, scale, truncation, points).save(out, fps)
    console.info(f"{len(walk.frames)} frames, {walk.what}, from {walk.generator}")
    console.result(str(walk.path))


@app.command("evaluate")
@with_config_options(only=FOLDER_SETTINGS)
def evaluate_command(
    run: RunOpt = Path("out"),
    ckpt: CkptOpt = "latest",
    n: Annotated[int, typer.Option("-n", "--num", min=2, max=100_000, help="Samples to draw and score.")] = 10_000,
    seed: Annotated[int, typer.Option(min=0, help="Noise seed for the samples.")] = 0,
    samples: Annotated[
        Optional[Path],
        typer.Option("--samples", exists=True, help="Score these images instead: a .npy of uint8 (N, 28, 28) or "
                     "floats in [-1, 1], or a folder of 28x28 PNGs (any tool's output).", show_default=False),
    ] = None,
    data: RunDataOpt = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain the cached classifier of the data first "
                                          "(data other than MNIST).")] = False,
    classifier: Annotated[
        Optional[Path],
        typer.Option("--classifier", help="Score with this Keras file instead: a model from images (N, 28, 28, 1) "
                     "in [-1, 1] to (features, logits) over the data's classes.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")] = False,
    ema: EmaOpt = None,
    truncation: TruncationOpt = 1.0,
    **folder_settings: typing.Any,
) -> None:
    """Score generated images with a classifier of the data's classes: on MNIST, the scorer
    shipped with mnistgan (the same on every machine); on other data, one trained here on the
    data's labels on first use, then cached; or --classifier.

    fid: Frechet distance between classifier features of the samples and of the data's test set
    (lower is better). inception_score: exp E[KL(p(y|x) || p(y))], 1 to the number of classes
    (higher is better). classes / coverage: the share of samples per class and its normalized
    entropy (1 = every class equally often). confident: share of samples the classifier puts at
    >= 90% on one class. memorization_ratio: median distance from a sample to its nearest
    training image over the same for real test images (well below 1 suggests copies of training
    images). Data without labels gets the memorization check only.

    \b
    Example:
      mnistgan evaluate --run out/ -n 10000 --json
    """
    if samples is not None and ema is not None:
        raise _Refused("--ema/--no-ema chooses a checkpoint's generator; it does not apply to --samples")
    if samples is not None and truncation != 1:
        raise _Refused("--truncation changes a checkpoint's samples; it does not apply to --samples")
    given = [name for name, value in folder_settings.items() if value is not None]
    if samples is None and given:
        raise _Refused(f"--{given[0].replace('_', '-')}: a run reads its data as it was trained on it; the options "
                       "of a folder of images go with --samples")
    with console.TaskProgress("training the evaluation classifier") as bar:
        if samples is not None:
            result = mnistgan.evaluate(samples, data, retrain=retrain, progress=bar.update, notify=console.info,
                                       classifier=classifier, **folder_settings)
        else:
            result = mnistgan.load_generator(run, ckpt, ema).evaluate(
                n, seed, data, retrain=retrain, truncation=truncation, progress=bar.update, notify=console.info,
                classifier=classifier)
    if result.unscored:
        console.info(result.unscored)
    if as_json:
        console.result(json.dumps(result.to_dict(), indent=2))
    else:
        console.evaluation_table(result)


@app.command("project")
def project_command(
    image: Annotated[Optional[Path], typer.Argument(help="A digit image: a 28x28 MNIST-like PNG, or any image "
                     "Pillow reads (centred and resized as MNIST's digits were).", show_default=False)] = None,
    run: RunOpt = Path("out"),
    ckpt: CkptOpt = "latest",
    test_index: Annotated[Optional[int], typer.Option("--test-index", min=0, help="Project MNIST test image N "
                          "instead of a file.", show_default=False)] = None,
    data: RunDataOpt = None,
    class_: Annotated[Optional[str], ClassOpt("search this class only (default: every one; the closest "
                                             "wins)")] = None,
    out: Annotated[Path, typer.Option("--out", callback=_output(check_png_path), help="Side-by-side PNG (target, "
                   "projection); the noise is saved beside it as .npy.")] = Path("projection.png"),
    gif: Annotated[Optional[Path], typer.Option("--gif", callback=_output(check_output_file),
                                                help="Also write a GIF of the search.", show_default=False)] = None,
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Adam steps from each start.")] = 300,
    starts: Annotated[int, typer.Option(min=1, max=1000, help="Random starts (per class searched); the "
                      "closest result is kept.")] = 8,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the starts.")] = 0,
    ema: EmaOpt = None,
) -> None:
    """Find the noise from which the generator draws a given digit image.

    \b
    Example:
      mnistgan project my_digit.png --run out/ --out mine.png --gif search.gif
      mnistgan project --test-index 0 --run out/ --out test0.png
      mnistgan sample --run out/ --noise mine.npy --out again.png
    """
    if (image is None) == (test_index is None):
        raise _Refused("give an IMAGE file or --test-index, one of them")
    generator = mnistgan.load_generator(run, ckpt, ema)
    target = image if image is not None else mnistgan.load_mnist(data, generator.config).test_image(test_index)
    result = mnistgan.project(generator, target, class_, steps, starts, seed, record=gif is not None).save(out, gif)
    found = f" as class {generator.conditioning.name(result.digit)}" if result.digit is not None else ""
    console.info(f"projected{found}: RMS difference {result.error:.1f} grey levels after {result.steps} steps "
                 f"from {result.starts} starts; noise in {noise_path(result.path)}; from {result.generator}")
    console.result(str(result.path))


@app.command("export")
def export_command(
    run: RunOpt = Path("out"),
    ckpt: CkptOpt = "latest",
    fmt: Annotated[str, typer.Option("--format", metavar="[keras|savedmodel|tflite|onnx]", help="keras: one "
                   ".keras file (keras.saving.load_model); savedmodel: a folder (tf.saved_model.load); tflite: "
                   "one .tflite file (TensorFlow Lite's interpreter); onnx: one .onnx file (onnxruntime; needs "
                   "pip install 'mnistgan[onnx]').")] = "keras",
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to write; must not exist. Default: "
                   "generator.keras, generator_savedmodel, generator.tflite or generator.onnx.",
                   show_default=False)] = None,
    ema: EmaOpt = None,
    truncation: TruncationOpt = 1.0,
) -> None:
    """Export the generator for use without mnistgan (plain TensorFlow, Keras, TFLite or ONNX).

    Inputs: noise, float32 (N, noise_dim), standard normal; conditional runs also digit, int32
    (N,). Output: image, float32 (N, 28, 28, 1) in [-1, 1]; round(x * 127.5 + 127.5) gives the
    pixels `mnistgan sample` writes. --truncation is built into the exported model.

    \b
    Example:
      mnistgan export --run out/ --ckpt best --format tflite --out generator.tflite
    """
    result = mnistgan.export(mnistgan.load_generator(run, ckpt, ema), out, fmt, truncation)  # checks, then loads
    psi = f", truncation {result.truncation:g}" if result.truncation != 1 else ""
    console.info(f"{result.format} export of {result.generator}{psi}; inputs {', '.join(result.inputs)} -> image")
    console.result(str(result.path))


@app.command("explore")
def explore_command(
    run: Annotated[Path, typer.Option("--run", file_okay=False, help="A run folder, or a folder of runs to "
                   "compare.")] = Path("out"),
    host: Annotated[str, typer.Option("--host", help="Address to serve on. Anything but 127.0.0.1, localhost or "
                    "::1 lets other machines see the page.")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, help="Port. Default: the first "
                    "free one from 7860.", show_default=False)] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the page in a web browser.")] = True,
) -> None:
    """A local web page to explore runs: samples by seed, truncation and digit, latent walks,
    training curves and grids (following a run in training), projection of a drawn digit, and
    runs side by side. Needs pip install "mnistgan[explore]". Ctrl-C stops it.

    \b
    Example:
      mnistgan explore --run out/
      mnistgan explore --run runs/ --no-browser --port 8000
    """

    if host not in ("127.0.0.1", "localhost", "::1"):
        console.info(f"warning: serving on {host}: anyone who can reach this machine can see these runs, "
                     "draw from their generators and use its CPU")
    page = explore(run, host=host, port=port, open_browser=browser)
    console.info(f"exploring {', '.join(page.runs)} at {page.url} (Ctrl-C stops)")
    console.result(page.url)
    page.wait()
    console.info("stopped")


@app.command("cache")
def cache_command(
    clear: Annotated[bool, typer.Option("--clear", help="Remove the cache's entries (all of them, or with "
                                        "--older-than those not used for that long).")] = False,
    older_than: Annotated[Optional[float], typer.Option("--older-than", metavar="DAYS", min=0, show_default=False,
                          help="With --clear: only the entries not used for this many days.")] = None,
) -> None:
    """List what mnistgan has cached (the evaluation classifier of each data set, each converted
    folder of images, the k-means clusters of each training set), with sizes and when each was last used; --clear removes it. Everything
    in the cache is made again when it is needed (a classifier takes minutes to train).

    \b
    Example:
      mnistgan cache
      mnistgan cache --clear --older-than 30
    """
    if older_than is not None and not clear:
        raise _Refused("--older-than goes with --clear")
    shown = caches.clear(older_than) if clear else caches.entries()
    for entry in shown:
        used = time.strftime("%Y-%m-%d", time.localtime(entry.last_used))
        console.result(f"{entry.kind:<10} {entry.bytes / 1e6:9.1f} MB  last used {used}  {entry.path}")
    total = sum(e.bytes for e in shown) / 1e6
    what = "removed" if clear else "in"
    console.info(f"{len(shown)} entr{'y' if len(shown) == 1 else 'ies'}, {total:.1f} MB, {what} {files.cache_root()}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="mnistgan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Generated inputs for the layers that need no TensorFlow (issue 35): Hypothesis invents the
configs, data, CSV damage, grid shapes, lists and images that hand-picked examples miss, and
shrinks a failure to its smallest case."""

from __future__ import annotations

import io
import json
import typing
import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import mnistgan
from mnistgan.config import CONDITIONING_FIELDS, ModelConfig, RunConfig, TrainConfig, number_list, python_type
from mnistgan.data import Mnist
from mnistgan.epochlog import CHUNK_FIELDS, METRIC_FIELDS, read_rows, write_rows
from mnistgan.errors import RunError, UsageError
from mnistgan.images import grid_shape

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=8)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=6)


def _section(cls) -> st.SearchStrategy:
    """A config section as JSON: some of ``cls``'s fields (plausible values or anything), now and
    then a field it does not have."""
    names = list(cls.model_fields)
    plausible = st.one_of(st.integers(0, 300), st.floats(0, 1), st.booleans(), st.none(),
                          st.sampled_from(["report", "fast", "auto", "pca", "pixels", "float32", "mixed_bfloat16"]),
                          st.lists(st.integers(1, 50), max_size=4))
    known = st.dictionaries(st.sampled_from(names), plausible | JSON_VALUES, max_size=len(names))
    return known | st.builds(lambda d, k, v: {**d, k: v}, known, st.text(min_size=1, max_size=6), JSON_VALUES)


# config.json format 2 stores the model's conditioning as one value (config.stored_conditioning):
# plausible ones, and anything.
STORED_CONDITIONING = st.fixed_dictionaries(
    {}, optional={"kind": st.sampled_from(["none", "classes", "clusters"]) | JSON_SCALARS,
                  "count": st.none() | st.integers(0, 120) | JSON_SCALARS,
                  "names": st.lists(st.text(max_size=4), max_size=4) | JSON_VALUES,
                  "sizes": st.lists(st.integers(1, 50), max_size=4) | JSON_VALUES}) | JSON_VALUES
MODEL_SECTIONS = _section(ModelConfig) | st.builds(
    lambda section, stored: {**{k: v for k, v in section.items() if k not in CONDITIONING_FIELDS},
                             "conditioning": stored}, _section(ModelConfig), STORED_CONDITIONING)

CONFIG_PAYLOADS = st.fixed_dictionaries(
    {"format_version": st.sampled_from([1, 2]) | JSON_SCALARS},
    optional={"model": MODEL_SECTIONS | JSON_VALUES, "train": _section(TrainConfig) | JSON_VALUES,
              "versions": st.dictionaries(st.sampled_from(["mnistgan", "tensorflow", "x"]), st.text(max_size=8))
              | JSON_VALUES},
)


@given(CONFIG_PAYLOADS)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_loads_into_a_config_that_round_trips_or_is_refused_by_mnistgan(payload):
    try:
        config = RunConfig.from_dict(json.loads(json.dumps(payload)), "config.json")
    except RunError as exc:
        assert str(exc).startswith("config.json ")
        return
    again = RunConfig.from_dict(json.loads(config.to_json()), "again")
    assert again == config and again.to_json() == config.to_json()
    assert isinstance(config.trained_by(), tuple)
    for section in (config.model, config.train):  # strict types: what was read is what the code expects
        for name, f in type(section).model_fields.items():
            value = getattr(section, name)
            kind = python_type(f.rebuild_annotation())
            assert value is None or isinstance(value, typing.get_origin(kind) or kind), (name, value)


# -- the data's fingerprint ----------------------------------------------------------------------------------------

IMAGES = st.integers(1, 6).flatmap(lambda n: st.binary(min_size=n * 4, max_size=n * 4).map(
    lambda b: np.frombuffer(b, np.uint8).reshape(n, 2, 2)))


@st.composite
def data_sets(draw):
    x_train = draw(IMAGES)
    y_train = np.array(draw(st.lists(st.integers(0, 9), min_size=len(x_train), max_size=len(x_train))), np.uint8)
    if draw(st.booleans()):
        x_test = draw(IMAGES)
        y_test = np.array(draw(st.lists(st.integers(0, 9), min_size=len(x_test), max_size=len(x_test))), np.uint8)
    else:
        x_test = y_test = None
    return Mnist(x_train, y_train, x_test, y_test, source="drawn")


@given(data_sets(), st.data())
def test_the_fingerprint_is_the_content_and_nothing_else(mnist, data):
    copy = Mnist(*(None if a is None else a.copy() for a in (mnist.x_train, mnist.y_train, mnist.x_test,
                                                             mnist.y_test)), source="elsewhere")
    assert copy.fingerprint == mnist.fingerprint  # where it came from does not count
    arrays = {k: getattr(mnist, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    name = data.draw(st.sampled_from([k for k, v in arrays.items() if v is not None]))
    array = arrays[name]
    change = data.draw(st.sampled_from(["value", "dtype", "shape", "test set"]))
    if change == "value":
        flat = array.copy().reshape(-1)
        i = data.draw(st.integers(0, flat.size - 1))
        flat[i] = (int(flat[i]) + data.draw(st.integers(1, 255))) % 256
        changed = {**arrays, name: flat.reshape(array.shape)}
    elif change == "dtype":
        changed = {**arrays, name: array.astype(np.uint16)}
    elif change == "shape":
        assume(array.ndim == 3)
        changed = {**arrays, name: array.reshape(len(array), 4, 1)}
    else:
        changed = ({**arrays, "x_test": None, "y_test": None} if mnist.x_test is not None
                   else {**arrays, "x_test": arrays["x_train"], "y_test": arrays["y_train"]})
    assert Mnist(**changed, source="drawn").fingerprint != mnist.fingerprint


# -- the epoch log ------------------------------------------------------------------------------------------------

ROWS = st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0, 1e5), st.floats(0, 1e5)),
                min_size=1, max_size=6).map(lambda values: [
                    {"epoch": str(i + 1), **{k: f"{v:.6f}" for k, v in zip(METRIC_FIELDS[1:], vs)}}
                    for i, vs in enumerate(values)])


@given(ROWS, st.data())
def test_a_truncated_or_damaged_log_is_an_error_never_a_quiet_loss(tmp_path_factory, rows, data):
    path = tmp_path_factory.mktemp("log") / "metrics.csv"
    write_rows(path, METRIC_FIELDS, rows)
    text = path.read_text()
    written = read_rows(path, METRIC_FIELDS, up_to_epoch=10**9)
    assert [r["epoch"] for r in written] == list(range(1, len(rows) + 1))
    damage = data.draw(st.sampled_from(["truncate", "insert", "delete"]))
    at = data.draw(st.integers(len(text.splitlines()[0]) + 1, len(text) - 1))
    if damage == "truncate":
        damaged = text[:at]
    elif damage == "insert":
        damaged = text[:at] + data.draw(st.sampled_from([",", "x", "\n", "#", "--"])) + text[at:]
    else:
        assume(text[at] in ",\n")  # a lost separator
        damaged = text[:at] + text[at + 1 :]
    path.write_text(damaged)
    try:
        read = read_rows(path, METRIC_FIELDS, up_to_epoch=10**9)
    except RunError as exc:
        assert "metrics.csv" in str(exc) and "\n" not in str(exc)
        return
    # Read without an error: whole rows exactly as written, all of them unless the file was cut
    # at the end of a line (which leaves a shorter log, as if written epochs ago).
    if damage == "truncate":
        assert read == written[: len(read)] and damaged.endswith("\n")
    else:
        assert read == written


CHUNKS = st.lists(st.tuples(st.integers(1, 5), st.lists(st.floats(-50, 50), min_size=2, max_size=2)),
                  min_size=1, max_size=12)


@given(CHUNKS, st.data())
def test_losses_csv_reads_back_in_order_or_is_refused_in_one_line(tmp_path_factory, chunks, data):
    """losses.csv (a row per chunk of steps, keyed by epoch and step): what is written reads back;
    rows out of order or damaged are an error naming the file, never rows silently dropped."""
    rows, step = [], {}
    for epoch, (g, d) in sorted(chunks, key=lambda c: c[0]):
        step[epoch] = step.get(epoch, 0) + 10
        rows.append({"epoch": epoch, "step": step[epoch], "epochs": epoch - 1 + step[epoch] / 100,
                     "generator_loss": round(g, 6), "discriminator_loss": round(d, 6)})
    path = tmp_path_factory.mktemp("log") / "losses.csv"
    write_rows(path, CHUNK_FIELDS, rows)
    assert read_rows(path, CHUNK_FIELDS, up_to_epoch=10**9, keys=("epoch", "step")) == rows
    if len(rows) > 1:
        i = data.draw(st.integers(1, len(rows) - 1))
        swapped = rows[:i - 1] + [rows[i], rows[i - 1]] + rows[i + 1:]
        write_rows(path, CHUNK_FIELDS, swapped)
        try:
            read_rows(path, CHUNK_FIELDS, up_to_epoch=10**9, keys=("epoch", "step"))
        except RunError as exc:
            assert "losses.csv" in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError("rows out of order were read")


@given(st.text(max_size=8) | st.floats(allow_nan=True, allow_infinity=True).map(str))
@settings(max_examples=60, deadline=None)
def test_cache_older_than_takes_days_or_one_clear_refusal(tmp_path_factory, text):
    """``mnistgan cache --clear --older-than DAYS``: a number of days clears what is older (an
    empty cache here), anything else is one line, exit 2, and nothing removed."""
    from typer.testing import CliRunner

    from mnistgan.cli import app

    result = CliRunner().invoke(app, ["cache", "--clear", f"--older-than={text}"])
    if result.exit_code == 0:  # taken: a number of days, at least 0 ('inf': nothing is that old)
        assert float(text) >= 0, (text, result.output)
        assert "0 entries, 0.0 MB, removed" in result.stderr
    else:
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
        assert result.stderr.startswith("Error: --older-than "), result.stderr


# -- grids ------------------------------------------------------------------------------------------------------------


@given(st.integers(1, 500), st.none() | st.integers(1, 40), st.none() | st.integers(1, 40))
def test_a_grid_has_the_rows_and_columns_asked_for_and_no_empty_row(n, rows, cols):
    assume(not (rows and cols) or rows * cols >= n)
    r, c = grid_shape(n, rows, cols)
    assert r * c >= n
    assert rows in (None, r) and cols in (None, c)
    if rows is None:
        assert (r - 1) * c < n  # as few rows as n needs
    if cols is None:
        assert r * (c - 1) < n or rows is None and c == math.ceil(math.sqrt(n))


@given(st.integers(1, 60), st.none() | st.integers(1, 12), st.none() | st.integers(1, 12), st.integers(1, 3))
def test_the_api_grid_is_the_size_its_shape_says(n, rows, cols, scale):
    assume(not (rows and cols) or rows * cols >= n)
    r, c = grid_shape(n, rows, cols)
    picture = mnistgan.grid(np.zeros((n, 28, 28), np.uint8), rows, cols, scale)
    assert picture.size == (scale * (c * 30 + 2), scale * (r * 30 + 2))


# -- lists of numbers (--seeds, --digits, the page's fields) -----------------------------------------------------------


@given(st.text(alphabet="0123456789, -+x.e\t", max_size=20), st.integers(0, 5), st.integers(5, 20))
def test_any_text_is_a_list_of_numbers_in_range_or_one_clear_refusal(text, lo, hi):
    try:
        values = number_list(text, "digits", lo, hi)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("digits: ")  # the API's name; the CLI's is --digits
        return
    assert all(lo <= v <= hi for v in values)


@given(st.lists(st.integers(0, 2**32 - 1), max_size=8), st.sampled_from([",", ", ", " ,"]))
def test_a_written_list_reads_back(values, separator):
    assert number_list(separator.join(map(str, values)), "seeds", 0, 2**32 - 1) == values


# -- images given to project --------------------------------------------------------------------------------------------

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F"]


@st.composite
def image_files(draw):
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    grey = np.array(draw(st.lists(st.integers(0, 255), min_size=width * height, max_size=width * height)),
                    np.uint8).reshape(height, width)
    image = Image.fromarray(grey, "L").convert(mode)
    fmt = "TIFF" if mode == "F" else draw(st.sampled_from(["PNG", "BMP", "GIF", "WEBP", "TIFF"]))
    if fmt in ("BMP", "GIF", "WEBP") and mode in ("I;16", "I", "LA"):
        fmt = "PNG"
    if mode == "I":  # Pillow no longer writes 32-bit PNGs
        fmt = "TIFF"
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue(), width * height


@given(image_files(), st.sampled_from([None, 100]))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_any_image_file_is_made_mnist_like_or_refused_in_one_line(tmp_path, file, limit):
    from mnistgan.projection import MAX_PIXELS, prepare_image

    content, pixels = file
    path = tmp_path / "digit.img"
    path.write_bytes(content)
    try:
        digit = prepare_image(path, limit or MAX_PIXELS)
    except UsageError as exc:
        assert "\n" not in str(exc)
        assert ("at most" in str(exc)) == (limit is not None and pixels > limit)
        return
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert limit is None or pixels <= limit


def _numeric_options() -> list[tuple[str, typing.Any]]:
    """(command, option) for every whole-number or number option of every command."""
    from typer.main import get_command

    from mnistgan.cli import app

    found = []
    for name, command in get_command(app).commands.items():
        for param in command.params:
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if annotation in (int, float) and param.opts:
                found.append((name, param))
    return found


NUMERIC_OPTIONS = _numeric_options()


def test_every_number_option_is_found():
    assert {(c, p.name) for c, p in NUMERIC_OPTIONS} >= {("sample", "seed"), ("interpolate", "frames"),
                                                        ("train", "epochs"), ("train", "learning_rate")}


@given(option=st.sampled_from(NUMERIC_OPTIONS),
       text=st.text(max_size=6) | st.sampled_from(["x", "1.5", "²", "nan", "-1", "1e999", "100001", "0"]))
@settings(max_examples=150, deadline=None)
def test_a_refused_number_is_said_in_mnistgan_s_words(option, text):
    """Typer parses numbers with pydantic; its phrases ('Input should be a valid integer') never
    reach a user (issue 43): the option, what it takes, its range and the value given."""
    from typer.testing import CliRunner

    from mnistgan.cli import app

    command, param = option
    annotation = param.type_descriptor.annotation
    try:  # a value the option takes would run the command: only refusals are tried here
        value = annotation(text)
        taken = math.isfinite(value) and (param.min is None or value >= param.min) and \
            (param.max is None or value <= param.max) and (annotation is float or text.strip().lstrip("+-").isascii())
    except (ValueError, OverflowError):
        taken = False
    assume(not taken)
    flag = next(o for o in param.opts if o.startswith("--"))
    result = CliRunner().invoke(app, [command, f"{flag}={text}"])  # '--seed=-1': '-1' is not read as an option
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert "Input should" not in line and "pydantic" not in line, line
    assert line.startswith("Error: ") and flag in line, line
    if param.min is not None and "must be a" in line:  # typer's own range: said with it
        assert f"{param.min:g}" in line, line

"""Any classes, by number or by name (issue 43): one conditioning value, read everywhere.

The kinds of run with other class counts (3 classes named in Unicode, 62 classes) are rows of the
run-state matrix (test_matrix.py); here are the parser of class names, the guard against a count
of ten written into the code, and the failures found by trying other data, each with the test
that failed before its fix.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, make_digits
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import mnistgan
from mnistgan.cli import app
from mnistgan.conditioning import Conditioning
from mnistgan.errors import UsageError

PACKAGE = Path(mnistgan.__file__).parent
PETS = Conditioning("classes", 3, ("bird", "cat", "dog"))


@pytest.mark.parametrize(("value", "label"), [
    ("cat", 1), ("dog", 2), (0, 0), ("2", 2), (np.int64(1), 1), ("00", 0), (" cat", 1), ("cat ", 1), (" 2 ", 2),
])
def test_a_class_is_asked_for_by_name_or_by_number(value, label):
    assert PETS.label(value, "digit") == label


@pytest.mark.parametrize("value", ["Cat", "c at", "3", "-1", 3, -1, "²", "٣", "", True, 1.0, "1.0", "all"])
def test_a_class_the_run_does_not_have_is_refused_with_the_run_s_classes(value):
    with pytest.raises(UsageError) as caught:
        PETS.label(value, "digit")
    assert str(caught.value) == f"digit must be one of the run's 3 classes: 0 bird, 1 cat, 2 dog; not {value!r}"


def test_a_numpy_integer_is_echoed_as_the_number_it_is():
    with pytest.raises(UsageError, match=r"; not 12$"):
        PETS.label(np.int64(12), "digit")


# The one rule (issue 50): a value that is exactly one class's name is that class; any other
# string of ASCII digits is an index. Folders as they sort (strings), the value asked for, the class.
ONE_RULE = [
    (("1", "3", "7"), "7", 2),  # the folder 7/, not index 7
    (("1", "3", "7"), "1", 0),  # a name wins over another class's index
    (("1", "3", "7"), "3", 1),
    (("1", "3", "7"), "2", 2),  # no class is named 2: the index
    (("1", "3", "7"), "0", 0),
    (tuple("0123456789"), "7", 7),  # MNIST's folders, as ever
    (("10", "2", "smile 🙂", "zéro", "一"), "10", 0),
    (("10", "2", "smile 🙂", "zéro", "一"), "2", 1),
    (("10", "2", "smile 🙂", "zéro", "一"), "4", 4),
    (("ze\u0301ro", "un"), "z\u00e9ro", 0),  # a folder named on macOS (decomposed), a typed name (composed)
    (("z\u00e9ro", "un"), "ze\u0301ro", 0),
    ((" x", "x"), " x", 0),  # a name as given first ...
    ((" x", "x"), "x ", 1),  # ... then without its spaces
    (("all", "some"), "all", 0),
    (("random", "all"), "random", 0),
]


@pytest.mark.parametrize(("names", "value", "label"), ONE_RULE)
def test_one_rule_for_a_class_in_the_api_and_the_parser(names, value, label):
    labels = Conditioning("classes", len(names), names)
    assert labels.label(value, "digit") == label
    assert labels.labels(value, "digits") == [label]  # --classes with one class, and the walk's box


@pytest.mark.parametrize(("names", "text", "found"), [
    (("a,b", "c"), "a,b,c", [0, 1]),  # a name with a comma is listed as it is
    (("a,b", "c"), "c, a,b", [1, 0]),
    (("a", "b", "a,b"), "a,b", [2]),  # the longest name first
    (("a", "b", "a,b"), "b,a", [1, 0]),
    (("a", "b"), " a , b ,", [0, 1]),  # spaces around list items, a trailing comma
    (("cat", "dog", "all"), "all", [2]),  # a class named all is that class ...
    (("cat", "dog"), "all", [0, 1]),  # ... else all is every class
])
def test_a_list_of_classes_reads_names_with_commas_whole(names, text, found):
    assert Conditioning("classes", len(names), names).labels(text, "classes") == found


def test_names_two_classes_share_are_asked_for_by_number():
    odd = Conditioning("classes", 4, ("caf\ufffd", "caf\ufffd", "ze\u0301ro", "z\u00e9ro"))  # not UTF-8; NFC twins
    with pytest.raises(UsageError, match="'caf\ufffd' names classes 0, 1: give its number"):
        odd.label("caf\ufffd", "digit")
    with pytest.raises(UsageError, match="names classes 2, 3: give its number"):
        odd.label("zéro", "digit")
    assert [odd.spelled(i) for i in range(4)] == ["0", "1", "2", "3"]


_folder_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1,
                        max_size=6)


@given(st.lists(_folder_names, min_size=2, max_size=8, unique_by=lambda n: unicodedata.normalize("NFC", n)),
       st.data())
def test_any_folder_names_read_back_the_class_each_names(names, data):
    """Any set of valid folder names (distinct once composed): each name asked for is its class, and
    what the page writes into a command line (one class, or a list) reads back the same."""
    names = tuple(sorted(names))
    labels = Conditioning("classes", len(names), names)
    for i, name in enumerate(names):
        assert labels.label(name, "digit") == i
        assert labels.label(labels.spelled(i), "digit") == i
    chosen = data.draw(st.lists(st.integers(0, len(names) - 1), min_size=1, max_size=4))
    assert labels.labels(labels.spelled_list(chosen), "classes") == chosen


def test_a_long_list_of_classes_shows_the_first_twenty_and_the_count():
    many = Conditioning("classes", 62, tuple(f"c{i:02d}" for i in range(62)))
    with pytest.raises(UsageError, match=r"0 c00, 1 c01, .*, 19 c19, \.\.\. \(62 in all\); not 'nope'$"):
        many.label("nope", "digit")
    with pytest.raises(UsageError, match=r"must be one of the run's 62 classes: 0 to 61; not 62$"):
        Conditioning("classes", 62).label(62, "digit")


@given(st.text())
def test_any_text_is_a_class_or_one_clear_refusal(text):
    try:
        label = PETS.label(text, "digit")
    except UsageError as exc:
        assert "must be one of the run's 3 classes" in str(exc) and "\n" not in str(exc).replace(repr(text), "")
    else:
        assert PETS.name(label) in (text, text.strip()) or str(label) == text.strip().lstrip("0").rjust(1, "0")


LABEL_WORDS = ("class", "digit", "label", "categor")  # names of things that count classes
# Tens that are no class count of today's data, each with its reason.
TENS_ALLOWED = {"LEGACY_CLASSES": "runs saved before runs recorded their classes knew MNIST's ten digits only",
                "UNLABELLED_ROWS": "the rows of a preview of data without labels, not classes"}


def _about_labels(name: str) -> bool:
    return any(word in name.lower() for word in LABEL_WORDS)


def test_no_function_defaults_a_class_count_and_no_constant_names_ten_classes():
    """A default such as ``classes=10`` (or ``digits=10``, ``num_labels=10``) decides the count
    silently, in the wrong place; so does a constant ``DIGITS = 10``."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                a = node.args
                positional = [*a.posonlyargs, *a.args]
                pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults),
                         *zip(a.kwonlyargs, a.kw_defaults)]
                found += [f"{path.name}:{node.lineno} {arg.arg}={d.value}" for arg, d in pairs
                          if _about_labels(arg.arg) and isinstance(d, ast.Constant) and type(d.value) is int and d.value > 1]
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            value = getattr(node, "value", None)
            found += [f"{path.name}:{node.lineno} {t.id} = 10" for t in targets
                      if isinstance(t, ast.Name) and _about_labels(t.id) and t.id not in TENS_ALLOWED
                      and isinstance(value, ast.Constant) and value.value == 10]
        if "NUM_CLASSES" in path.read_text():
            found.append(f"{path.name}: NUM_CLASSES")
    assert not found


def test_the_guard_against_a_count_of_ten_finds_one(tmp_path, monkeypatch):
    """The guard above, on a module that has each kind of count: it finds every one."""
    (tmp_path / "bad.py").write_text("DIGITS = 10\nn_labels: int = 10\ndef f(x, num_classes=10, *, digits=10): pass\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    with pytest.raises(AssertionError) as caught:
        test_no_function_defaults_a_class_count_and_no_constant_names_ten_classes()
    assert all(f in str(caught.value) for f in ("DIGITS = 10", "n_labels = 10", "num_classes=10", "digits=10"))


def test_a_users_text_in_a_message_is_never_taken_for_an_argument(runner, tmp_path):
    """Messages name arguments with a mark no path can hold: '{seeds}' in a folder's name stays."""
    missing = tmp_path / "{seeds}" / "{out}"
    result = runner.invoke(app, ["sample", "--run", str(missing)])
    assert result.exit_code == 2 and f"{missing} does not exist" in result.stderr, result.output


@pytest.mark.slow
def test_superscript_digits_are_no_numbers_for_cluster_or_ckpt(runner, clustered_run, tmp_path):
    """'²'.isdigit() is true, but int('²') fails: both options gave a traceback."""
    out = str(tmp_path / "s.png")
    result = runner.invoke(app, ["sample", "--run", str(clustered_run), "--cluster", "²", "--out", out])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.output
    assert "--cluster must be one of the run's 3 clusters: 0 to 2; not '²'" in result.stderr
    result = runner.invoke(app, ["sample", "--run", str(clustered_run), "--ckpt", "²", "--out", out])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert len(result.stderr.splitlines()) == 1 and "²" in result.stderr


def _class_folder(folder: Path, names: list[bytes]) -> Path:
    images, labels = make_digits(4)
    for label, name in enumerate(names):
        sub = os.fsdecode(os.fsencode(folder) + b"/" + name)
        os.makedirs(sub)
        for i, image in enumerate(images[labels == label]):
            Image.fromarray(image).save(os.path.join(sub, f"{i}.png"))
    return folder


@pytest.mark.slow
def test_folders_named_by_numbers_are_asked_for_by_name_on_the_command_line_in_python_and_on_the_page(
        runner, tmp_path):
    """Folders 1/, 3/, 7/ (#50): '7' was refused and '1' drew folder 3/. Now a name is its class
    everywhere, and any other number an index: --class 7 and --class 2 draw folder 7/."""
    import shlex

    from mnistgan.explorer import Explorer

    data = _class_folder(tmp_path / "numbers", [b"1", b"3", b"7"])
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(data), "--conditional", "--epochs", "1", "--batch-size",
                                  "4", "--out", str(run)])
    assert trained.exit_code == 0, trained.output

    def cli(value: str) -> bytes:
        out = tmp_path / f"class-{value}.npy"
        result = runner.invoke(app, ["sample", "--run", str(run), "--class", value, "-n", "4", "--out", str(out)])
        assert result.exit_code == 0, result.output
        return np.load(out).tobytes()

    assert cli("7") == cli("2") != cli("1") == cli("0")  # by name, else by index
    assert cli("3") == cli(" 3 ")
    g = mnistgan.open_run(run).generator()
    assert g.sample(4, class_="7").tobytes() == cli("7") and g.sample(4, digit="1").tobytes() == cli("0")
    assert g.sample_sheet(4, classes="7,1").rows == 2
    assert (g.sample_sheet(4, classes="7,1").images[:4].tobytes(), g.sample_sheet(4, classes="7,1").images[4:].tobytes()) \
        == (g.sample(4, class_=2).tobytes(), g.sample(4, class_=0).tobytes())
    explorer = Explorer(run)
    try:
        assert explorer.pickers(run.name).classes == ["random", "all", "1", "3", "7"]
        picture = explorer.samples(run.name, n=4, digit="7")
        assert "--class 7" in picture.command
        for command in (picture.command, picture.command.replace("--class 7", "--class 2")):
            result = runner.invoke(app, [*shlex.split(command)[1:-2], "--out", str(tmp_path / "page.png")])
            assert result.exit_code == 0, result.output
            assert (tmp_path / "page.png").read_bytes() == picture.path.read_bytes()
    finally:
        explorer.close()


def test_a_damaged_folder_cache_is_converted_again(runner, tmp_path):
    folder = _class_folder(tmp_path / "pets", [b"bird", b"cat", b"dog"])
    args = ["preview-dataset", "--data", str(folder), "--out"]
    assert runner.invoke(app, [*args, str(tmp_path / "a.png")]).exit_code == 0
    [cache] = (Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan" / "folders").glob("*.npz")
    whole = cache.read_bytes()
    cache.write_bytes(whole[: len(whole) // 2])  # cut short, as a full disk leaves it
    result = runner.invoke(app, [*args, str(tmp_path / "b.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert cache.read_bytes() == whole  # the cache was written anew


def test_class_folders_whose_names_are_not_utf8_are_read_and_shown_with_replacement_characters(runner, tmp_path):
    folder = _class_folder(tmp_path / "old", [b"caf\xe9", b"na\xefve"])
    assert mnistgan.load_mnist(folder).class_names == ("caf\ufffd", "na\ufffdve")
    result = runner.invoke(app, ["preview-dataset", "--data", str(folder), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_resume_whose_data_is_gone_names_the_run_s_data(runner, tmp_path, npz, session_npz, monkeypatch):
    data = tmp_path / "mine.npz"
    shutil.copy(npz, data)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(data), "--out", str(run), *TINY, "--epochs", "1"]).exit_code == 0
    data.unlink()
    for env in (None, str(session_npz)):  # Keras's download, or $MNISTGAN_DATA, must not stand in
        if env:
            monkeypatch.setenv("MNISTGAN_DATA", env)
        for command in (["train", "--out", str(run), "--resume", "--epochs", "2"],
                        ["evaluate", "--run", str(run), "-n", "20"],
                        ["project", "--run", str(run), "--test-index", "0", "--steps", "1"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
            assert f"the run's data, {data}, is gone" in result.stderr and "--data" in result.stderr, result.stderr
    assert mnistgan.open_run(run).epochs_done == 1
    moved = shutil.copy(npz, tmp_path / "moved.npz")  # the same data, moved, and named by $MNISTGAN_DATA
    monkeypatch.setenv("MNISTGAN_DATA", str(moved))
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_resume_with_the_drop_switched_off_trains_at_the_full_rates_again(runner, tmp_path, npz):
    """The rates live in the checkpoint: after the drop, --lr-drop-after 0 must set them back."""
    import tensorflow as tf

    run = tmp_path / "run"
    common = ["--data", str(npz), "--out", str(run), *TINY]
    # The drop is decided at each chunk's start: epoch 1 trains at the full rates, epoch 2 after the drop.
    assert runner.invoke(app, ["train", *common, "--recipe", "fast", "--clusters", "0", "--lr-drop-after", "1",
                               "--epochs", "2"]).exit_code == 0
    result = runner.invoke(app, ["train", *common, "--resume", "--epochs", "3", "--lr-drop-after", "0"])
    assert result.exit_code == 0, result.output

    def rates(epoch: int) -> list[float]:
        reader = tf.train.load_checkpoint(str(run / "checkpoints" / f"ckpt-{epoch}"))
        return sorted(float(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()
                      if "learning_rate" in name)

    lazy = 16 / 17  # the discriminator's rate under the fast recipe's lazy R1 (schedule.lazy_ratio)
    assert rates(2) == pytest.approx([1e-4 * lazy, 1e-4]) and rates(3) == pytest.approx([1e-3 * lazy, 1e-3])


def test_existing_runs_load_unchanged():
    """config.json as runs wrote it before the conditioning value: a conditional run of MNIST's
    digits without a recorded class count, and an unconditional one that recorded ten."""
    from mnistgan.config import RunConfig

    old_conditional = {"format_version": 1, "model": {"noise_dim": 100, "conditional": True}, "train": {}}
    labels = RunConfig.from_dict(old_conditional, "config.json").model.conditioning
    assert (labels.kind, labels.count, labels.choices()[-1]) == ("classes", 10, "9")
    old_plain = {"format_version": 1, "model": {"conditional": False, "num_classes": 10}, "train": {}}
    assert RunConfig.from_dict(old_plain, "config.json").model.conditioning == Conditioning()
    clustered = {"format_version": 1, "model": {"clusters": 3, "cluster_sizes": [5, 3, 2]}, "train": {}}
    assert RunConfig.from_dict(clustered, "config.json").model.conditioning == Conditioning(
        "clusters", 3, sizes=(5, 3, 2))


# #50: config.json stores the conditioning as one value (format 2); each run's old layout (format
# 1) reads as the same conditioning, and is written in the new one.
LAYOUTS = [
    ({"conditional": True, "num_classes": 3, "class_names": ["1", "3", "7"]},
     {"kind": "classes", "count": 3, "names": ["1", "3", "7"], "sizes": []}),
    ({"conditional": True}, {"kind": "classes", "count": 10, "names": [], "sizes": []}),  # mnistgan <= 0.4
    ({"clusters": 3, "cluster_sizes": [5, 3, 2]}, {"kind": "clusters", "count": 3, "names": [], "sizes": [5, 3, 2]}),
    ({"conditional": False, "clusters": 0}, {"kind": "none", "count": 0, "names": [], "sizes": []}),
    ({}, {"kind": "none", "count": 0, "names": [], "sizes": []}),
]


@pytest.mark.parametrize(("old", "stored"), LAYOUTS)
def test_config_json_stores_the_conditioning_as_one_value_and_reads_the_old_layout(old, stored):
    from mnistgan.config import RunConfig

    before = RunConfig.from_dict({"format_version": 1, "model": {"noise_dim": 100, **old}, "train": {}}, "old")
    now = RunConfig.from_dict({"format_version": 2, "model": {"noise_dim": 100, "conditioning": stored},
                               "train": {}}, "new")
    assert before.model.conditioning == now.model.conditioning
    written = json.loads(before.to_json())
    assert written["format_version"] == 2 and written["model"]["conditioning"] == stored
    assert not {"conditional", "clusters", "num_classes", "class_names", "cluster_sizes"} & set(written["model"])


@pytest.mark.parametrize(("count", "words"), [(1, "num_classes must be between 2 and 100, not 1"),
                                              (101, "num_classes must be between 2 and 100, not 101")])
def test_a_class_count_out_of_range_in_config_json_names_both_bounds(count, words):
    """#50: the upper bound was left out of the phrase ('must be at least 2, not 101')."""
    from mnistgan.config import RunConfig
    from mnistgan.errors import RunError

    with pytest.raises(RunError) as refused:
        RunConfig.from_dict({"format_version": 1, "model": {"conditional": True, "num_classes": count}, "train": {}},
                            "config.json")
    assert words in str(refused.value)

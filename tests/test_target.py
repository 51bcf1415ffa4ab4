"""Target config loading and the scope rule (gitignore-style globs)."""

from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.target import glob_match, load_target

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("simopt/netsim/**", "simopt/netsim/links.py", True),
        ("simopt/netsim/**", "simopt/netsim/sub/deep/x.py", True),
        ("simopt/netsim/**", "simopt/netsim", False),
        ("simopt/netsim/**", "simopt/netsimx/links.py", False),
        ("simopt/netsim/**", "other/simopt/netsim/links.py", False),
        ("**/test_*.py", "test_a.py", True),
        ("**/test_*.py", "a/b/test_a.py", True),
        ("a/**/b.py", "a/b.py", True),
        ("a/**/b.py", "a/x/y/b.py", True),
        ("a/**/b.py", "ab.py", False),
        ("*.py", "deep/down/mod.py", True),
        ("*.py", "mod.pyc", False),
        ("/*.py", "deep/mod.py", False),
        ("/*.py", "mod.py", True),
        ("pyproject.toml", "pyproject.toml", True),
        ("pyproject.toml", "sub/pyproject.toml", True),
        ("guards", "guards/oracle.py", True),
        ("guards/", "guards/oracle.py", True),
        ("src/*", "src/a/b.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("slow.py", "slow.pyx", False),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file/.txt", False),
        ("[ab].py", "a.py", True),
        ("[!ab].py", "a.py", False),
        ("[!ab].py", "c.py", True),
    ],
)
def test_glob_match(pattern, path, expected):
    assert glob_match(pattern, path) is expected


def test_flagship_scope():
    target = load_target(REPO)
    assert target.kind == "scenario"
    assert target.in_scope("simopt/netsim/routing.py")
    for path in ("guards/oracle.py", "scenarios/fattree.toml", "pyproject.toml", "simopt/cli.py", "tests/x.py"):
        assert not target.in_scope(path), path
    assert target.out_of_scope(["simopt/netsim/a.py", "guards/b.py"]) == ["guards/b.py"]


def test_protected_wins_over_editable(tmp_path):
    (tmp_path / "simopt.toml").write_text(
        'editable = ["src/**"]\nprotected = ["src/vendor/**"]\nbench = "python b.py"\nguard_command = "pytest"\n'
    )
    target = load_target(tmp_path)
    assert target.kind == "command"
    assert target.in_scope("src/a.py")
    assert not target.in_scope("src/vendor/a.py")
    assert target.touches("src/vendor/a.py")
    assert not target.touches("README.md")


def test_simopt_toml_wins_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.simopt]\neditable = ["x/**"]\nbench = "b"\nguard = "g"\n')
    (tmp_path / "simopt.toml").write_text('editable = ["y/**"]\nbench = "b"\nguard = "g"\n')
    assert load_target(tmp_path).editable == ("y/**",)


@pytest.mark.parametrize(
    "text, message",
    [
        ('editable = ["a"]\nbench = "b"\nguard = "g"\ntypo = 1\n', "unknown simopt key"),
        ('editable = []\nbench = "b"\nguard = "g"\n', "at least one glob"),
        ('editable = ["a"]\nguard = "g"\n', "exactly one of"),
        ('editable = ["a"]\nbench = "b"\nengine = "e"\nscenarios = "s"\nguard = "g"\n', "exactly one of"),
        ('editable = ["a"]\nengine = "e"\nguard = "g"\n', "scenarios"),
        ('editable = ["a"]\nbench = "b"\n', "guard"),
        ('editable = ["a"]\nengine = "e"\nscenarios = "s"\nguard = "g"\n', "simopt's own guard suite"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nsmoke_timeout = -1\n', "smoke_timeout(=-1)"),
        ('editable = "a"\nbench = "b"\nguard = "g"\n', "list"),
        ("editable = [", "cannot read"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nbench_clock = "gpu"\n', "bench_clock(='gpu')"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nequal_output = "run"\n', "must contain {seed}"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nequal_output_seeds = [1]\n', "need `equal_output`"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nequal_output = "r {seed}"\nequal_output_seeds = [-1]\n',
         "must be a list of integers >= 0"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nequal_output = "r {seed}"\nequal_output_fresh = 0\n',
         "needs seeds"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nequal_output = "r {seed}"\nequal_output_ignore = ["("]\n',
         "not a regular expression"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nenv = { "1X" = "y" }\n', "env must be a table"),
        ('editable = ["a"]\nbench = "b"\nguard = "g"\nenv = { X = 1 }\n', "env must be a table"),
        ('editable = ["a"]\nengine = "e"\nscenarios = "s"\npython = "p"\n', "are for command targets"),
    ],
)
def test_bad_configs_are_user_errors(tmp_path, text, message):
    (tmp_path / "simopt.toml").write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_target(tmp_path)


def test_missing_config(tmp_path):
    with pytest.raises(UserError, match="simopt init"):
        load_target(tmp_path)


def test_command_target_environment_and_equality_keys(tmp_path):
    (tmp_path / "simopt.toml").write_text(
        'editable = ["src/**"]\nbench = "python b.py"\nguard_command = "pytest"\npython = ".venv/bin/python"\n'
        'env = { PYTHONPATH = "src", MODE = "fast" }\nequal_output = "python run.py --seed {seed}"\n'
        'equal_output_seeds = [1, 7]\nequal_output_ignore = ["^took .*$"]\n'
    )
    target = load_target(tmp_path)
    assert target.interpreter == tmp_path.resolve() / ".venv/bin/python"
    assert target.env == (("MODE", "fast"), ("PYTHONPATH", "src"))
    assert target.equal_output_seeds == (1, 7) and target.equal_output_fresh == 3
    assert target.equal_output_ignore == ("^took .*$",)

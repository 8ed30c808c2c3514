"""``python -m lsmrl --help`` lists every command, and every command has its own ``--help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lsmrl.cli import COMMANDS, main


def test_top_level_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "lsmrl", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m lsmrl " + command in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "<command>" in capsys.readouterr().out


def test_user_errors_are_printed_without_traceback(tmp_path, capsys):
    code = main(["stats", "--dataset", "hitsz-vcm", "--data-root", str(tmp_path / "missing")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err

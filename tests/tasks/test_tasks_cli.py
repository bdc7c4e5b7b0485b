"""`python -m tasks` (issue 25 point 2, issue 27 point 4): jsonargparse subcommands with --config /
--print_config, the documented spellings, and `list` / `--help` without the training stack's imports."""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import ROOT

from tasks.__main__ import main


def test_list_and_help_do_not_import_torch_or_sklearn():
    code = (
        "import sys, io, contextlib\n"
        "from tasks.__main__ import main\n"
        "for argv in (['list'], ['--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'lightning') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr[-2000:]


def test_report_takes_positional_folders_print_config_and_config(tmp_path, capsys):
    try:
        main(["report", "--print_config", "runs/a", "runs/b"])
    except SystemExit:
        pass
    saved = capsys.readouterr().out
    assert yaml.safe_load(saved) == {"runs": ["runs/a", "runs/b"]}
    (tmp_path / "report.yaml").write_text(yaml.safe_dump({"runs": [str(tmp_path / "nope")]}))
    assert main(["report", "--config", str(tmp_path / "report.yaml")]) == 2
    assert "nope" in capsys.readouterr().err


def test_evaluate_anomaly_keeps_its_documented_flags(capsys):
    try:
        main(
            [
                "evaluate-anomaly",
                "--annotation",
                "a.txt",
                "--scores",
                "s.json",
                "--frame-counts",
                "c.txt",
                "--print_config",
            ]
        )
    except SystemExit:
        pass
    assert yaml.safe_load(capsys.readouterr().out)["frame_counts"] == "c.txt"

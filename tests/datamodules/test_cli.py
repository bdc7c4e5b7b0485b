"""`python -m datamodules` (issue 25 point 2, issue 27 point 3): jsonargparse commands with --config /
--print_config, the documented spellings, and one-line errors."""

from __future__ import annotations

import yaml

from datamodules.__main__ import cli, main


def test_a_missing_list_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "k.txt"
    assert cli(["splits", "kshot", "--list", str(tmp_path / "train1.txt"), "--k", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: annotation list not found: {tmp_path / 'train1.txt'}")
    assert not out.exists()


def test_print_config_then_config_reruns_the_same_command(tmp_path, capsys):
    src = tmp_path / "train.txt"
    src.write_text("".join(f"c{c}_{i}.avi {c}\n" for c in range(3) for i in range(4)))
    argv = ["splits", "kshot", "--list", str(src), "--k", "2", "--seed", "3", "--out", str(tmp_path / "a.txt")]
    try:
        main([*argv, "--print_config"])
    except SystemExit:
        pass
    saved = yaml.safe_load(capsys.readouterr().out)
    assert saved == {"list": str(src), "k": 2, "out": str(tmp_path / "a.txt"), "seed": 3, "format": "auto"}
    assert main(argv) == 0
    (tmp_path / "kshot.yaml").write_text(yaml.safe_dump({**saved, "out": str(tmp_path / "b.txt")}))
    assert main(["splits", "kshot", "--config", str(tmp_path / "kshot.yaml")]) == 0
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()


def test_documented_spellings_still_parse(capsys):
    argv = ["validate", "--list", "l.txt", "--labels", "c.csv", "--root-layout", "by-name", "--skip-decode", "--json"]
    try:
        main([*argv, "--print_config"])
    except SystemExit:
        pass
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["root_layout"] == "by-name" and shown["skip_decode"] is True and shown["json"] is True
    try:
        main(
            ["splits", "base-novel", "--labels", "c.csv", "--list", "a.txt", "--list", "b.txt", "--out-dir", "o"]
            + ["--print_config"]
        )
    except SystemExit:
        pass
    assert yaml.safe_load(capsys.readouterr().out)["list"] == ["a.txt", "b.txt"]

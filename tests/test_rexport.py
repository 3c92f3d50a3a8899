"""The bridge back to R: a self-contained metafor script that names the same settings.

R is not needed: the script's syntax is checked by a small R tokenizer here, and
its settings read back from it. Where ``Rscript`` with metafor is installed, the
script is also run, and metafor must agree with metaan within 1e-6.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.errors import InputError

HERE = Path(__file__).resolve().parent
BCG = json.loads((HERE / "reference" / "metafor" / "bcg_OR.json").read_text(encoding="utf-8"))

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|"(?:[^"\\\n]|\\.)*"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?
    |[A-Za-z.][A-Za-z0-9._]*|<-|==|!=|>=|<=|\|\||&&|[-+*/^(){}\[\],=<>!$:~|&]""",
    re.VERBOSE,
)


def r_tokens(script: str) -> list[str]:
    """Tokens of an R script, refusing any text that is not R (an unclosed string,
    a stray character) and checking that brackets pair up."""
    tokens, position, stack = [], 0, []
    pairs = {")": "(", "]": "[", "}": "{"}
    while position < len(script):
        match = _TOKEN.match(script, position)
        assert match is not None, f"not R at {script[position : position + 40]!r}"
        token = match.group()
        position = match.end()
        if token.strip() and not token.startswith("#"):
            tokens.append(token)
            if token in "([{":
                stack.append(token)
            elif token in pairs:
                assert stack and stack.pop() == pairs[token], f"unpaired {token}"
    assert not stack, f"unclosed {stack}"
    return tokens


def bcg_csv(tmp_path: Path) -> Path:
    lines = ["author,year,tpos,tneg,cpos,cneg"] + [
        f'"{r["author"]}",{r["year"]},{r["tpos"]},{r["tneg"]},{r["cpos"]},{r["cneg"]}'
        for r in BCG["data"]
    ]
    path = tmp_path / "bcg.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


FLAGS = ["--measure", "OR", "--ai", "tpos", "--bi", "tneg", "--ci", "cpos", "--di", "cneg"]


@pytest.mark.parametrize(
    ("method", "test", "call"),
    [
        (
            "REML",
            "knha",
            'rma(yi, vi, data = dat, method = "REML", test = "knha", level = 90.0, '
            "control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000))",
        ),
        ("DL", "z", 'rma(yi, vi, data = dat, method = "DL", test = "z", level = 90.0)'),
        (
            "MH",
            "z",
            'rma.mh(ai = ai, bi = bi, ci = ci, di = di, data = dat, measure = "OR", level = 90.0)',
        ),
        ("PETO", "z", "rma.peto(ai = ai, bi = bi, ci = ci, di = di, data = dat, level = 90.0)"),
    ],
)
def test_the_script_parses_and_names_the_same_settings(
    tmp_path: Path, method: str, test: str, call: str
) -> None:
    script = tmp_path / "bcg.R"
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(bcg_csv(tmp_path)),
            "--r",
            str(script),
            *FLAGS,
            "--method",
            method,
            "--test",
            test,
            "--level",
            "90",
        ],
    )
    assert result.exit_code == 0, result.stderr
    text = script.read_text(encoding="utf-8")
    r_tokens(text)
    assert f"res <- {call}" in text
    assert "library(metafor)" in text
    if method not in ("MH", "PETO"):
        assert (
            'dat <- escalc(measure = "OR", ai = ai, bi = bi, ci = ci, di = di, data = dat, '
            'add = 0.5, to = "only0", drop00 = FALSE)'
        ) in text
    # The data are inline: every trial's counts, exactly.
    assert "tpos" not in text.split("dat <- data.frame(")[1].split(")")[0]
    counts = re.search(r"ai = c\(([^)]*)\)", text)
    assert counts is not None
    assert [float(x) for x in counts.group(1).split(",")] == [r["tpos"] for r in BCG["data"]]
    assert "Aronson" in text and "Ferguson & Simes" in text


def test_to_r_from_python_carries_yi_and_vi_and_each_number_it_compares() -> None:
    res = metaan.fit(yi=np.array([0.1, 0.3, -0.2, 0.5]), vi=np.array([0.04, 0.02, 0.05, 0.03]))
    text = metaan.to_r(res)
    tokens = r_tokens(text)
    assert 'res <- rma(yi, vi, data = dat, method = "REML", test = "z", level = 95.0, ' in text
    assert "pred <- predict(res)" in text
    ours = re.search(r"metaan <- c\(([^)]*)\)", text)
    assert ours is not None
    assert float(ours.group(1).split(",")[0]) == res.estimate  # 17 significant digits
    assert tokens.count("quit") == 1


def test_a_result_writes_its_own_r_script() -> None:
    res = metaan.fit(yi=np.array([0.1, 0.3, -0.2, 0.5]), vi=np.array([0.04, 0.02, 0.05, 0.03]))
    assert res.to_r() == metaan.to_r(res)
    assert res.to_r(tolerance=1e-8) == metaan.to_r(res, tolerance=1e-8) != res.to_r()


def test_labels_with_quotes_backslashes_and_line_breaks_stay_one_r_string() -> None:
    res = metaan.fit(
        yi=np.array([0.1, 0.3]), vi=np.array([0.04, 0.02]), labels=['O"Brien \\ 2001', "Li\n2002"]
    )
    text = metaan.to_r(res)
    tokens = r_tokens(text)
    assert '"O\\"Brien \\\\ 2001"' in tokens and '"Li\\n2002"' in tokens


def test_a_mantel_haenszel_fit_without_its_counts_is_refused() -> None:
    a, n1, c, n2 = (
        np.array(v, dtype=float)
        for v in ([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220])
    )
    res = metaan.fit_mh(ai=a, n1i=n1, ci=c, n2i=n2, measure="OR")
    with pytest.raises(InputError, match="2x2 counts"):
        metaan.to_r(res)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_metafor_reproduces_the_exports_within_1e_6(tmp_path: Path) -> None:
    data = bcg_csv(tmp_path)
    scripts = []
    for method, test in (("REML", "knha"), ("PM", "z"), ("EE", "z"), ("MH", "z"), ("PETO", "z")):
        script = tmp_path / f"bcg_{method}.R"
        args = ["export", str(data), "--r", str(script), *FLAGS, "--method", method]
        result = CliRunner().invoke(main, [*args, "--test", test])
        assert result.exit_code == 0, result.stderr
        scripts.append(str(script))
    # One R process for every script: loading metafor is the slow part.
    loop = "for (f in commandArgs(TRUE)) source(f, echo = FALSE, print.eval = TRUE)"
    run = subprocess.run(
        ["Rscript", "-e", loop, *scripts], capture_output=True, text=True, check=False
    )
    if "there is no package called" in run.stderr:
        pytest.skip("R has no metafor")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("metaan and metafor agree within 1e-06") == len(scripts)

"""simopt report on recorded fixture sessions: report.md, valid PNG plots, self-contained HTML."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from simopt.history import append_record
from cli_helpers import run_cli, png_size

FIXTURES = Path(__file__).parent / "fixtures" / "histories"


@pytest.fixture
def repo(tmp_path):
    """A copy of the fixture sessions, so reports are written outside the source tree."""
    shutil.copytree(FIXTURES / "results", tmp_path / "results")
    return tmp_path


def test_report_writes_markdown_and_plots(repo):
    code, out, err = run_cli("report", "alpha", "--repo", str(repo))
    folder = repo / "results" / "alpha"
    assert code == 0 and err == ""
    assert out.splitlines() == [f"wrote {folder / name}" for name in ("report.md", "progress.png", "stages.png")]
    for name in ("progress.png", "stages.png"):
        width, height = png_size(folder / name)
        assert 800 <= width <= 2400 and 400 <= height <= 1600
        assert (folder / name).stat().st_size > 10_000
    report = (folder / "report.md").read_text()
    assert report.startswith("# simopt report: alpha\n")
    assert "| cumulative speedup | 1.449x [1.429x, 1.471x] |" in report
    assert "| measured by | checkpoint after 10 |" in report
    assert "| experiments to 50% / 90% of the best | 2 / 9 |" in report
    assert "![speedup per experiment in session alpha](progress.png)" in report
    assert "![time per stage in session alpha](stages.png)" in report
    assert "## Kept changes (3)" in report
    assert (
        "| 2 | cache shortest-path tables per destination | 1.250x [1.220x, 1.282x] | 222222222222"
        " | commit not in this repository | simopt/netsim/routing.py |"
    ) in report
    assert "## Discarded changes by reason (9)" in report
    groups = re.findall(r"^### (\w+) \((\d+)\)$", report, flags=re.M)
    assert groups == [
        ("discard", "2"), ("scope_violation", "1"), ("crash", "1"), ("timeout", "1"),
        ("different_output", "1"), ("guard_fail", "1"), ("holdout_fail", "1"), ("no_proposal", "1"),
    ]
    assert "| 8 | batch transmissions per port | 1.040 [1.020, 1.060] | slower by 4.0% |" in report
    assert not (folder / "report.html").exists()


def test_report_html_is_self_contained(repo):
    code, out, _ = run_cli("report", "alpha", "--repo", str(repo), "--html")
    page = (repo / "results" / "alpha" / "report.html").read_text()
    assert code == 0 and out.splitlines()[-1].endswith("report.html")
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 2  # base64 of the PNG signature
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<h1>simopt report: alpha</h1>" in page
    assert "<td>1.449x [1.429x, 1.471x]</td>" in page


def test_report_on_a_corrupt_running_session_warns_and_lists_the_skipped_lines(repo):
    code, _, err = run_cli("report", "beta", "--repo", str(repo))
    report = (repo / "results" / "beta" / "report.md").read_text()
    assert code == 0
    assert len(err.splitlines()) == 2 and all("skipped a corrupt line" in line for line in err.splitlines())
    assert "## Warnings" in report
    assert report.rstrip().endswith("beta/history.jsonl:8: skipped a corrupt line")
    assert "| cumulative speedup | 1.681x |" in report


def test_report_of_a_session_without_experiments(repo):
    code, _, _ = run_cli("report", "empty", "--repo", str(repo), "--html")
    folder = repo / "results" / "empty"
    report = (folder / "report.md").read_text()
    assert code == 0
    assert "No change was kept." in report and "Nothing was discarded." in report
    png_size(folder / "progress.png")
    png_size(folder / "stages.png")


def test_report_markdown_escapes_pipes_in_descriptions(tmp_path):
    history = tmp_path / "results" / "p" / "history.jsonl"
    append_record(history, {"type": "session", "tag": "p", "base_commit": "a" * 40})
    append_record(history, {
        "type": "experiment", "n": 1, "status": "discard", "description": "a | b\nc",
        "metric": None, "asi": {"rollback_reason": "x|y"},
    })
    assert run_cli("report", "p", "--repo", str(tmp_path))[0] == 0
    assert "| 1 | a \\| b c | — | x\\|y |" in (history.parent / "report.md").read_text()


def test_report_shows_the_diffstat_of_kept_commits_in_the_repo(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.name", "T")
    git("config", "user.email", "t@example.com")
    (tmp_path / "engine.py").write_text("a\nb\n")
    git("add", "engine.py")
    git("commit", "-q", "-m", "base")
    base = git("rev-parse", "HEAD")
    (tmp_path / "engine.py").write_text("a\nB\nc\n")
    git("commit", "-q", "-am", "keep")
    kept = git("rev-parse", "HEAD")
    history = tmp_path / "results" / "g" / "history.jsonl"
    append_record(history, {"type": "session", "tag": "g", "base_commit": base, "branch": "main"})
    append_record(history, {
        "type": "experiment", "n": 1, "status": "keep", "parent": base, "commit": kept,
        "description": "faster engine", "metric": {"ratio": 0.9, "ci": [0.85, 0.95]},
        "changed_paths": ["engine.py"],
    })
    assert run_cli("report", "g", "--repo", str(tmp_path))[0] == 0
    report = (history.parent / "report.md").read_text()
    assert f"| {kept[:12]} | 1 file changed, 2 insertions(+), 1 deletion(-) | engine.py |" in report


def test_a_report_that_cannot_be_written_is_one_error(repo):
    (repo / "results" / "alpha" / "report.md").mkdir()
    code, out, err = run_cli("report", "alpha", "--repo", str(repo))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("simopt: error: cannot write the report to ") and "report.md: Is a directory" in err

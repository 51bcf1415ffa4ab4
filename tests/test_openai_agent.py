"""The openai proposer against a scripted model on a local OpenAI-compatible server.

The real `openai` client talks real HTTP to tests/llm_server.py; the assertions look at what the
server received (the tool results the model was shown), not only at return values.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llm_server import LLMServer, error, text, tool_calls, tool_results
from simopt.agents.base import Brief, NoProposal, ProposerExhausted, ProposerUnavailable
from simopt.agents.openai_agent import DEFAULT_PROGRAM, OpenAIProposer
from simopt.cli import Env
from simopt.cli import main as cli_main
from simopt.errors import UserError

SLOW_SUM = '''def sum_of_squares(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
'''
FAST_BODY = "    return (n - 1) * n * (2 * n - 1) // 6\n"
SECRET = "TOP SECRET 42\n"
PRICES = {"scripted-model": {"prompt": 1.0, "completion": 2.0}}


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    (root / "simopt" / "netsim").mkdir(parents=True)
    (root / "simopt" / "netsim" / "hot.py").write_text(SLOW_SUM)
    (root / "guards").mkdir()
    (root / "guards" / "test_oracle.py").write_text("def test_oracle():\n    assert True\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    return root


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch):
    """Point the environment at a scripted server: `endpoint(steps)` starts one."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    monkeypatch.delenv("SIMOPT_PRICES", raising=False)
    servers = []

    def start(steps) -> LLMServer:
        server = LLMServer(steps).__enter__()
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def make_brief(**overrides) -> Brief:
    fields = dict(goal="make the fattree scenario faster", experiment=4, scenario="fattree",
                  editable=("simopt/netsim/**",), protected=("guards/**", "scenarios/**"),
                  best_commit="0123456789abcdef", best_speedup=1.07)
    fields.update(overrides)
    return Brief(**fields)


def proposer(tmp_path: Path, **options) -> OpenAIProposer:
    options.setdefault("model", "scripted-model")
    options.setdefault("backoff_s", 0.001)
    return OpenAIProposer(repo=tmp_path, **options)


def call_ids(body) -> list[str]:
    return [call["id"] for message in body["messages"] if message.get("tool_calls") for call in message["tool_calls"]]


def test_reads_edits_and_submits_a_speedup(tmp_path, worktree, endpoint):
    def edit_from_what_was_read(body):
        shown = tool_results(body)["call_0"]
        body_lines = [line[7:] for line in shown.splitlines()[2:6]]  # file lines 2-5, numbers cut off
        return tool_calls(("edit_file", {"path": "simopt/netsim/hot.py",
                                         "old_text": "\n".join(body_lines) + "\n", "new_text": FAST_BODY}))

    server = endpoint([
        tool_calls(("read_file", {"path": "simopt/netsim/hot.py"})),
        edit_from_what_was_read,
        tool_calls(("submit", {"description": "closed-form sum of squares",
                               "hypothesis": "O(1) instead of a loop, same integers"}), usage=(300, 40)),
    ])
    result = proposer(tmp_path, prices=PRICES).propose(make_brief(), worktree)

    assert result.description == "closed-form sum of squares"
    assert result.hypothesis == "O(1) instead of a loop, same integers"
    assert result.extra["changed_paths"] == ["simopt/netsim/hot.py"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (500, 80)
    assert result.usage.cost_usd == pytest.approx((500 * 1.0 + 80 * 2.0) / 1e6)
    spec = importlib.util.spec_from_file_location("hot", worktree / "simopt" / "netsim" / "hot.py")
    hot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hot)
    assert "for i in range" not in (worktree / "simopt" / "netsim" / "hot.py").read_text()
    assert [hot.sum_of_squares(n) for n in range(50)] == [sum(i * i for i in range(n)) for n in range(50)]

    first, second, third = server.requests
    assert first["model"] == "scripted-model"
    assert first["messages"][0] == {"role": "system", "content": DEFAULT_PROGRAM.read_text()}
    assert "simopt/netsim/hot.py" in first["messages"][1]["content"]
    assert {tool["function"]["name"] for tool in first["tools"]} >= {"read_file", "edit_file", "submit", "profile_scenario"}
    assert "    4          total += i * i" in tool_results(second)["call_0"]
    assert tool_results(third)["call_0"].startswith("edited simopt/netsim/hot.py")


def test_writing_a_guard_file_is_refused_and_the_model_is_told(tmp_path, worktree, endpoint):
    guard = worktree / "guards" / "test_oracle.py"
    before = guard.read_text()
    server = endpoint([
        tool_calls(("write_file", {"path": "guards/test_oracle.py", "content": "def test_oracle():\n    pass\n"}),
                   ("edit_file", {"path": "guards/test_oracle.py", "old_text": "assert True", "new_text": "pass"}),
                   ("read_file", {"path": "guards/test_oracle.py"})),
        text("I cannot weaken the guards, so I stop here."),
    ])
    with pytest.raises(NoProposal) as raised:
        proposer(tmp_path).propose(make_brief(), worktree)

    assert guard.read_text() == before
    results = tool_results(server.requests[1])
    for call in ("call_0", "call_1"):
        assert results[call].startswith("error: refused: guards/test_oracle.py is protected")
        assert "'guards/**'" in results[call]
    assert "assert True" in results["call_2"]  # reading a protected file is allowed
    assert "without submitting" in str(raised.value)
    assert raised.value.usage.prompt_tokens == 200


def test_leaving_the_worktree_is_refused(tmp_path, worktree, endpoint):
    (worktree / "simopt" / "netsim" / "escape").symlink_to(tmp_path)
    server = endpoint([
        tool_calls(("read_file", {"path": "../secret.txt"}),
                   ("read_file", {"path": str(tmp_path / "secret.txt")}),
                   ("read_file", {"path": "simopt/netsim/escape/secret.txt"}),
                   ("write_file", {"path": "simopt/netsim/escape/secret.txt", "content": "overwritten"}),
                   ("list_files", {"path": "simopt/netsim/escape"}),
                   ("search", {"pattern": "outside", "path": "simopt/netsim/escape"})),
        text("No way out."),
    ])
    with pytest.raises(NoProposal):
        proposer(tmp_path).propose(make_brief(), worktree)

    results = tool_results(server.requests[1])
    assert len(results) == 6
    assert all(result.startswith("error: ") for result in results.values())
    assert "'..' is refused" in results["call_0"]
    assert "absolute paths are refused" in results["call_1"]
    assert "outside the worktree" in results["call_2"]
    assert "outside the worktree" in results["call_3"]
    assert (tmp_path / "secret.txt").read_text() == SECRET
    assert not any("TOP SECRET" in result for result in results.values())


def test_garbage_tool_calls_are_answered_with_errors(tmp_path, worktree, endpoint):
    server = endpoint([
        tool_calls(("delete_everything", {"path": "."}),
                   ("read_file", "{not json"),
                   ("read_file", "[1, 2]"),
                   ("read_file", {"start_line": 3}),
                   ("read_file", {"path": "simopt/netsim/hot.py", "start_line": "two"}),
                   ("submit", "description=fast")),
        text("sorry"),
    ])
    with pytest.raises(NoProposal):
        proposer(tmp_path).propose(make_brief(), worktree)

    results = tool_results(server.requests[1])
    assert "unknown tool 'delete_everything'" in results["call_0"]
    assert "not valid JSON" in results["call_1"]
    assert "must be a JSON object" in results["call_2"]
    assert "needs the argument 'path'" in results["call_3"]
    assert "'start_line' must be of type integer" in results["call_4"]
    assert "not valid JSON" in results["call_5"]
    assert all(value.startswith("error: ") for value in results.values())
    assert set(call_ids(server.requests[1])) == set(results)


def test_tool_calls_without_a_name_are_answered_with_errors(tmp_path, worktree, endpoint):
    nameless = {"role": "assistant", "content": None,
                "tool_calls": [{"id": "call_0", "type": "function"},
                               {"type": "function", "function": {"name": None, "arguments": None}}]}
    server = endpoint([(200, {"choices": [{"index": 0, "message": nameless}]}), text("sorry")])
    with pytest.raises(NoProposal):
        proposer(tmp_path).propose(make_brief(), worktree)
    echoed = server.requests[1]["messages"][-3]
    assert [call["id"] for call in echoed["tool_calls"]] == ["call_0", "call_1"]
    results = tool_results(server.requests[1])
    assert set(results) == {"call_0", "call_1"}
    assert all(result.startswith("error: unknown tool ''") for result in results.values())


def test_answers_that_are_not_chat_completions_are_retried(tmp_path, worktree, endpoint):
    server = endpoint([(200, b"<html>bad gateway</html>"), (200, {"object": "chat.completion", "choices": []}),
                       text("nothing worth changing")])
    with pytest.raises(NoProposal, match="nothing worth changing"):
        proposer(tmp_path, retries=2).propose(make_brief(), worktree)
    assert len(server.requests) == 3

    endpoint([(200, {"choices": None})] * 2)
    with pytest.raises(ProposerUnavailable, match="has no choices, still failing after 2 attempts"):
        proposer(tmp_path, retries=1).propose(make_brief(), worktree)


def test_server_errors_are_retried_then_the_proposer_is_unavailable(tmp_path, worktree, endpoint):
    server = endpoint([error(500)] * 2 + [error(429, "slow down")] * 2)
    with pytest.raises(ProposerUnavailable, match="HTTP 429.*after 4 attempts"):
        proposer(tmp_path, retries=3).propose(make_brief(), worktree)
    assert len(server.requests) == 4


def test_transient_errors_are_retried_until_the_model_answers(tmp_path, worktree, endpoint):
    server = endpoint([
        error(429), error(503),
        tool_calls(("write_file", {"path": "simopt/netsim/hot.py", "content": "def sum_of_squares(n):\n" + FAST_BODY})),
        error(500),
        tool_calls(("submit", {"description": "closed form"})),
    ])
    result = proposer(tmp_path, retries=2).propose(make_brief(), worktree)
    assert result.description == "closed form"
    assert result.hypothesis is None
    assert len(server.requests) == 5
    assert result.extra["requests"] == 2


def test_an_unreachable_endpoint_makes_the_proposer_unavailable(tmp_path, worktree, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ProposerUnavailable, match="APIConnectionError"):
        proposer(tmp_path, retries=1).propose(make_brief(), worktree)


def test_authentication_errors_are_not_retried(tmp_path, worktree, endpoint):
    server = endpoint([error(401, "bad key")] * 3)
    with pytest.raises(ProposerUnavailable, match="HTTP 401"):
        proposer(tmp_path).propose(make_brief(), worktree)
    assert len(server.requests) == 1


def test_an_answer_without_a_proposal_is_no_proposal(tmp_path, worktree, endpoint):
    server = endpoint([text("The code is already optimal.", usage=(70, 9))])
    with pytest.raises(NoProposal, match="already optimal") as raised:
        proposer(tmp_path).propose(make_brief(), worktree)
    assert (raised.value.usage.prompt_tokens, raised.value.usage.completion_tokens) == (70, 9)
    assert len(server.requests) == 1


def test_a_model_that_edits_but_forgets_to_submit_is_reminded(tmp_path, worktree, endpoint):
    server = endpoint([
        tool_calls(("write_file", {"path": "simopt/netsim/hot.py", "content": "def sum_of_squares(n):\n" + FAST_BODY})),
        text("Done."),
        tool_calls(("submit", {"description": "closed form", "hypothesis": "no loop"})),
    ])
    result = proposer(tmp_path).propose(make_brief(), worktree)
    assert result.description == "closed form"
    reminder = server.requests[2]["messages"][-1]
    assert reminder["role"] == "user" and "did not call submit" in reminder["content"]


def test_submitting_without_a_change_is_refused(tmp_path, worktree, endpoint):
    original = (worktree / "simopt" / "netsim" / "hot.py").read_text()
    server = endpoint([
        tool_calls(("write_file", {"path": "simopt/netsim/hot.py", "content": original}),
                   ("submit", {"description": "rewrote hot.py"})),
        text("Nothing to propose."),
    ])
    with pytest.raises(NoProposal):
        proposer(tmp_path).propose(make_brief(), worktree)
    assert "nothing in the worktree differs" in tool_results(server.requests[1])["call_1"]


def test_the_tool_call_limit_ends_the_experiment(tmp_path, worktree, endpoint):
    server = endpoint([tool_calls(("list_files", {}))] * 5)
    with pytest.raises(NoProposal, match="its 4 tool calls"):
        proposer(tmp_path, max_tool_calls=4).propose(make_brief(), worktree)
    assert len(server.requests) == 4
    assert "3 tool call(s) left" in tool_results(server.requests[1])["call_0"]
    assert "1 tool call(s) left" in tool_results(server.requests[3])["call_0"]


def test_the_token_limit_ends_the_experiment(tmp_path, worktree, endpoint):
    endpoint([tool_calls(("list_files", {}), usage=(600, 10))] * 3)
    with pytest.raises(NoProposal, match="1220 tokens"):
        proposer(tmp_path, max_tokens=1000).propose(make_brief(), worktree)


def test_the_session_cost_limit_stops_the_session(tmp_path, worktree, endpoint):
    server = endpoint([tool_calls(("list_files", {}), usage=(400_000, 0))] * 3)
    agent = proposer(tmp_path, prices=PRICES, max_cost_usd=0.5, max_tokens=10**7)
    with pytest.raises(NoProposal, match="cost limit"):
        agent.propose(make_brief(), worktree)
    assert agent.spent_usd == pytest.approx(0.8)
    with pytest.raises(ProposerExhausted, match="cost limit"):
        agent.propose(make_brief(experiment=5), worktree)
    assert len(server.requests) == 2


def test_a_resumed_session_counts_what_it_already_spent(tmp_path, worktree, endpoint):
    from simopt.agents.registry import make_proposer

    server = endpoint([tool_calls(("list_files", {}))])
    agent = make_proposer("openai", repo=tmp_path, model="gpt-4.1", max_cost_usd=1.0, spent_usd=1.25)
    with pytest.raises(ProposerExhausted, match=r"\$1\.2500 of \$1\.00"):
        agent.propose(make_brief(), worktree)
    assert server.requests == []


def test_the_brief_carries_recent_experiments_and_their_evidence(tmp_path, worktree, endpoint):
    recent = (
        {"n": 2, "status": "keep", "description": "cache routes", "metric": {"ratio": 0.91, "ci": [0.9, 0.92]}},
        {"n": 3, "status": "guard_fail", "description": "fattree-only routing", "hypothesis": "skip BFS",
         "asi": {"rollback_reason": "guard test_routing failed on a ring", "next_action_hint": "keep the generic path",
                 "failures": [{"test": "test_routing", "counterexample": "x" * 1000}]}},
    )
    server = endpoint([text("nothing")])
    with pytest.raises(NoProposal):
        proposer(tmp_path).propose(make_brief(recent=recent), worktree)
    brief = server.requests[0]["messages"][1]["content"]
    assert "#2 keep (time ratio 0.910, interval [0.9, 0.92]): cache routes" in brief
    assert "#3 guard_fail: fattree-only routing" in brief
    assert "hypothesis: skip BFS" in brief
    assert "rollback_reason: guard test_routing failed on a ring" in brief
    assert "next_action_hint: keep the generic path" in brief
    assert "x" * 1000 not in brief and "x" * 300 in brief
    assert "Current best: commit 0123456789ab, 1.070x" in brief
    assert "guards/test_oracle.py" not in brief.split("## Editable files")[1]


def test_a_program_file_replaces_the_default(tmp_path, worktree, endpoint):
    program = tmp_path / "program.md"
    program.write_text("Only ever touch the link model.\n")
    server = endpoint([text("nothing")])
    with pytest.raises(NoProposal):
        proposer(tmp_path, program=program).propose(make_brief(), worktree)
    assert server.requests[0]["messages"][0]["content"] == "Only ever touch the link model.\n"


def test_missing_configuration_is_a_user_error(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "SIMOPT_PRICES"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="OPENAI_API_KEY .* or OPENAI_BASE_URL"):
        OpenAIProposer(repo=tmp_path, model="gpt-4o")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(UserError, match="--model"):
        OpenAIProposer(repo=tmp_path)
    with pytest.raises(UserError, match="--max-cost needs a price for model 'my-local-model'"):
        OpenAIProposer(repo=tmp_path, model="my-local-model", max_cost_usd=1.0)
    with pytest.raises(UserError, match="cannot read the program file"):
        OpenAIProposer(repo=tmp_path, model="gpt-4o", program=tmp_path / "missing.md")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-4o-2024-08-06")
    agent = OpenAIProposer(repo=tmp_path, max_cost_usd=1.0)
    assert agent.price.prompt == 2.50


@pytest.mark.parametrize("url", ["notaurl", "localhost:11434/v1", "ftp://host/v1", "http://", "http://host:99999/v1",
                                 "http://[::1/v1"])
def test_a_malformed_endpoint_is_a_user_error_up_front(tmp_path, monkeypatch, url):
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(UserError, match=r"OPENAI_BASE_URL\(=.*\) must be an http:// or https:// URL with a host"):
        OpenAIProposer(repo=tmp_path, model="m")


def test_importing_the_proposer_does_not_import_openai():
    code = "import sys, simopt.agents.openai_agent; print('openai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_conversation_the_loop_gave_up_on_stops_touching_the_worktree(tmp_path, worktree, endpoint):
    newer: dict[str, Exception] = {}

    def next_experiment_starts_meanwhile(body):
        def propose_again():
            try:
                agent.propose(make_brief(experiment=5), worktree)
            except NoProposal as error:
                newer["error"] = error

        thread = threading.Thread(target=propose_again)
        thread.start()
        thread.join()
        return tool_calls(("write_file", {"path": "simopt/netsim/hot.py", "content": "stale = True\n"}))

    endpoint([next_experiment_starts_meanwhile, text("nothing to do")])
    agent = proposer(tmp_path)
    with pytest.raises(NoProposal, match="superseded"):
        agent.propose(make_brief(), worktree)
    assert "nothing to do" in str(newer["error"])
    assert (worktree / "simopt" / "netsim" / "hot.py").read_text() == SLOW_SUM


TINY_REPO = Path(__file__).parent / "fixtures" / "tinyrepo" / "repo"


def _loop_for_command_targets_landed() -> bool:
    if importlib.util.find_spec("simopt.session") is None or not TINY_REPO.is_dir():
        return False
    import simopt.measure

    return hasattr(simopt.measure, "compare_commands")


needs_session = pytest.mark.skipif(not _loop_for_command_targets_landed(),
                                   reason="the optimize loop for command targets (simopt.session, "
                                          "simopt.measure.compare_commands) has not landed yet")


@pytest.fixture
def tiny_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository that is not netsim: editable slow.py, a pytest guard, a benchmark command."""
    for name, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}.items():
        monkeypatch.setenv(name, value)
    repo = tmp_path / "tiny"
    shutil.copytree(TINY_REPO, repo)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "tiny"]):
        subprocess.run(command, cwd=repo, check=True)
    return repo


def _history(repo: Path, tag: str) -> list[dict]:
    lines = (repo / "results" / tag / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@needs_session
@pytest.mark.slow
def test_a_submitted_speedup_is_kept_by_the_loop(tiny_repo, endpoint):
    def edit_what_was_read(body):
        shown = tool_results(body)["call_0"]
        loop_lines = [line[7:] for line in shown.splitlines() if "total" in line or "for i" in line]
        return tool_calls(("edit_file", {"path": "slow.py", "old_text": "\n".join(loop_lines),
                                         "new_text": "    return (n - 1) * n * (2 * n - 1) // 6"}))

    server = endpoint([
        tool_calls(("read_file", {"path": "slow.py"})),
        edit_what_was_read,
        tool_calls(("submit", {"description": "closed-form sum of squares", "hypothesis": "O(1), exact integers"})),
    ])
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(["optimize", "--repo", str(tiny_repo), "--agent", "openai", "--model", "scripted-model",
                     "--budget", "1", "--tag", "llm", "--quiet", "--max-seconds", "30"], Env(stdout=out, stderr=err))

    assert code == 0, err.getvalue()
    session, experiment = _history(tiny_repo, "llm")
    assert session["agent"] == "openai"
    assert experiment["status"] == "keep", experiment.get("asi")
    assert experiment["description"] == "closed-form sum of squares"
    assert experiment["usage"] == {"prompt_tokens": 300, "completion_tokens": 60, "cost_usd": 0.0}
    kept = subprocess.run(["git", "show", "simopt/llm:slow.py"], cwd=tiny_repo, capture_output=True, text=True, check=True)
    assert "(2 * n - 1) // 6" in kept.stdout
    assert "## Editable files\nslow.py\n" in server.requests[0]["messages"][1]["content"]


@needs_session
@pytest.mark.slow
def test_an_endpoint_that_stays_down_stops_the_session_with_exit_3(tiny_repo, endpoint):
    from simopt.progress import PlainReporter
    from simopt.session import Options, run_session

    server = endpoint([error(503)] * 3)
    err = io.StringIO()
    reporter = PlainReporter(Env(stdout=io.StringIO(), stderr=err).console())
    code = run_session(Options(repo=tiny_repo, tag="down", budget=3, max_seconds=10), reporter,
                       proposer=proposer(tiny_repo, retries=2))
    assert code == 3
    assert len(server.requests) == 3
    assert [record["type"] for record in _history(tiny_repo, "down")] == ["session"]
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=tiny_repo,
                            capture_output=True, text=True, check=True)
    assert status.stdout == ""


def test_prices_come_from_the_table_the_price_file_and_the_argument(tmp_path, monkeypatch):
    from simopt.agents.pricing import Price, price_for, price_table

    monkeypatch.delenv("SIMOPT_PRICES", raising=False)
    table = price_table()
    assert price_for("gpt-4o-mini-2024-07-18", table) == Price(0.15, 0.60)  # the longest prefix wins
    assert price_for("llama3", table) is None
    price_file = tmp_path / "prices.json"
    price_file.write_text(json.dumps({"llama3": {"prompt": 0.5, "completion": 1}, "gpt-4o": {"prompt": 9, "completion": 9}}))
    monkeypatch.setenv("SIMOPT_PRICES", str(price_file))
    table = price_table({"gpt-4o": {"prompt": 1, "completion": 2}})
    assert price_for("llama3:8b", table) == Price(0.5, 1.0)
    assert price_for("gpt-4o", table) == Price(1.0, 2.0)
    assert Price(1.0, 2.0).cost_usd(1_000_000, 500_000) == pytest.approx(2.0)
    price_file.write_text('{"llama3": {"prompt": -1, "completion": 1}}')
    with pytest.raises(UserError, match="price of 'llama3' in .*prices.json must be"):
        price_table()
    price_file.write_text("not json")
    with pytest.raises(UserError, match="is not JSON"):
        price_table()
    monkeypatch.setenv("SIMOPT_PRICES", str(tmp_path / "missing.json"))
    with pytest.raises(UserError, match="cannot read the price file"):
        price_table()

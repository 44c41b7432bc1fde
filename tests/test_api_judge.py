"""The judge as any OpenAI-compatible endpoint: an injected fake endpoint and a local HTTP server, no network.
Failed calls and unreadable outputs are counted, never filled in; the served model goes into the score JSON."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mmdistill.evaluation.scoring import judged_summary, score_open_ended
from mmdistill.judges import ChatClient, ChatReply, JudgeCallError, api_judge, api_judge_from_settings

ITEMS = [{"id": str(i), "question": f"q{i}", "answer": f"reference {i}", "category": "conversation"}
         for i in range(3)]


class FakeEndpoint:
    """Scores answers by a table; `fail` lists the calls (by number) that raise."""

    def __init__(self, scores, fail=(), garbage=()):
        self.scores, self.fail, self.garbage, self.calls = scores, set(fail), set(garbage), []

    def chat(self, model, messages, temperature, max_tokens):
        self.calls.append(messages)
        number = len(self.calls)
        if number in self.fail:
            raise JudgeCallError("HTTP 503 Service Unavailable")
        if number in self.garbage:
            return ChatReply("I cannot rate these.", "gpt-4-0613", "fp_1")
        content = messages[1]["content"]
        first = content.split("[Assistant 1]\n")[1].split("\n")[0]
        second = content.split("[Assistant 2]\n")[1].split("\n")[0]
        return ChatReply(f"{self.scores[first]} {self.scores[second]}\nbecause", "gpt-4-0613", "fp_1")


def test_scores_are_order_averaged_and_the_version_recorded():
    endpoint = FakeEndpoint({"good": 9, "bad": 3, **{f"reference {i}": 6 for i in range(3)}})
    judge = api_judge(endpoint, "gpt-4", max_retries=0, endpoint_name="fake")
    verdicts = score_open_ended(ITEMS[:2], ["good", "bad"], judge)
    assert [v["score"] for v in verdicts] == [9.0, 3.0] and verdicts[0]["reference_score"] == 6.0
    assert len(endpoint.calls) == 4  # two orders per item
    assert endpoint.calls[0][1]["content"].startswith("[Question]\nq0")  # no caption, no [Context]
    assert judge.metadata["served_models"] == ["gpt-4-0613"] and judge.metadata["model"] == "gpt-4"
    assert judge.metadata["calls"] == 4 and judge.metadata["failed_calls"] == 0


def test_an_items_caption_is_the_judges_context():
    endpoint = FakeEndpoint({"good": 9, "reference 0": 6})
    score_open_ended([{**ITEMS[0], "caption": "A bowl of ramen."}], ["good"], api_judge(endpoint, "m"))
    assert endpoint.calls[0][1]["content"].startswith("[Context]\nA bowl of ramen.\n\n[Question]\nq0")


def test_failed_calls_are_retried_then_counted_never_filled():
    scores = {"good": 8, **{f"reference {i}": 5 for i in range(3)}}
    # item 0: its first call fails once and succeeds on retry; item 1: every call of one order fails
    endpoint = FakeEndpoint(scores, fail={1, 4, 5})
    judge = api_judge(endpoint, "m", max_retries=1)
    verdicts = score_open_ended(ITEMS[:2], ["good", "good"], judge)
    assert verdicts[0]["score"] == 8.0
    assert verdicts[1]["score"] is None and "HTTP 503" in verdicts[1]["reason"]
    assert judge.metadata["failed_calls"] == 3
    summary = judged_summary([v["score"] for v in verdicts], seed=0)
    assert summary["judge_failures"] == 1 and summary["n"] == 1


def test_unreadable_outputs_are_failures_with_the_reason():
    endpoint = FakeEndpoint({"x": 5, "reference 0": 5}, garbage={1, 2})
    verdicts = score_open_ended(ITEMS[:1], ["x"], api_judge(endpoint, "m", max_retries=1))
    assert verdicts[0]["score"] is None and "expected 2 scores" in verdicts[0]["reason"]


class _Handler(BaseHTTPRequestHandler):
    requests = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append((self.path, self.headers.get("Authorization"), body))
        if body["messages"][1]["content"].startswith("[Question]\nbroken"):
            self.send_response(500)
            self.end_headers()
            return
        payload = {"id": "x", "model": "local-judge-v2", "system_fingerprint": None,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "7 4\nfine"}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_a_local_openai_compatible_server(server, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "secret")
    settings = {"base_url": server, "model": "judge", "api_key_env": "JUDGE_KEY", "temperature": 0.0,
                "max_tokens": 64, "max_retries": 0, "timeout_s": 10}
    judge = api_judge_from_settings(settings)
    items = ITEMS[:1] + [{**ITEMS[1], "question": "broken"}]
    verdicts = score_open_ended(items, ["a", "b"], judge)
    assert verdicts[0]["score"] == pytest.approx((7 + 4) / 2)  # 7 in position 1, 4 in position 2
    assert verdicts[1]["score"] is None and "HTTP 500" in verdicts[1]["reason"]
    path, authorization, body = _Handler.requests[0]
    assert path == "/v1/chat/completions" and authorization == "Bearer secret"
    assert body["model"] == "judge" and body["temperature"] == 0.0 and body["max_tokens"] == 64
    assert judge.metadata["served_models"] == ["local-judge-v2"] and judge.metadata["endpoint"] == server


def test_an_unreachable_endpoint_is_a_call_error_and_a_missing_key_a_config_error(monkeypatch):
    with pytest.raises(JudgeCallError, match="127.0.0.1:9"):
        ChatClient("http://127.0.0.1:9/v1", timeout_s=2).chat("m", [], 0.0, 8)
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY is not set"):
        api_judge_from_settings({"base_url": "http://x/v1", "model": "m", "api_key_env": "NO_SUCH_KEY",
                                 "temperature": 0.0, "max_tokens": 8, "max_retries": 0, "timeout_s": 1})


def test_the_score_json_names_the_judge_model_and_counts_failures(tiny_checkpoint, benchmark_files, tmp_path):
    from mmdistill.evaluation import evaluate

    class Constant:
        calls = 0

        def chat(self, model, messages, temperature, max_tokens):
            Constant.calls += 1
            if Constant.calls <= 2:  # the first item's first order fails on both attempts
                raise JudgeCallError("timed out")
            return ChatReply("6 5", "gpt-4-0613", "fp_7")

    judge = api_judge(Constant(), "gpt-4", max_retries=1, endpoint_name="https://api.openai.com/v1")
    evaluate(tiny_checkpoint, "open", benchmark_files["open"], tmp_path / "open.json", batch_size=6, seed=0,
             judge=judge, judge_name="api")
    written = json.loads((tmp_path / "open.json").read_text())
    assert written["judge"] == "api" and written["judge_failures"] == 1 and written["n"] == 5
    assert written["judge_metadata"]["served_models"] == ["gpt-4-0613"]
    assert written["judge_metadata"]["system_fingerprints"] == ["fp_7"]
    assert written["judge_metadata"]["failed_calls"] == 2

"""The assessor's output parser on well-formed and malformed text."""

import pytest

from mmdistill.roles import JudgeParseError, format_judge_output, parse_judge_output


@pytest.mark.parametrize("text, expected", [
    ("8 3", (8.0, 3.0)),
    ("8, 3\nbecause answer 1 is right", (8.0, 3.0)),
    ("\n  10 1  ", (10.0, 1.0)),
    ("7.5 2.5", (7.5, 2.5)),
    (format_judge_output(9, 4), (9.0, 4.0)),
])
def test_parses_two_scores_on_the_first_line(text, expected):
    assert parse_judge_output(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   \n ", "empty"),
    ("answer 1 is better", "found 1"),
    ("8", "found 1"),
    ("8 3 5", "found 3"),
    ("11 3", "outside"),
    ("0 4", "outside"),
    ("-2 4", "outside"),
    ("good\n8 3", "found 0"),
])
def test_rejects_malformed_output_with_a_reason(text, reason):
    with pytest.raises(JudgeParseError, match=reason):
        parse_judge_output(text)

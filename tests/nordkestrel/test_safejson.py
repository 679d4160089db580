"""The one bounded JSON reader: nesting checked without recursion, size, strict values."""

import contextlib
import io
import json
import random

import pytest

from nordkestrel import safejson


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"a": [' * 50_000,
        # Deep after a shallow valid start, and deep inside a real document.
        '{"menus": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_deep_nesting_is_refused_without_recursion(text):
    with pytest.raises(safejson.JSONTooDeep) as refused:
        safejson.loads(text)
    assert refused.value.status == 400
    assert refused.value.code == "too_deep"
    with pytest.raises(safejson.JSONTooDeep):
        safejson.loads(text.encode())


@pytest.mark.parametrize("depth", [1, 2, 63, 64, 65, 66, 128, 129, 1000])
@pytest.mark.parametrize(
    "shape",
    [
        lambda d: "[" * d + "]" * d,
        lambda d: '{"k":' * d + "null" + "}" * d,
        lambda d: "[{}," * (d - 1) + "[]" + "]" * (d - 1),
        lambda d: '["]]]",' * d + '"[[["' + "]" * d,
    ],
)
def test_the_limit_is_exact(depth, shape):
    text = shape(depth)
    if depth < 900:  # the reference parser's own recursion limit
        assert depth_of(json.loads(text)) == depth
    if depth <= safejson.MAX_DEPTH:
        assert depth_of(safejson.loads(text)) == depth
    else:
        with pytest.raises(safejson.JSONTooDeep):
            safejson.loads(text)


def test_unclosed_nesting_past_the_limit_is_too_deep_and_short_of_it_malformed():
    with pytest.raises(safejson.JSONTooDeep):
        safejson.loads("[" * 65)
    with pytest.raises(safejson.JSONRefused) as refused:
        safejson.loads("[" * 64)
    assert refused.value.code == "invalid_json"


@pytest.mark.parametrize(
    "text",
    [
        '"' + "[" * 10_000 + '"',  # brackets inside a string are text
        '"\\"' + "[" * 10_000 + '"',  # after an escaped quote, still inside the string
        '["\\\\", ' + "[" * 10 + "]" * 10 + "]",  # an escaped backslash ends before the quote
    ],
)
def test_brackets_inside_strings_do_not_count(text):
    assert safejson.loads(text) == json.loads(text)


def random_value(rng: random.Random, depth: int):
    """A document exactly ``depth`` deep along one branch, with strings full of brackets,
    quotes and backslashes on the others."""
    if depth == 0:
        return rng.choice([1, -2.5, None, True, "", '"]', "\\", "[{", '\\"[', "é]"])
    siblings = [
        random_value(rng, rng.randint(0, min(depth - 1, 2))) for _ in range(rng.randint(0, 3))
    ]
    siblings.insert(rng.randint(0, len(siblings)), random_value(rng, depth - 1))
    if rng.random() < 0.5:
        return siblings
    return {f'k{n}]"': value for n, value in enumerate(siblings)}


def test_agrees_with_the_parser_on_random_documents():
    rng = random.Random(7)  # noqa: S311 (reproducible test data)
    for _ in range(1500):
        depth = rng.randint(0, 24)
        value = random_value(rng, depth)
        assert depth_of(value) == depth
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
        if depth <= 16:
            assert safejson.loads(text, max_depth=16) == value
        else:
            with pytest.raises(safejson.JSONTooDeep):
                safejson.loads(text, max_depth=16)


def test_garbage_is_refused_never_raised_otherwise():
    rng = random.Random(11)  # noqa: S311 (reproducible test data)
    pieces = ["[", "]", "{", "}", ":", ",", '"', "\\", "1", "a", " ", "\x00", "é"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 300)))
        with contextlib.suppress(safejson.JSONRefused):
            safejson.loads(text, max_depth=8)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"\xff{}", "invalid_json"),
        (b"[NaN]", "invalid_json"),
        (b"[-Infinity]", "invalid_json"),
        (b"[" + b"9" * 5000 + b"]", "invalid_json"),
        (b'"\\ud800"', None),  # a lone surrogate escape parses; storing it is not ours
    ],
)
def test_malformed_json_is_refused_in_the_error_shape(data, code):
    if code is None:
        assert safejson.loads(data) == "\ud800"
        return
    with pytest.raises(safejson.JSONRefused) as refused:
        safejson.loads(data)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert refused.value.detail


def test_a_bom_is_allowed():
    assert safejson.loads(b"\xef\xbb\xbf{}") == {}


def test_size_is_checked_before_parsing(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert safejson.loads(b"[" + b"1," * 40 + b"1]") == [1] * 41
    with pytest.raises(safejson.JSONTooLarge) as refused:
        safejson.loads(b"[" + b"1," * 60 + b"1]")
    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")
    assert safejson.loads(b"[" + b"1," * 60 + b"1]", max_bytes=1000) == [1] * 61


def test_read_limited_reads_no_more_than_it_allows():
    stream = io.BytesIO(b"x" * 1000)
    assert safejson.read_limited(stream, 2000) == b"x" * 1000
    with pytest.raises(safejson.JSONTooLarge):
        safejson.read_limited(io.BytesIO(b"x" * 1000), 999)
    # A declared length over the limit is refused before reading anything.
    untouched = io.BytesIO(b"x" * 10)
    with pytest.raises(safejson.JSONTooLarge):
        safejson.read_limited(untouched, 100, declared=10**9)
    assert untouched.tell() == 0

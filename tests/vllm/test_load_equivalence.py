"""The fast /metrics reader reads what the reader before it read, and refuses what it refused.

``probe.vllm.load`` finds the series it reads with one regex over the page and remembers
the labels it read from a label text; ``reference_parse`` below is the reader before that
(main at 0d3178f, verbatim: a ``bytes.find`` per name, every label read at every line). On the real and canned pages and
on thousands of generated hostile ones (seeded, so the same every run) both give the same
``EngineLoad`` or both raise ``NotEngineMetrics``.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from probe.vllm import load
from probe.vllm.load import (
    GENERATION_TOKENS,
    KV_CACHE,
    KV_CACHE_OLD,
    PROMPT_TOKENS,
    REQUIRED,
    RUNNING,
    WAITING,
    WANTED,
    EngineLoad,
    NotEngineMetrics,
    parse_engine_load,
)

DATA = Path(__file__).parent.parent / "data" / "vllm"
BENCH = Path(__file__).parent.parent.parent / "bench" / "www"


# -- the reader before (main at 0d3178f) -------------------------------------------------

def reference_parse(page: bytes | str) -> EngineLoad:
    """The engine load in a /metrics page (text format 0.0.4 or 1.0.0)."""
    body = page.encode("utf-8", "replace") if isinstance(page, str) else page
    values: dict[str, list[float]] = {name: [] for name in WANTED}
    engines: set[str] = set()
    models: set[str] = set()
    for name, line in _wanted_lines(body):
        labels, value = _sample(line)
        if math.isfinite(value):
            values[name].append(value)
            engines.add(labels.get("engine", ""))
            if "model_name" in labels:
                models.add(labels["model_name"])
    missing = [name for name in REQUIRED if not values[name]]
    if missing:
        raise NotEngineMetrics(f"/metrics has no {', '.join(missing)} (not a vLLM server?)")
    kv = values[KV_CACHE] or values[KV_CACHE_OLD]
    prompt = values[PROMPT_TOKENS]
    return EngineLoad(
        waiting=sum(values[WAITING]), running=sum(values[RUNNING]),
        generation_tokens_total=sum(values[GENERATION_TOKENS]),
        kv_cache_usage=max(kv) if kv else None, prompt_tokens_total=sum(prompt) if prompt else None,
        engines=max(len(engines), 1), models=tuple(sorted(models)),
    )


_NAMES = tuple((name, name.encode()) for name in WANTED)
# after a series' name: its labels, or the space before its value
_AFTER_NAME = frozenset(b"{ \t")
_LABEL = re.compile(rb'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\\n]|\\.)*)"'
                    rb'\s*(?:,|$)')
_UNESCAPE = {b"\\\\": "\\", b'\\"': '"', b"\\n": "\n"}


def _wanted_lines(body: bytes) -> list[tuple[str, bytes]]:
    """(series name, the line after the name) of the series we read, found without
    splitting the page (a vLLM page is 50 KB to a few hundred KB, almost all of it series
    we do not read); a malformed series we never read must not fail us."""
    found: list[tuple[str, bytes]] = []
    for name, key in _NAMES:
        at = 0 if body.startswith(key) else body.find(b"\n" + key)
        while at != -1:
            begin = at + len(key) + (1 if body[at:at + 1] == b"\n" else 0)
            end = body.find(b"\n", begin)
            rest = body[begin:] if end == -1 else body[begin:end]
            if rest[:1] and rest[0] in _AFTER_NAME:
                found.append((name, rest.rstrip(b"\r")))
            at = -1 if end == -1 else body.find(b"\n" + key, end)
    return found


def _sample(rest: bytes) -> tuple[dict[str, str], float]:
    """The labels and value of one sample line (after its name): ``{labels} value
    [timestamp]``."""
    labels: dict[str, str] = {}
    tail = rest
    if rest[:1] == b"{":
        close = rest.rfind(b"}")
        if close == -1:
            raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
        text, tail = rest[1:close], rest[close + 1:]
        position, length = 0, len(text.rstrip())
        while position < length:
            label = _LABEL.match(text, position)
            if label is None:
                raise NotEngineMetrics(f"/metrics is not Prometheus text: labels {text[:80]!r}")
            labels[label["name"].decode()] = _unescape(label["value"])
            position = label.end()
    parts = tail.split()
    if not 1 <= len(parts) <= 2 or tail[:1] not in (b" ", b"\t"):
        raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
    try:
        return labels, float(parts[0])
    except ValueError:
        raise NotEngineMetrics("/metrics is not Prometheus text: "
                               f"value {parts[0][:40]!r}") from None


def _unescape(raw: bytes) -> str:
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    return re.sub(rb"\\[\\\"n]", lambda m: _UNESCAPE[m[0]].encode(), raw).decode(
        "utf-8", "replace")


# -- the comparison -------------------------------------------------------------------------


def both(page: bytes) -> tuple[EngineLoad | None, EngineLoad | None]:
    """(fast, reference) reads of ``page``; None where the reader refused it."""
    reads: list[EngineLoad | None] = []
    for reader in (parse_engine_load, reference_parse):
        try:
            reads.append(reader(page))
        except NotEngineMetrics:
            reads.append(None)
    return reads[0], reads[1]


@pytest.mark.parametrize("path", [DATA / "metrics-0.32-busy.txt", BENCH / "metrics.txt"],
                         ids=["real-0.32-busy", "bench"])
def test_real_pages_read_the_same(path: Path) -> None:
    fast, reference = both(path.read_bytes())
    assert fast is not None
    assert fast == reference


# Pieces of hostile pages: the names we read, names that only start like them, the names
# inside HELP text and label values, escapes, braces, broken labels and values, CR LF.
NAMES = [*WANTED, *WANTED, "vllm:num_requests_waiting_by_reason", "vllm:generation_tokens",
         "vllm:kv_cache_usage_perc_x", "vllm:", "vllm:prompt_tokens_total_created",
         "process_open_fds", "xvllm:num_requests_waiting", " vllm:num_requests_running"]
LABELS = ["", "{}", "{ }", '{engine="0"}', '{engine="1",model_name="m"}',
          '{model_name="a\\"b}c",engine="0"}', '{engine="0",}', '{engine = "2" , model_name="m"}',
          '{model_name="vllm:num_requests_waiting{engine=\\"9\\"} 5"}',
          '{model_name="x\\nvllm:generation_tokens_total 7"}', '{model_name="back\\\\"}',
          '{engine=0}', '{engine="0" model_name="m"}', '{engine="0"', '{engine="0"}}',
          '{,}', '{1a="x"}', '{engine="0",engine="3"}', '{model_name="\\u00e9\\x"}',
          '{model_name="' + "l" * 300 + '"}', '{model_name="' + "k" * 300 + '",engine="0"}']
VALUES = [" 1", " 0.5", " 3e2", " NaN", " +Inf", " -Inf", " 7 1700000000000", "\t2",
          " lots", "", " 1 2 3", "1", " 0x10", " 1_0", "  4  ", " -0"]
NOISE = ["# HELP vllm:num_requests_waiting Number of vllm:generation_tokens_total waiting.",
         "# TYPE vllm:generation_tokens_total counter", "", "#",
         'other{a="vllm:num_requests_running 9"} 1', "garbage {{{ ]]] \\",
         "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 3"]


GOOD_LABELS, GOOD_VALUES = LABELS[:11] + LABELS[-2:], VALUES[:8]


def hostile_page(rng: random.Random) -> bytes:
    """Lines in random order: mostly well-formed samples of every kind of name, some
    broken (about one line in twelve), some noise."""
    lines = []
    for _ in range(rng.randint(0, 16)):
        broken = rng.random() < 0.08
        if rng.random() < 0.25:
            lines.append(rng.choice(NOISE))
        else:
            lines.append(rng.choice(NAMES) + rng.choice(LABELS if broken else GOOD_LABELS)
                         + rng.choice(VALUES if broken else GOOD_VALUES))
    if rng.random() < 0.7:  # the series a page must have, so that many pages are read
        lines += [name + rng.choice(GOOD_LABELS) + rng.choice(GOOD_VALUES) for name in REQUIRED]
        rng.shuffle(lines)
    ending = rng.choice(["\n", "\r\n"])
    text = ending.join(lines) + rng.choice(["", ending])
    return text.encode("utf-8")


def test_hostile_pages_are_read_or_refused_alike() -> None:
    rng = random.Random(25)
    read = refused = 0
    for _ in range(6000):
        page = hostile_page(rng)
        fast, reference = both(page)
        assert fast == reference, page
        read += fast is not None
        refused += fast is None
    assert read > 1000 and refused > 1000  # both sides of the comparison were exercised


def test_pages_that_would_be_read_are_read_alike() -> None:
    """Pages made only of well-formed lines, mostly read: sums, engines, models agree."""
    rng = random.Random(26)
    for _ in range(2000):
        lines = [rng.choice(WANTED) + rng.choice(GOOD_LABELS) + rng.choice(GOOD_VALUES)
                 for _ in range(rng.randint(3, 16))]
        lines += [rng.choice(NOISE[:4]) for _ in range(rng.randint(0, 3))]
        rng.shuffle(lines)
        page = ("\n".join(lines) + "\n").encode()
        fast, reference = both(page)
        assert fast == reference, page


def test_a_family_name_in_help_text_or_a_label_value_is_not_a_sample() -> None:
    page = (b"# HELP vllm:num_requests_waiting vllm:num_requests_waiting 99\n"
            b'x{model_name="vllm:generation_tokens_total 12"} 1\n'
            b'vllm:num_requests_waiting{model_name="vllm:num_requests_waiting 7"} 1\n'
            b"vllm:num_requests_running 2\nvllm:generation_tokens_total 3\n")
    read = parse_engine_load(page)
    assert (read.waiting, read.running, read.generation_tokens_total) == (1.0, 2.0, 3.0)
    assert read.models == ("vllm:num_requests_waiting 7",)
    assert both(page)[1] == read


def test_remembered_labels_do_not_excuse_a_broken_line() -> None:
    """A label text read once is remembered; a broken one is refused every time, and the
    same label text with another value is read with that value."""
    good = b'vllm:num_requests_waiting{engine="0"} 1\nvllm:num_requests_running{engine="0"} 1\n'
    for tokens in (b"5", b"6"):
        page = good + b'vllm:generation_tokens_total{engine="0"} ' + tokens + b"\n"
        assert parse_engine_load(page).generation_tokens_total == float(tokens)
    for _ in range(2):
        with pytest.raises(NotEngineMetrics, match="labels"):
            parse_engine_load(good + b'vllm:generation_tokens_total{engine=0} 5\n')


def test_long_label_texts_are_read_but_not_remembered() -> None:
    long_model = "m" * (load._KNOWN_MAX + 10)
    page = (f'vllm:num_requests_waiting{{model_name="{long_model}"}} 1\n'
            "vllm:num_requests_running 0.0625\nvllm:generation_tokens_total 987654.25\n").encode()
    before = (load._known_labels.cache_info().currsize,
              load._known_sample.cache_info().currsize)
    assert parse_engine_load(page).models == (long_model,)
    assert (load._known_labels.cache_info().currsize,
            load._known_sample.cache_info().currsize) == (before[0], before[1] + 2)

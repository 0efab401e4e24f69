import time

from app.triage.normalize import MAX_CHARS, normalize


def test_none_and_empty_body_give_the_title():
    assert normalize("  CUDA   out of memory ", None) == "CUDA out of memory"
    assert normalize("Title", "") == "Title"
    assert normalize("", None) == ""


def test_html_comments_are_dropped_including_an_unclosed_one():
    body = "<!-- Please fill the template -->real text\n<!-- hint\nmulti-line -->more\n<!-- never closed\nhidden"
    out = normalize("t", body)
    assert "real text" in out and "more" in out
    assert "template" not in out and "hint" not in out and "hidden" not in out


def test_checkboxes_and_empty_sections_go_headings_with_text_stay():
    body = (
        "### Is there an existing issue for this?\n- [X] I have searched the existing issues\n\n"
        "### Describe the bug\nThe model loads forever\n\n### Additional context\n_No response_\n"
        "**Steps**\n\n- [SDVer]: version placeholder stays"
    )
    out = normalize("t", body)
    assert "searched" not in out and "existing issue" not in out
    assert "Describe the bug\nThe model loads forever" in out
    assert "Additional context" not in out and "No response" not in out
    assert "Steps\n- [SDVer]: version placeholder stays" in out


def test_long_code_block_keeps_head_tail_and_error_line():
    log = [f"log line {i}" for i in range(100)]
    log[50] = "model_1 | torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"
    body = "Crash:\n```\n" + "\n".join(log) + "\n```\nafter the block"
    out = normalize("t", body)
    assert "log line 0" in out and "log line 7" in out and "log line 8\n" not in out
    assert "log line 96" in out and "log line 99" in out and "log line 95" not in out
    assert "OutOfMemoryError: CUDA out of memory" in out
    assert "after the block" in out and "```" not in out


def test_unclosed_fence_is_trimmed_too():
    out = normalize("t", "```\n" + "\n".join(f"x{i}" for i in range(50)))
    assert "x0" in out and "x49" in out and "x20" not in out


def test_whitespace_collapses_and_length_is_capped_head_and_tail():
    out = normalize("t", "a \t  b\n\n\n\nc")
    assert out == "t\na b\nc"
    long = normalize("start", "word " * 5000 + "THE-END")
    assert len(long) <= MAX_CHARS and long.startswith("start") and long.endswith("THE-END")


def test_odd_unicode_does_not_break():
    out = normalize("bad \ud800 surrogate", "zero\u200bwidth \x00 nul ﬁ ligature \ufeff")
    out.encode("utf-8")  # must be valid UTF-8
    assert "surrogate" in out and "fi ligature" in out and "\x00" not in out


def test_megabyte_bodies_and_pathological_input_are_fast():
    bodies = [
        "x" * 1_000_000,
        "<!--" * 250_000,
        "```\n" * 250_000,
        ("Error" * 100 + "\n") * 2000,
        "a." * 500_000,
        "- [ ] " * 170_000,
    ]
    for body in bodies:
        start = time.perf_counter()
        out = normalize("title", body)
        assert time.perf_counter() - start < 2.0
        assert len(out) <= MAX_CHARS

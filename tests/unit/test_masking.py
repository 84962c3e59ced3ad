"""The secret masker: which forms it hides, across chunks and line breaks."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.server.masking import (
    MASK,
    MAX_HELD,
    Masker,
    forms,
    mask,
    mask_file,
    masked_chunks,
    scan_file,
)

SECRET = "s3cr3t/Value+x?"
ENCODINGS = {
    "exact": lambda v: v.encode(),
    "upper": lambda v: v.upper().encode(),
    "lower": lambda v: v.lower().encode(),
    "ascii-case mix": lambda v: "".join(c.swapcase() if c.isascii() else c for c in v).encode(),
    "hex": lambda v: v.encode().hex().encode(),
    "HEX": lambda v: v.encode().hex().upper().encode(),
    "quote": lambda v: quote(v, safe="").encode(),
    "quote/": lambda v: quote(v).encode(),
    "quote_plus": lambda v: quote_plus(v).encode(),
    "json": lambda v: json.dumps(v)[1:-1].encode(),
}
secrets = st.text(min_size=6, max_size=40).filter(
    lambda v: len(v.replace("\n", "").replace("\r", "")) >= 6
)
noise = st.binary(max_size=60)


@given(secrets, st.sampled_from(sorted(ENCODINGS)), noise, noise)
def test_every_text_form_is_found_and_gone_after_masking(
    value: str, name: str, before: bytes, after: bytes
) -> None:
    masker = Masker([value])
    form = ENCODINGS[name](value)
    data = before + form + after
    assert masker.contains(data)
    masked = masker.mask(data)
    assert form not in masked and not masker.contains(masked)


@given(secrets, st.binary(max_size=5), st.binary(max_size=5), st.booleans())
def test_base64_at_every_alignment(value: str, before: bytes, after: bytes, url: bool) -> None:
    encode = base64.urlsafe_b64encode if url else base64.b64encode
    encoded = encode(before + value.encode() + after)
    masker = Masker([value])
    assert masker.contains(encoded)
    masked = masker.mask(encoded)
    # what is left is what surrounding bytes share with the value: under 3 characters a side
    assert len(masked) - len(MASK) <= len(encode(before)) + len(encode(after)) + 4


@settings(max_examples=200)
@given(
    secrets,
    st.lists(st.one_of(noise, st.sampled_from(sorted(ENCODINGS))), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_a_stream_cut_anywhere_masks_like_the_whole(
    value: str, parts: list[bytes | str], cuts: list[int]
) -> None:
    data = b"".join(ENCODINGS[p](value) if isinstance(p, str) else p for p in parts)
    masker = Masker([value])
    stream = masker.stream()
    out = b""
    start = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        out += stream.feed(data[start:cut])
        start = cut
    out += stream.feed(data[start:]) + stream.close()
    assert out == masker.mask(data)


def test_a_secret_broken_over_lines_is_masked_piece_by_piece() -> None:
    folded = "\n".join(SECRET[i : i + 5] for i in range(0, len(SECRET), 5))
    b64 = base64.encodebytes(b"header: " + SECRET.encode()).decode()  # wrapped at 76
    text = f"before\n{folded}\nafter\n"
    assert mask(text, [SECRET]) == f"before\n{MASK}\n{MASK}\n{MASK}\nafter\n"
    assert mask(f"x\r\n{SECRET[:7]}\r\n{SECRET[7:]}\r\n", [SECRET]) == f"x\r\n{MASK}\r\n{MASK}\r\n"
    assert not Masker([SECRET]).contains(mask(b64 * 3, [SECRET]).encode())


def test_a_secret_split_between_two_chunks_is_held_back_then_masked() -> None:
    stream = Masker([SECRET]).stream()
    assert stream.feed(b"line one\ntoken=" + SECRET[:6].encode()) == b"line one\ntoken="
    assert stream.feed(SECRET[6:].encode() + b" end\n") == f"{MASK} end\n".encode()
    assert stream.feed(b"no secret\n") == b"no secret\n"
    assert stream.feed(b"ends with s3") == b"ends with "
    assert stream.close() == b"s3"
    blank = b"\n" * MAX_HELD
    assert stream.feed(b"s3" + blank) == b"s3" + blank, "held back: a bounded tail only"


def test_forms_shorter_than_four_characters_are_not_masked() -> None:
    assert forms("ab") == (frozenset(), frozenset())
    assert mask("ab and abc", ["ab"]) == "ab and abc"
    assert all(len(f) >= 3 for group in forms("abc") for f in group)
    assert all(len(f) >= 4 for f in forms("abc")[1])
    assert mask("a=hunter2 b=hunter2-long", ["hunter2", "hunter2-long"]) == f"a={MASK} b={MASK}"
    assert not Masker([]) and Masker([]).mask(b"anything") == b"anything"


def test_unicode_case_forms() -> None:
    value = "straße-geheim"
    assert mask(f"{value.upper()} {value}", [value]) == f"{MASK} {MASK}"


def test_mask_file_rewrites_only_a_log_with_a_secret(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"token=" + base64.b64encode(SECRET.encode()) + b"\n\xff\n")
    mask_file(log, Masker([SECRET]))
    assert log.read_bytes() == f"token={MASK}\n".encode() + b"\xff\n"
    clean = tmp_path / "clean.log"
    clean.write_text("nothing\n")
    before = clean.stat().st_mtime_ns
    mask_file(clean, Masker([SECRET]))
    assert clean.stat().st_mtime_ns == before and not list(tmp_path.glob("*.masking"))


def test_scan_file_tells_text_from_binary(tmp_path: Path) -> None:
    masker = Masker([SECRET])
    cases = {
        "text": (SECRET.encode() + b"\n", (True, True)),
        "clean": ("naïve\n".encode(), (False, True)),
        "nul": (b"\x00" + SECRET.encode(), (True, False)),
        "latin-1": (b"\xe9" + SECRET.encode(), (True, False)),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert scan_file(path, masker) == expected, name
    assert b"".join(masked_chunks(tmp_path / "text", masker)) == f"{MASK}\n".encode()


def test_a_multi_line_secret_such_as_a_pem_key() -> None:
    body = base64.encodebytes(bytes(range(256)) * 8).decode()  # 2 KiB, 64-column lines
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n"
    masker = Masker([pem])
    data = b"loading key\n" + pem.encode() + b"loaded\n"
    masked = masker.mask(data)
    assert masked.startswith(b"loading key\n***\n***\n") and masked.endswith(b"***\nloaded\n")
    assert body.encode()[:64] not in masked
    stream = masker.stream()
    pieces = [stream.feed(data[i : i + 100]) for i in range(0, len(data), 100)]
    assert b"".join(pieces) + stream.close() == masked

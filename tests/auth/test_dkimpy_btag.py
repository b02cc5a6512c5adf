"""The b= remover installed in dkimpy makes dkimpy's own substitution: the same bytes out
for generated signature fields (folded anywhere, odd blanks, several b tags, values
ending or not with a line end) and for fields dkimpy itself writes."""

from __future__ import annotations

import dkim
from hypothesis import example, given, settings
from hypothesis import strategies as st

from milter.auth import dkimpy_btag
from tests.auth.test_dkim import make_key

_PIECES = st.sampled_from(
    [
        *(b"b", b"=", b" b=", b";b=", b"\tb =", b"bh=", b"a", b"Z9+/", b"==", b" ", b"\t"),
        *(b"\r\n ", b"\r\n", b"\n", b"\r", b"\x0b", b"\x0c", b";", b"h=from:to", b"\xc3\xa9"),
        *(b"-", b"_"),
    ]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=24).map(b"".join))
@example(b" a=rsa-sha256; b=AbC+/=\r\n dEf==\r\n")
@example(b";b=AB \r\n")
@example(b" b=\r\n \r\n")
@example(b" b = A;\tb=\n B\n")
def test_the_b_tag_is_emptied_as_dkimpy_empties_it(field: bytes) -> None:
    ours = dkimpy_btag.RE_BTAG.sub(b"\\1", field)
    assert ours == dkimpy_btag.original_re_btag.sub(b"\\1", field)


def test_fields_dkimpy_signs_are_emptied_alike() -> None:
    key = make_key(1024)
    message = b"From: a@ameli.fr\r\nTo: b@example.org\r\nSubject: x\r\n\r\nCorps\r\n"
    for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
        header = dkim.sign(message, b"sel", b"ameli.fr", key.private_pem, canonicalize=canon)
        value = header.split(b":", 1)[1]
        emptied = dkimpy_btag.RE_BTAG.sub(b"\\1", value)
        assert emptied == dkimpy_btag.original_re_btag.sub(b"\\1", value)
        assert emptied.endswith(b" b=")  # the value went (and the final line end with it)


def test_installed_in_dkimpy() -> None:
    import milter.auth.dkim  # noqa: F401  (installs it)

    assert dkim.RE_BTAG is dkimpy_btag.RE_BTAG

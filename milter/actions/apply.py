"""Apply an ActionPlan to raw message bytes, the way an MTA applies milter edits.

Used by the SMTP proxy front-end and by ``tocsin scan --write``. Edits are applied in
order to the evolving header list, with the milter's index rules: CHANGE/DELETE count
occurrences of that name (1-based; beyond the last, CHANGE appends), INSERT counts
positions in the whole block (past the end appends).
"""

from __future__ import annotations

from milter.model.plan import ActionPlan, HeaderEdit, HeaderOp
from milter.text.headers import field_name, field_spans, split_message


def _header_fields(block: bytes) -> tuple[list[bytes], bytes]:
    """Split a header block into whole fields (with folded lines) and the blank line."""
    body_sep = b""
    for sep in (b"\r\n\r\n", b"\n\n"):
        if block.endswith(sep):
            block, body_sep = block[: -len(sep) // 2], sep[len(sep) // 2 :]
            break
    spans = field_spans(block)
    fields = [block[a:b] for a, b in spans]
    if spans and spans[-1][1] < len(block):  # bytes after an inner empty line: keep them
        fields.append(block[spans[-1][1] :])
    return fields, body_sep


def _render(edit: HeaderEdit, eol: bytes) -> bytes:
    # surrogateescape: a value built from a raw-byte header (a Subject that is not UTF-8)
    # gets its original bytes back instead of raising UnicodeEncodeError
    value = edit.value.replace("\r\n", "\n").encode("utf-8", "surrogateescape")
    name = edit.name.encode("ascii", "replace")
    return name + b": " + value.replace(b"\n", eol) + eol


def _apply_one(fields: list[bytes], edit: HeaderEdit, eol: bytes) -> None:
    name = edit.name.lower().encode("ascii", "replace")
    positions = [i for i, f in enumerate(fields) if field_name(f) == name]
    if edit.op is HeaderOp.ADD:
        fields.append(_render(edit, eol))
    elif edit.op is HeaderOp.INSERT:
        fields.insert(min(max(edit.index, 0), len(fields)), _render(edit, eol))
    elif 1 <= max(edit.index, 1) <= len(positions):
        where = positions[max(edit.index, 1) - 1]
        if edit.op is HeaderOp.DELETE:
            del fields[where]
        else:
            fields[where] = _render(edit, eol)
    elif edit.op is HeaderOp.CHANGE:
        fields.append(_render(edit, eol))


def apply_plan(raw: bytes, plan: ActionPlan) -> bytes:
    """The message as it would be delivered after ``plan``'s edits."""
    if not plan.header_edits and plan.new_body is None:
        return raw
    block, body = split_message(raw)
    eol = b"\r\n" if b"\r\n" in block else b"\n"
    fields, blank = _header_fields(block)
    if fields and not fields[-1].endswith(b"\n"):
        fields[-1] += eol
    for edit in plan.header_edits:
        _apply_one(fields, edit, eol)
    new_body = plan.new_body if plan.new_body is not None else body
    return b"".join(fields) + (blank or eol) + new_body

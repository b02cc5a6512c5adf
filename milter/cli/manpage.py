"""``tocsin manpage``: the manual page, generated from the argument parser.

argparse-manpage does the roff; this module only names the page and adds the sections
a parser cannot know (exit codes, files, see also).
"""

from __future__ import annotations

import argparse

from milter import __version__

EXTRA_SECTIONS = r"""
.SH EXIT STATUS
0 success; 1 \fBpolicy check\fR found errors; 2 usage error; 3 an input could not be read;
4 invalid policy or settings; 5 \fBserve\fR cannot start; 6 quarantine store failure;
7 release refused by the relay (the message is still held);
10\(en13 \fBscan \-\-exit\-code\fR verdicts (tag, quarantine, reject, tempfail);
141 the reader of the output went away (a closed pipe).
.SH FILES
.TP
/var/lib/tocsin/quarantine
the quarantine store (\fB\-\-quarantine\-dir\fR, \fBTOCSIN_QUARANTINE_DIR\fR)
.TP
/etc/tocsin/tocsin.yaml
settings read by \fBtocsin serve \-\-config\fR in the shipped systemd unit
.SH SEE ALSO
\fBpostconf\fR(5), the documentation in docs/ (cli.md, deploy.md, operations.md, policy.md).
"""


def render_manpage(parser: argparse.ArgumentParser) -> str:
    """The roff source of tocsin(1)."""
    from argparse_manpage.manpage import Manpage

    data = {
        "project_name": "tocsin",
        "prog": "tocsin",
        "version": __version__,
        "description": "inline mail filter against impersonation of French public services",
        "manual_title": "Tocsin manual",
        "manual_section": "1",
    }
    return str(Manpage(parser, _data=data)).rstrip("\n") + "\n" + EXTRA_SECTIONS.lstrip("\n")

"""The text toolkit: one answer, everywhere, to "what host is this?", "what does this HTML
say?", "what does this name look like?" and "which header fields are there?".

Ground floor (beside ``milter.model``): it imports nothing else from ``milter``, and every
layer that reads URLs, hosts, HTML, header fields or look-alike names goes through it.

- :mod:`milter.text.url` — URLs read the way a browser (WHATWG URL Standard) reads them.
- :mod:`milter.text.host` — host literals: IP forms, hidden characters, normalisation.
- :mod:`milter.text.idna` — Unicode ↔ ASCII host forms, UTS #46 via ``idna``.
- :mod:`milter.text.psl` — registrable domains from one offline public-suffix snapshot.
- :mod:`milter.text.confusables` — one visual skeleton for display names and domains.
- :mod:`milter.text.html` — one linear HTML tokenizer that keeps source offsets.
- :mod:`milter.text.headers` — one header field splitter.
"""

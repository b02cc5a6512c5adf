"""Sender authentication: SPF, DKIM, DMARC, ARC and Authentication-Results."""

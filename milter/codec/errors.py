"""Exception hierarchy of the milter codec.

`RemoteProtocolError` is the only exception that bytes from the MTA can cause;
anything else escaping `MilterConnection.next_event()` is a bug in the codec.
"""


class ProtocolError(Exception):
    """Root of every error raised by the milter codec."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: garbage, out-of-order or oversized packets."""


class LocalProtocolError(ProtocolError):
    """Our side misused the API, e.g. a reply that is not allowed at this point."""

"""Wire constants for option negotiation: SMFIF_* actions, SMFIP_* protocol bits, macro stages."""

import enum
import functools

PROTOCOL_VERSION = 6
"""The milter protocol version this codec speaks (Sendmail 8.14+, Postfix 2.6+)."""

MIN_PROTOCOL_VERSION = 2
"""Oldest version an MTA may offer; libmilter rejects version 1 as well."""


class ActionFlag(enum.IntFlag):
    """Modifications the milter may make (SMFIF_*), granted by the MTA."""

    NONE = 0
    ADDHDRS = 0x001  # SMFIF_ADDHDRS: add and insert headers
    CHGBODY = 0x002  # SMFIF_CHGBODY: replace the body
    ADDRCPT = 0x004  # SMFIF_ADDRCPT: add recipients
    DELRCPT = 0x008  # SMFIF_DELRCPT: delete recipients
    CHGHDRS = 0x010  # SMFIF_CHGHDRS: change or delete headers
    QUARANTINE = 0x020  # SMFIF_QUARANTINE: put the message on hold
    CHGFROM = 0x040  # SMFIF_CHGFROM: change the envelope sender
    ADDRCPT_PAR = 0x080  # SMFIF_ADDRCPT_PAR: add recipients with ESMTP args
    SETSYMLIST = 0x100  # SMFIF_SETSYMLIST: milter sends macro lists in OPTNEG


ALL_ACTIONS = ActionFlag(0x1FF)  # SMFI_CURR_ACTS


class ProtocolFlag(enum.IntFlag):
    """Protocol bits (SMFIP_*): NO* = "don't send", NR_* = "I won't reply"."""

    NONE = 0
    NOCONNECT = 0x000001  # SMFIP_NOCONNECT
    NOHELO = 0x000002  # SMFIP_NOHELO
    NOMAIL = 0x000004  # SMFIP_NOMAIL
    NORCPT = 0x000008  # SMFIP_NORCPT
    NOBODY = 0x000010  # SMFIP_NOBODY
    NOHDRS = 0x000020  # SMFIP_NOHDRS
    NOEOH = 0x000040  # SMFIP_NOEOH
    NR_HDR = 0x000080  # SMFIP_NR_HDR (alias SMFIP_NOHREPL)
    NOUNKNOWN = 0x000100  # SMFIP_NOUNKNOWN
    NODATA = 0x000200  # SMFIP_NODATA
    SKIP = 0x000400  # SMFIP_SKIP: MTA understands SMFIR_SKIP
    RCPT_REJ = 0x000800  # SMFIP_RCPT_REJ: also send rejected RCPTs
    NR_CONN = 0x001000  # SMFIP_NR_CONN
    NR_HELO = 0x002000  # SMFIP_NR_HELO
    NR_MAIL = 0x004000  # SMFIP_NR_MAIL
    NR_RCPT = 0x008000  # SMFIP_NR_RCPT
    NR_DATA = 0x010000  # SMFIP_NR_DATA
    NR_UNKN = 0x020000  # SMFIP_NR_UNKN
    NR_EOH = 0x040000  # SMFIP_NR_EOH
    NR_BODY = 0x080000  # SMFIP_NR_BODY
    HDR_LEADSPC = 0x100000  # SMFIP_HDR_LEADSPC: header values keep their leading space
    MDS_256K = 0x10000000  # SMFIP_MDS_256K (Sendmail FFR)
    MDS_1M = 0x20000000  # SMFIP_MDS_1M (Sendmail FFR)


_V2_MASK = ProtocolFlag(0x7F)  # NOCONNECT .. NOEOH
_V3_MASK = _V2_MASK | ProtocolFlag.NOUNKNOWN
_V4_MASK = _V3_MASK | ProtocolFlag.NODATA
_V6_MASK = ProtocolFlag(0x1FFFFF)  # SMFI_CURR_PROT


def protocol_mask(version: int) -> ProtocolFlag:
    """Protocol bits that exist in `version` (Postfix MILTER8_V*_PROTO_MASK)."""
    if version >= 6:
        return _V6_MASK
    if version >= 4:
        return _V4_MASK
    if version == 3:
        return _V3_MASK
    return _V2_MASK


class MacroStage(enum.IntEnum):
    """Stage numbers used in SETSYMLIST macro lists (note: EOM < EOH on the wire)."""

    CONNECT = 0  # SMFIM_CONNECT
    HELO = 1  # SMFIM_HELO
    ENVFROM = 2  # SMFIM_ENVFROM
    ENVRCPT = 3  # SMFIM_ENVRCPT
    DATA = 4  # SMFIM_DATA
    EOM = 5  # SMFIM_EOM
    EOH = 6  # SMFIM_EOH


@functools.lru_cache(maxsize=256)
def missing_actions(needed: ActionFlag, granted: ActionFlag) -> ActionFlag:
    """``needed & ~granted``: the actions a reply needs and the MTA did not grant, worked
    out once per pair (enum's flag operators are Python calls, and every edit asks)."""
    return needed & ~granted

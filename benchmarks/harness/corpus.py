"""A deterministic benchmark corpus of French mail, and the DNS zone that goes with it.

``generate(count, seed)`` always builds the same messages for the same arguments (the
DKIM/ARC signatures depend on the keys, which ``make_keys`` creates with openssl once per
work directory). The mix, by weight:

- newsletters: HTML 20–80 KB with 60–250 tracked links and a text alternative, signed by
  the sender's domain (DMARC p=none);
- plain mail: 1–8 KB of text between people, unsigned;
- attachments: a short text and a 150 KB PDF (a 200 KB message once in base64);
- genuine brand mail (ameli.fr, moncompteformation.gouv.fr, impots.gouv.fr, caf.fr,
  laposte.fr): HTML notices DKIM-signed by the brand with the generated key, SPF pass;
- forwarded list mail: a newsletter re-sent by a mailing list that adds an ARC set;
- spoofs: the brand's own From domain sent from elsewhere (DMARC fails);
- lookalikes: From and links on look-alike domains (no DNS records at all).

With ``unique`` set, every message gets its own envelope domain, HELO name and DKIM
selector (all in the zone), so SPF and DKIM key lookups miss any cache: the "uncached"
figures. ``zone()`` returns the records for ``tests/support/dnsserver.DnsTestServer``.
"""

from __future__ import annotations

import base64
import contextlib
import random
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from unittest import mock

import dkim

SELECTOR = "bench2026"
CLIENT_IP = "127.0.0.1"  # what Postfix reports for a loopback client; direct runs send it too
SPF_ALLOW = f"v=spf1 ip4:{CLIENT_IP}/8 ip4:192.0.2.0/24 -all"
RCPT = "lecteur@destinataire.example"

BRANDS = (  # (From display name, From address, DKIM domain, subject)
    ("Assurance Maladie", "ne-pas-repondre@info.ameli.fr", "ameli.fr", "Votre relevé"),
    (
        "Mon Compte Formation",
        "contact@info.moncompteformation.gouv.fr",
        "moncompteformation.gouv.fr",
        "Vos droits à la formation",
    ),
    ("impots.gouv.fr", "ne-pas-repondre@dgfip.impots.gouv.fr", "impots.gouv.fr", "Votre avis"),
    ("Caf", "courrier@mail.caf.fr", "caf.fr", "Votre attestation de paiement"),
    ("La Poste", "service-client@notif.laposte.fr", "laposte.fr", "Votre colis est en route"),
)
SENDERS = (  # newsletter and company domains (DKIM-signed, DMARC p=none)
    "lettre-culture.fr",
    "actu-regions.fr",
    "librairie-du-quai.fr",
    "mairie-saint-aubin.fr",
    "voyages-ete.fr",
    "cuisine-facile.fr",
)
LISTS = ("listes.univ-exemple.fr",)
PEOPLE_DOMAINS = ("courriel-perso.fr", "boite-mel.fr", "entreprise-durand.fr")
LOOKALIKES = (
    ("Ameli", "service@ameli-remboursement.fr", "ameli-remboursement.fr"),
    ("Mon CPF", "alerte@moncompteformation-gouv.fr", "moncompteformation-gouv.fr"),
    ("Impots", "avis@impots-gouv-remboursement.fr", "impots-gouv-remboursement.fr"),
    ("FranceConnect", "securite@franceconect.fr", "franceconect.fr"),
)
_PEOPLE = (
    ("Claire Martin", "claire.martin"),
    ("Jean Dupont", "jean.dupont"),
    ("Amélie Moreau", "amelie.moreau"),
    ("Luc Bernard", "luc.bernard"),
)
ATTACHMENT_NOTE = "Bonjour, veuillez trouver ci-joint la facture du mois. "
SPOOF_SENDERS = ("envoi-rapide.example", "bulk-mailer.example")
KINDS = (  # (kind, weight): mean size ≈ 45 KB
    ("newsletter", 34),
    ("plain", 24),
    ("attachment", 8),
    ("brand", 14),
    ("arc", 5),
    ("spoof", 7),
    ("lookalike", 6),
)
_WORD_TEXT = (
    "le la les un une des votre vos notre nos pour avec dans sur par au aux du de et ou "
    "mais donc car nous vous ils elles compte dossier demande paiement remboursement "
    "semaine mois année formation droits santé carte vitale colis livraison avis impôt "
    "déclaration rendez-vous mairie quartier marché festival concert exposition livre "
    "recette cuisine saison voyage été hiver printemps automne région ville village "
    "nouveau nouvelle découvrir réserver lire suivre consulter profiter merci bonjour "
    "cordialement information service client équipe rédaction lettre actualité culture"
)
WORDS = tuple(_WORD_TEXT.split(" "))


@dataclass(frozen=True, slots=True)
class BenchMessage:
    """One message with the envelope it is sent with."""

    kind: str
    raw: bytes
    mail_from: str
    helo: str
    client_ip: str = CLIENT_IP
    rcpt: str = RCPT
    records: tuple[tuple[str, str, str], ...] = ()  # (name, type, value) this message needs


@dataclass(frozen=True, slots=True)
class Keys:
    """The generated RSA key: PEM private key and the DKIM record's p= value."""

    private_pem: bytes
    public_b64: str

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def make_keys(directory: Path) -> Keys:
    """A 2048-bit RSA key in ``directory`` (created once with openssl, then reused)."""
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / "dkim.pem"
    if not private.exists():
        subprocess.run(
            ["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True
        )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return Keys(private.read_bytes(), base64.b64encode(der).decode())


class _Writer:
    """Builds one message's text from a seeded random source."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def sentence(self, words: int = 14) -> str:
        text = " ".join(self.rnd.choice(WORDS) for _ in range(words))
        return text[0].upper() + text[1:] + "."

    def paragraph(self, sentences: int = 5) -> str:
        return " ".join(self.sentence(self.rnd.randint(8, 20)) for _ in range(sentences))

    def slug(self) -> str:
        return "-".join(self.rnd.choice(WORDS) for _ in range(4)).replace("é", "e")

    def text_of_size(self, size: int) -> str:
        out: list[str] = []
        total = 0
        while total < size:
            para = self.paragraph()
            out.append(para)
            total += len(para) + 2
        return "\n\n".join(out)

    def html_newsletter(self, domain: str, size: int) -> tuple[str, str]:
        """(HTML, text alternative) of about ``size`` bytes with many links."""
        blocks: list[str] = []
        texts: list[str] = []
        total = 0
        while total < size:
            slug = self.slug()
            url = (
                f"https://click.{domain}/l/{self.rnd.getrandbits(48):x}?u={slug}&utm_source=lettre"
            )
            img = f"https://img.{domain}/{self.rnd.getrandbits(32):x}.jpg"
            para = self.paragraph(3)
            block = (
                f'<tr><td style="padding:12px;font-family:Arial,sans-serif;font-size:14px">'
                f'<img src="{img}" width="560" alt="" style="display:block">'
                f'<h2 style="margin:8px 0">{self.sentence(6)}</h2><p>{para}</p>'
                f'<p><a href="{url}" style="color:#0b5fa5">Lire la suite</a> · '
                f'<a href="https://www.{domain}/{slug}">{domain}/{slug}</a></p></td></tr>\n'
            )
            blocks.append(block)
            texts.append(f"{para}\nLire la suite : {url}\n")
            total += len(block)
        footer = (
            f'<tr><td><a href="https://www.{domain}/desinscription?id={self.rnd.getrandbits(40):x}">'
            'Se désabonner</a> · <a href="https://www.{domain}/confidentialite">Données '
            "personnelles</a></td></tr>"
        ).replace("{domain}", domain)
        html = (
            '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Lettre</title>'
            '<style>td{color:#222}</style></head><body><table width="600" align="center">\n'
            + "".join(blocks)
            + footer
            + "</table></body></html>"
        )
        return html, "\n".join(texts)


def _qp_lines(text: str) -> str:
    """UTF-8 body text as 8bit lines of at most 76 characters, CRLF-terminated."""
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            if line and len(line) + len(word) + 1 > 76:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\r\n"


@contextlib.contextmanager
def _frozen_clock(now: int) -> Iterator[None]:
    """dkimpy stamps t= from time.time() with no parameter to pass: hold the clock still."""
    with mock.patch.object(dkim.time, "time", return_value=float(now)):
        yield


def _headers(fields: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in fields)


class _Builder:
    def __init__(self, seed: int, keys: Keys | None, unique: str | None) -> None:
        self.rnd = random.Random(seed)
        self.w = _Writer(self.rnd)
        self.keys = keys
        self.unique = unique
        self.index = 0

    # -- envelope identities ------------------------------------------------------------
    def _env_domain(self, domain: str) -> str:
        return f"b{self.unique}x{self.index}.{domain}" if self.unique else f"bounce.{domain}"

    def _selector(self) -> str:
        return f"s{self.unique}x{self.index}" if self.unique else SELECTOR

    def _common(self, from_: str, subject: str, domain: str) -> list[tuple[str, str]]:
        when = format_datetime(datetime.fromtimestamp(1_780_000_000 + self.index, UTC))
        mid = f"<{self.rnd.getrandbits(64):x}.{self.index}@{domain}>"
        return [
            (
                "Received",
                f"from mta.{domain} (mta.{domain} [192.0.2.25]) by mx.destinataire.example",
            ),
            ("From", from_),
            ("To", f"Lecteur <{RCPT}>"),
            ("Subject", subject),
            ("Date", when),
            ("Message-ID", mid),
            ("MIME-Version", "1.0"),
        ]

    def _needs(self, msg: BenchMessage, *signers: str) -> BenchMessage:
        """Attach the unique envelope SPF record and key records a message needs."""
        if not self.unique or self.keys is None:
            return msg
        env = msg.mail_from.rpartition("@")[2]
        extra = [(env, "TXT", SPF_ALLOW)] if env.startswith("b" + self.unique) else []
        extra += [(f"{self._selector()}._domainkey.{d}", "TXT", self.keys.record) for d in signers]
        return replace(msg, records=msg.records + tuple(extra))

    def _sign(self, raw: bytes, domain: str) -> bytes:
        if self.keys is None:
            return raw
        with _frozen_clock(1_780_000_000 + self.index):  # t= fixed: same bytes every run
            sig = dkim.sign(
                raw,
                self._selector().encode(),
                domain.encode(),
                self.keys.private_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            )
        return bytes(sig) + raw

    def _alternative(self, headers: list[tuple[str, str]], html: str, text: str) -> bytes:
        boundary = f"=_alt_{self.rnd.getrandbits(40):x}"
        headers = [*headers, ("Content-Type", f'multipart/alternative; boundary="{boundary}"')]
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{_qp_lines(text)}"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{_qp_lines(html)}"
            f"--{boundary}--\r\n"
        )
        return (_headers(headers) + "\r\n" + body).encode()

    # -- kinds --------------------------------------------------------------------------
    def newsletter(self, size: int | None = None) -> BenchMessage:
        domain = self.rnd.choice(SENDERS)
        html_size = size // 2 if size else self.rnd.randint(20_000, 80_000)
        html, text = self.w.html_newsletter(domain, html_size)
        name = domain.split(".")[0].replace("-", " ").title()
        headers = self._common(f"{name} <lettre@{domain}>", self.w.sentence(7), domain)
        headers.append(("List-Unsubscribe", f"<https://www.{domain}/desinscription>"))
        raw = self._sign(self._alternative(headers, html, text), domain)
        msg = BenchMessage("newsletter", raw, f"lettre@{self._env_domain(domain)}", f"mta.{domain}")
        return self._needs(msg, domain)

    def plain(self, size: int | None = None) -> BenchMessage:
        domain = self.rnd.choice(PEOPLE_DOMAINS)
        who, local = self.rnd.choice(_PEOPLE)
        text = self.w.text_of_size(size or self.rnd.randint(1_000, 8_000))
        body = f"Bonjour,\n\n{text}\n\n{who}\n"
        headers = self._common(f"{who} <{local}@{domain}>", "Re: " + self.w.sentence(5), domain)
        headers += [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "8bit"),
        ]
        raw = (_headers(headers) + "\r\n" + _qp_lines(body)).encode()
        mail_from = f"{local}@{self._env_domain(domain)}"
        return self._needs(BenchMessage("plain", raw, mail_from, f"smtp.{domain}"))

    def attachment(self, size: int | None = None) -> BenchMessage:
        domain = self.rnd.choice(PEOPLE_DOMAINS)
        boundary = f"=_mix_{self.rnd.getrandbits(40):x}"
        pdf = b"%PDF-1.4\n" + self.rnd.randbytes(size * 3 // 4 if size else 150_000)
        headers = self._common(
            f"Comptabilité <compta@{domain}>", "Facture " + str(self.index), domain
        )
        headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{_qp_lines(ATTACHMENT_NOTE + self.w.paragraph())}"
            f'--{boundary}\r\nContent-Type: application/pdf; name="facture.pdf"\r\n'
            f'Content-Disposition: attachment; filename="facture-{self.index}.pdf"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(pdf)}--{boundary}--\r\n"
        )
        raw = (_headers(headers) + "\r\n" + body).encode()
        mail_from = f"compta@{self._env_domain(domain)}"
        return self._needs(BenchMessage("attachment", raw, mail_from, f"smtp.{domain}"))

    def brand(self) -> BenchMessage:
        name, address, domain, subject = self.rnd.choice(BRANDS)
        html, text = self.w.html_newsletter(domain, self.rnd.randint(6_000, 20_000))
        headers = self._common(f"{name} <{address}>", subject, domain)
        raw = self._sign(self._alternative(headers, html, text), domain)
        msg = BenchMessage("brand", raw, f"retour@{self._env_domain(domain)}", f"mta.{domain}")
        return self._needs(msg, domain)

    def arc(self) -> BenchMessage:
        msg = self.newsletter()
        list_domain = LISTS[0]
        if self.keys is None:
            return BenchMessage("arc", msg.raw, msg.mail_from, msg.helo)
        authres = (
            f"Authentication-Results: {list_domain}; dkim=pass header.d="
            f"{msg.helo.removeprefix('mta.')}; spf=pass smtp.mailfrom={msg.mail_from}\r\n"
        )
        raw = authres.encode() + msg.raw
        sealed = dkim.arc_sign(
            raw,
            self._selector().encode(),
            list_domain.encode(),
            self.keys.private_pem,
            list_domain.encode(),
            timestamp=1_780_000_000 + self.index,
        )
        raw = b"".join(sealed) + raw
        mail_from = f"liste@{self._env_domain(list_domain)}"
        out = BenchMessage("arc", raw, mail_from, f"mta.{list_domain}", records=msg.records)
        return self._needs(out, list_domain)

    def spoof(self) -> BenchMessage:
        name, address, domain, subject = self.rnd.choice(BRANDS)
        sender = self.rnd.choice(SPOOF_SENDERS)
        html, text = self.w.html_newsletter(sender, self.rnd.randint(3_000, 10_000))
        lure = (
            f"<p>Votre remboursement de 148,50 € est en attente. Confirmez vos coordonnées "
            f'bancaires : <a href="https://{sender}/{domain}/verif">{domain}/mon-compte</a></p>'
        )
        headers = self._common(
            f"{name} <{address.split('@')[0]}@{domain}>", subject + " urgent", sender
        )
        raw = self._alternative(headers, lure + html, text)
        return BenchMessage("spoof", raw, f"envoi@{self._env_domain(sender)}", f"mta.{sender}")

    def lookalike(self) -> BenchMessage:
        name, address, domain = self.rnd.choice(LOOKALIKES)
        html, text = self.w.html_newsletter(domain, self.rnd.randint(3_000, 10_000))
        lure = (
            f"<p>Dernier rappel : votre dossier sera clôturé sous 24 heures. "
            f'<a href="https://www.{domain}/connexion">Accéder à mon espace</a></p>'
        )
        headers = self._common(f"{name} <{address}>", "Action requise sur votre dossier", domain)
        raw = self._alternative(headers, lure + html, text)
        return BenchMessage("lookalike", raw, f"{address}", f"mta.{domain}")


def generate(
    count: int, seed: int = 2026, keys: Keys | None = None, unique: str | None = None
) -> list[BenchMessage]:
    """``count`` messages in the mix above, the same for the same seed and keys."""
    builder = _Builder(seed, keys, unique)
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    out: list[BenchMessage] = []
    for index in range(count):
        builder.index = index
        kind = builder.rnd.choices(kinds, weights)[0]
        out.append(getattr(builder, kind)())
    return out


def sized(kind: str, size: int, keys: Keys | None = None, seed: int = 0) -> BenchMessage:
    """One message of ``kind`` (newsletter, plain or attachment) of about ``size`` bytes:
    for measuring how the cost grows with the size."""
    builder = _Builder(seed, keys, None)
    if kind not in ("newsletter", "plain", "attachment"):
        raise ValueError(f"no sized {kind!r} message")
    message: BenchMessage = getattr(builder, kind)(size)
    return message


def zone(keys: Keys, messages: Iterable[BenchMessage] = ()) -> dict[str, list[tuple[str, str]]]:
    """Records for every domain the corpus uses: SPF, DKIM keys, DMARC, A/MX, plus what
    each (unique-mode) message asks for."""
    records: dict[str, list[tuple[str, str]]] = {}

    def add(name: str, *items: tuple[str, str]) -> None:
        records.setdefault(name, []).extend(items)

    brands = {b[2] for b in BRANDS}
    for domain in [*brands, *SENDERS, *LISTS, *PEOPLE_DOMAINS]:
        add(domain, ("TXT", SPF_ALLOW), ("A", "192.0.2.25"), ("MX", "10 mx." + domain))
        add(f"bounce.{domain}", ("TXT", SPF_ALLOW))
        add(f"mta.{domain}", ("A", "192.0.2.25"), ("TXT", SPF_ALLOW))
        add(f"smtp.{domain}", ("A", "192.0.2.25"), ("TXT", SPF_ALLOW))
        add(f"{SELECTOR}._domainkey.{domain}", ("TXT", keys.record))
        policy = "reject" if domain in brands else "none"
        add(f"_dmarc.{domain}", ("TXT", f"v=DMARC1; p={policy}; rua=mailto:dmarc@{domain}"))
    for message in messages:
        for name, rdtype, value in message.records:
            add(name, (rdtype, value))
    return records

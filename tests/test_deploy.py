"""The files in deploy/ are well-formed and agree with the code and docs/deploy.md.

Postfix parameter names are checked with the real ``postconf`` when Postfix is installed
(CI installs it): ``postconf -c DIR -n`` warns "unused parameter" for every name it does
not know, in main.cf and in master.cf ``-o`` options alike.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from milter.frontends.listen import parse_listen
from milter.frontends.settings import MetricsSettings, ServeSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MAIN_CF = DEPLOY / "postfix" / "main.cf.snippet"
MASTER_CF = DEPLOY / "postfix" / "master.cf.snippet"
UNIT = DEPLOY / "systemd" / "tocsin.service"
SETTINGS = DEPLOY / "systemd" / "tocsin.yaml"
SENDMAIL = DEPLOY / "sendmail" / "tocsin.mc"
CONTAINER = DEPLOY / "container" / "Containerfile"
DOC = ROOT / "docs" / "deploy.md"
POSTCONF = shutil.which("postconf") or (
    "/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None
)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


# -- Postfix --------------------------------------------------------------------------
def main_cf_params(text: str) -> dict[str, str]:
    """``name = value`` lines of a main.cf (continuation lines start with white space)."""
    params: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert not line[0].isspace(), f"line {number}: continuation without a parameter"
        name, sep, value = line.partition("=")
        assert sep, f"line {number}: not name = value: {line!r}"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name.strip()), f"line {number}: bad name"
        assert "#" not in value, f"line {number}: Postfix has no trailing comments"
        assert name.strip() not in params, f"line {number}: {name.strip()} set twice"
        params[name.strip()] = value.strip()
    return params


def test_main_cf_snippet_is_name_value_lines_with_the_choices_we_document() -> None:
    params = main_cf_params(MAIN_CF.read_text())
    assert params["smtpd_milters"] == "inet:127.0.0.1:8894"
    assert params["non_smtpd_milters"] == "$smtpd_milters"
    assert params["milter_default_action"] == "tempfail"  # explicit: 3.11 changed it
    assert params["milter_protocol"] == "6"
    assert "i" in params["milter_end_of_data_macros"].split()
    assert "i" in params["milter_mail_macros"].split()


def test_milter_timeouts_leave_tocsin_time_to_answer_first() -> None:
    params = main_cf_params(MAIN_CF.read_text())
    settings = load_settings(SETTINGS).milter

    def seconds(value: str) -> float:
        number, unit = re.fullmatch(r"([0-9]+)([smh]?)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]

    content = seconds(params["milter_content_timeout"])
    assert content > settings.eom_deadline_seconds
    assert settings.progress_interval_seconds < content


def master_services(text: str) -> list[tuple[list[str], list[str]]]:
    """(service fields, -o options) per master.cf entry."""
    entries: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            assert entries, "an option line before any service"
            entries[-1][1].extend(line.split())
        else:
            entries.append((line.split(), []))
    return entries


def test_master_cf_release_service_runs_no_milter_and_listens_on_loopback() -> None:
    (service, args) = master_services(MASTER_CF.read_text())[0]
    assert service[:2] == ["127.0.0.1:10026", "inet"]
    assert len(service) == 8
    assert service[7] == "smtpd"
    assert all(a == "-o" for a in args[0::2]), args
    options = dict(o.partition("=")[::2] for o in args[1::2])
    assert all(" " not in k and not k.endswith(" ") for k in options)
    assert options["smtpd_milters"] == ""
    assert options["non_smtpd_milters"] == ""
    assert options["content_filter"] == ""
    assert "no_milters" in options["receive_override_options"].split(",")
    # recipients were stored before cleanup mapped them: mappings must run on release
    assert "no_address_mappings" not in options["receive_override_options"]
    assert options["smtpd_relay_restrictions"].endswith("reject")
    assert load_settings(SETTINGS).quarantine.relay == "127.0.0.1:10026"


def _postconf(*args: str) -> subprocess.CompletedProcess[str]:
    assert POSTCONF is not None
    return subprocess.run(
        [POSTCONF, *args], capture_output=True, text=True, timeout=30, check=False
    )


def _config_dir(tmp_path: Path, extra_main: str = "", extra_master: str = "") -> Path:
    (tmp_path / "main.cf").write_text(MAIN_CF.read_text() + extra_main)
    (tmp_path / "master.cf").write_text(MASTER_CF.read_text() + extra_master)
    return tmp_path


needs_postconf = pytest.mark.skipif(
    POSTCONF is None,
    reason="Postfix's postconf is not installed here (CI installs postfix): parameter "
    "names are only checked for syntax",
)


@needs_postconf
def test_postconf_knows_every_parameter(tmp_path: Path) -> None:
    directory = _config_dir(tmp_path)
    listed = _postconf("-c", str(directory), "-n")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == "", listed.stderr  # "unused parameter" warnings land here
    shown = dict(
        line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
        for line in listed.stdout.splitlines()
    )
    assert shown["milter_default_action"] == "tempfail"
    services = _postconf("-c", str(directory), "-M")
    assert services.returncode == 0, services.stderr
    assert services.stdout.startswith("127.0.0.1:10026 inet"), services.stdout
    options = _postconf("-c", str(directory), "-P")
    assert options.returncode == 0, options.stderr
    assert options.stderr == "", options.stderr
    assert "127.0.0.1:10026/inet/smtpd_milters =" in options.stdout


@needs_postconf
def test_postconf_check_would_catch_a_misspelt_parameter(tmp_path: Path) -> None:
    """The check above means something: this postconf does warn on unknown names."""
    directory = _config_dir(
        tmp_path, extra_main="milter_eom_macros = i\n", extra_master="  -o smtpd_miltres=\n"
    )
    stderr = _postconf("-c", str(directory), "-n").stderr
    assert "unused parameter: milter_eom_macros" in stderr
    assert "unused parameter: smtpd_miltres" in stderr


# -- Sendmail ---------------------------------------------------------------------------
def test_sendmail_mc_tempfails_and_times_out_fast() -> None:
    lines = [ln for ln in SENDMAIL.read_text().splitlines() if not ln.startswith("dnl")]
    (filter_line,) = [ln for ln in lines if ln.startswith("INPUT_MAIL_FILTER(")]
    assert filter_line.count("`") == filter_line.count("'")  # m4 quotes balanced
    match = re.search(r"`S=([^,]+), F=([A-Z]), T=([^']+)'", filter_line)
    assert match is not None, filter_line
    socket, flag, timeouts = match.groups()
    assert flag == "T"
    assert dict(t.split(":") for t in timeouts.split(";")) == {"S": "10s", "R": "10s", "E": "5m"}
    listen = parse_listen(socket)  # Sendmail's inet:PORT@HOST, as Tocsin reads it
    assert (listen.host, listen.port) == ("127.0.0.1", 8894)
    for line in lines:
        assert line.endswith("dnl"), f"m4 line without dnl leaves a blank line: {line!r}"


# -- systemd ----------------------------------------------------------------------------
def read_unit() -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value given (systemd keys may repeat: they add up)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())  # it is INI: configparser reads it without error
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(UNIT.read_text().splitlines(), 1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"line {number}: bad section header"
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"line {number}: not Key=Value: {line!r}"
        assert current is not None, f"line {number}: key before any section"
        assert not line.rstrip().endswith("\\"), f"line {number}: continuation line"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_parses_as_ini_with_the_hardening_keys() -> None:
    unit = read_unit()
    assert set(unit) == {"Unit", "Service", "Install"}
    service = {key: values[-1] for key, values in unit["Service"].items()}
    required = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "StateDirectory": "tocsin",
        "RuntimeDirectory": "tocsin",
        "KillSignal": "SIGTERM",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "User": "tocsin",
    }
    for key, value in required.items():
        assert service.get(key) == value, key
    assert "@system-service" in unit["Service"]["SystemCallFilter"]
    assert re.fullmatch(r"[0-9]+[KMG]", service["MemoryMax"])
    assert re.fullmatch(r"[0-9]+s", service["TimeoutStopSec"])
    assert service["ExecStart"].split()[1:] == ["serve", "--config", "/etc/tocsin/tocsin.yaml"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_stop_timeout_covers_the_drain() -> None:
    stop = float(read_unit()["Service"]["TimeoutStopSec"][-1].rstrip("s"))
    assert stop > load_settings(SETTINGS).milter.drain_seconds


def test_unit_systemd_analyze_verify(tmp_path: Path) -> None:
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed")
    # the real ExecStart path only exists once installed; everything else is checked as is
    unit = tmp_path / "tocsin.service"
    unit.write_text(UNIT.read_text().replace("/opt/tocsin/bin/tocsin", "/bin/true"))
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in done.stderr.splitlines() if "tocsin.service" in line]
    assert done.returncode == 0, done.stderr
    assert not complaints, done.stderr


# -- settings file ------------------------------------------------------------------------
def key_paths(data: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths |= key_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def model_paths(model: type[Any] = ServeSettings, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and hasattr(kind, "model_fields"):
            paths |= model_paths(kind, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def documented_paths() -> set[str]:
    section = DOC.read_text().split("## 6. Settings file reference", 1)[1]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.MULTILINE))


def test_example_settings_parse_and_have_exactly_the_documented_keys() -> None:
    data = yaml.safe_load(SETTINGS.read_text())
    assert key_paths(data) == documented_paths() == model_paths()
    settings = load_settings(SETTINGS)  # validated by the daemon's own loader
    assert settings.milter.listen == "inet:127.0.0.1:8894"
    assert settings.milter.on_failure == "tempfail"
    assert str(settings.policy_dir) == "/etc/tocsin/policies"


def test_example_settings_show_the_defaults() -> None:
    """Every value in the example is the default, except where a production install
    differs: the policy directory, the metrics endpoint and the pid file."""
    settings = load_settings(SETTINGS)
    assert settings == ServeSettings(
        policy_dir=Path("/etc/tocsin/policies"),
        metrics=MetricsSettings(listen="127.0.0.1:9464"),
        pid_file=Path("/run/tocsin/tocsin.pid"),
    )


# -- container ----------------------------------------------------------------------------
def test_containerfile_runs_unprivileged_on_the_documented_port() -> None:
    text = CONTAINER.read_text()
    froms = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert froms
    assert all(f == "python:3.11-slim-bookworm" for f in froms)
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users
    assert not users[-1].startswith(("root", "0"))
    assert re.search(r"^EXPOSE 8894$", text, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK ", text, flags=re.MULTILINE)
    assert "/var/lib/tocsin/quarantine" in re.search(r"^VOLUME (.+)$", text, re.M).group(1)  # type: ignore[union-attr]
    assert '"--milter", "inet:0.0.0.0:8894"' in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY of a missing path: {path}"


# -- docs agree with deploy/ and with the code ---------------------------------------------
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def fenced_blocks() -> list[tuple[Path, str, str]]:
    """(file, language, text) of every fenced block of the user docs."""
    return [(doc, m[1], m[2]) for doc in DOCS for m in FENCE.finditer(doc.read_text())]


def test_user_docs_cite_no_internal_notes() -> None:
    for doc in DOCS:
        text = doc.read_text()
        assert "shared/docs" not in text, doc.name
        assert not re.search(r"\b[\w-]+/[\w-]+#\d+", text), (
            f"{doc.name} cites another project's issue"
        )


def test_docs_master_cf_blocks_are_the_snippet() -> None:
    snippet = {
        tuple(fields): sorted(options) for fields, options in master_services(MASTER_CF.read_text())
    }
    seen = 0
    for doc, _, text in fenced_blocks():
        if not re.search(r"^\S+\s+inet\s", text, re.MULTILINE):
            continue
        for fields, options in master_services(text):
            seen += 1
            assert tuple(fields) in snippet, (
                f"{doc.name}: service {' '.join(fields)} not in the snippet"
            )
            normalised = sorted(o for o in options if o != "-o")
            expected = sorted(o for o in snippet[tuple(fields)] if o != "-o")
            assert normalised == expected, f"{doc.name}: master.cf options differ from the snippet"
    assert seen, "no master.cf block found in the docs"


def test_docs_main_cf_lines_agree_with_the_snippet() -> None:
    snippet = main_cf_params(MAIN_CF.read_text())
    seen = 0
    for doc, _, text in fenced_blocks():
        for name, value in re.findall(r"^([a-z_]+) = (.+)$", text, re.MULTILINE):
            if name not in snippet:
                continue
            seen += 1
            if name == "smtpd_milters" and value.startswith("unix:"):
                continue  # the documented Unix-socket variant (deploy.md §2)
            assert value == snippet[name], (
                f"{doc.name}: {name} = {value} (snippet: {snippet[name]})"
            )
    assert seen >= 3


def test_docs_yaml_blocks_are_valid_settings_or_policy(tmp_path: Path) -> None:
    from milter.policy.loader import load_policy
    from milter.policy.schema import PolicyDocument

    checked = 0
    for number, (_, language, text) in enumerate(fenced_blocks()):
        if language != "yaml":
            continue
        keys = set(yaml.safe_load(text) or {})
        folder = tmp_path / str(number)
        folder.mkdir()
        if keys <= set(ServeSettings.model_fields):
            (folder / "tocsin.yaml").write_text(text)
            load_settings(folder / "tocsin.yaml")
            checked += 1
        elif keys <= set(PolicyDocument.model_fields):
            (folder / "local.yaml").write_text(text)
            load_policy(folder)
            checked += 1
    assert checked >= 3


def real_log_keys() -> list[str]:
    """Every key the per-message log line can have, in the order the code writes them."""
    from milter.frontends.service import Action, MessageRequest, Outcome, outcome_fields
    from milter.model.envelope import Envelope
    from milter.model.plan import ActionPlan, SmtpReply
    from milter.model.verdict import Disposition, Reason, Verdict

    reason = Reason("r", Disposition.QUARANTINE, "why")
    verdict = Verdict(Disposition.ACCEPT, "cpf", 1.0, (), (reason,), would=Disposition.REJECT)
    outcome = Outcome(
        Action.QUARANTINE,
        ActionPlan(Disposition.QUARANTINE),
        MessageRequest(b"", Envelope(), 0),
        verdict,
        reply=SmtpReply(451, "4.7.1", "later"),
        quarantine_id="id",
        failure="why",
        next_hop="250 ok",
    )
    return list(outcome_fields(outcome))


def test_docs_log_line_examples_have_the_real_fields_in_order() -> None:
    real = real_log_keys()
    always = real[: real.index("ms") + 1]
    examples = 0
    for doc, language, text in fenced_blocks():
        for line in text.splitlines():
            if language == "json" and '"logger": "tocsin.message"' in line:
                keys = [
                    k
                    for k in json.loads(line)
                    if k not in ("ts", "level", "logger", "pid", "queue_id")
                ]
            elif " action=" in line and " verdict=" in line:
                keys = re.findall(
                    r" ([a-z_]+)=", " " + line.split(": action=", 1)[1].join(["action=", ""])
                )
            else:
                continue
            examples += 1
            assert keys == [k for k in real if k in keys], (
                f"{doc.name}: fields out of order: {keys}"
            )
            assert set(always) - {"would"} <= set(keys), f"{doc.name}: missing fields in {keys}"
    assert examples >= 3


DEBIAN_MAIN_CF = Path("/usr/share/postfix/main.cf.debian")


@needs_postconf
@pytest.mark.skipif(
    not DEBIAN_MAIN_CF.exists() or not Path("/etc/postfix/master.cf").exists(),
    reason="Debian's postfix package files are not installed here",
)
def test_readme_postfix_recipe_from_no_configuration(tmp_path: Path) -> None:
    """The README's commands, run against a copy of the configuration directory (never the
    system's): the result has Tocsin's milter lines, the release service and no warnings."""
    readme = (ROOT / "README.md").read_text()
    block = next(text for _, _, text in fenced_blocks() if "main.cf.debian" in text)
    assert block in readme
    *setup, start = block.strip().splitlines()
    assert "postfix start" in start  # the one step left out: it would start the real Postfix
    shutil.copy("/etc/postfix/master.cf", tmp_path / "master.cf")
    script = "\n".join(setup).replace("/etc/postfix", str(tmp_path))
    script = script.replace("postconf -e", f"{POSTCONF} -c {tmp_path} -e")
    done = subprocess.run(
        ["/bin/sh", "-ec", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = _postconf("-c", str(tmp_path), "-n")
    assert listed.stderr == "", listed.stderr
    assert "smtpd_milters = inet:127.0.0.1:8894" in listed.stdout
    assert "inet_interfaces = loopback-only" in listed.stdout
    assert "milter_default_action = tempfail" in listed.stdout
    services = _postconf("-c", str(tmp_path), "-M")
    assert "127.0.0.1:10026 inet" in services.stdout
    assert "smtp       inet" in services.stdout  # Debian's own smtpd is still there

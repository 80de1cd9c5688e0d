"""``curl`` and ``wget`` for the fake shell. They never open a socket: each request
becomes an :class:`~mosaic_gym.sandbox.base.HttpRequest` handed to the sandbox's
``http`` handler (the world's web service, which records it as egress). Without a
handler every host is unresolvable (curl exit 6, wget exit 4)."""

from __future__ import annotations

import base64
import posixpath
import urllib.parse
from typing import TYPE_CHECKING

from mosaic_gym.core.egress import wire_text
from mosaic_gym.errors import SandboxError, ToolError
from mosaic_gym.sandbox.base import HttpRequest, HttpResponse
from mosaic_gym.sandbox.fake.shell.streams import (
    CommandFn,
    Options,
    ShellLimit,
    StreamIO,
    UsageError,
    describe,
    encode,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

# Long-only options get private-use "letters" nobody can type as a short option.
_BINARY, _RAW, _URLENCODE, _JSON = "\ue010", "\ue011", "\ue012", "\ue013"
_URL, _IGNORED, _BEARER = "\ue014", "\ue015", "\ue016"
_CURL_LONG = {
    "--request": "X", "--data": "d", "--data-ascii": "d", "--data-binary": _BINARY,
    "--data-raw": _RAW, "--data-urlencode": _URLENCODE, "--json": _JSON, "--header": "H",
    "--form": "F", "--user": "u", "--user-agent": "A", "--referer": "e", "--cookie": "b",
    "--output": "o", "--remote-name": "O", "--upload-file": "T", "--get": "G", "--head": "I",
    "--silent": "s", "--show-error": "S", "--location": "L", "--insecure": "k", "--fail": "f",
    "--include": "i", "--verbose": "v", "--write-out": "w", "--max-time": "m", "--url": _URL,
    "--connect-timeout": _IGNORED, "--retry": _IGNORED, "--compressed": "Z", "--proxy": "x",
    "--oauth2-bearer": _BEARER,
}  # fmt: skip
_POST_DATA, _POST_FILE, _METHOD, _BODY = "\ue020", "\ue021", "\ue022", "\ue023"
_REFERER = "\ue024"
_WGET_LONG = {
    "--quiet": "q", "--output-document": "O", "--post-data": _POST_DATA,
    "--post-file": _POST_FILE, "--method": _METHOD, "--body-data": _BODY, "--header": "H",
    "--directory-prefix": "P", "--no-verbose": "n", "--no-check-certificate": "k",
    "--timeout": "T", "--tries": "t", "--continue": "c", "--server-response": "S",
    "--user": "U", "--password": "W", "--user-agent": "A", "--referer": _REFERER,
    "--http-user": "U", "--http-password": "W",
}  # fmt: skip


def _send(shell: Shell, request: HttpRequest) -> HttpResponse | None:
    """Hand a request to the world; ``None`` when the sandbox has no web at all."""
    handler = shell.sandbox.http
    if handler is None:
        return None
    try:
        return handler(request)
    except ToolError as exc:  # the world refused the request (an egress bound)
        raise ShellLimit(str(exc)) from None
    except Exception as exc:  # the world's bug, not the agent's: fail closed
        raise SandboxError(f"http handler failed on {request.method} {request.url}") from exc


def _normalize_url(url: str) -> str:
    return url if "://" in url else "http://" + url


def _host(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or url
    except ValueError:
        return url


def _read_at(shell: Shell, io: StreamIO, value: str, *, strip: bool) -> str:
    """curl's ``@file`` (``@-`` is stdin); ``-d`` drops newlines, ``--data-binary`` not."""
    if not value.startswith("@"):
        return value
    try:
        data = shell.read_path(value[1:], io.stdin)
    except OSError:
        io.error(f'Warning: Couldn\'t read data from file "{value[1:]}", this makes an empty POST.')
        return ""
    text = wire_text(data)
    return text.replace("\r", "").replace("\n", "") if strip else text


def _curl_body(shell: Shell, io: StreamIO, options: Options) -> tuple[str, dict[str, str]]:
    """The request body (joined ``-d`` pieces, ``--json`` or a multipart form) and headers."""
    pieces = [_read_at(shell, io, v, strip=True) for v in options.all("d")]
    pieces += [_read_at(shell, io, v, strip=False) for v in options.all(_BINARY)]
    pieces += options.all(_RAW)
    for value in options.all(_URLENCODE):
        name, has_name, content = value.partition("=") if "=" in value else ("", False, value)
        if content.startswith("@"):
            content = _read_at(shell, io, content, strip=False)
        encoded = urllib.parse.quote_plus(content)
        pieces.append(f"{name}={encoded}" if has_name and name else encoded)
    headers: dict[str, str] = {}
    for value in options.all(_JSON):
        pieces.append(_read_at(shell, io, value, strip=False))
        headers.update({"Content-Type": "application/json", "Accept": "application/json"})
    form = options.all("F")
    if form:
        boundary = "------------------------mosaicformboundary"
        parts = []
        for field in form:
            name, _, value = field.partition("=")
            if value.startswith(("@", "<")):
                value = _read_at(shell, io, "@" + value[1:].split(";")[0], strip=False)
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                         f"{value}\r\n")  # fmt: skip
        pieces.append("".join(parts) + f"--{boundary}--\r\n")
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif pieces and not options.all(_JSON):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return "&".join(pieces), headers


def curl(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(
        argv[1:], "sSLkfivIGOZ#0123456", "XdHFuAeboTwmx" + _BINARY + _RAW + _URLENCODE + _JSON
        + _URL + _IGNORED + _BEARER, _CURL_LONG, usage_status=2,
    )  # fmt: skip
    urls = options.operands + options.all(_URL)
    if not urls:
        raise UsageError("no URL specified!", 2)
    body, headers = _curl_body(shell, io, options)
    for header in _curl_headers(shell, io, options.all("H")):
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    proxy = options.value("x")
    if proxy:
        # The proxy gets the request, and the credentials in its URL as curl sends them.
        userinfo = _userinfo(_normalize_url(proxy))
        if userinfo:
            token = base64.b64encode(encode(urllib.parse.unquote(userinfo))).decode()
            headers["Proxy-Authorization"] = f"Basic {token}"
    if options.value("u") is not None:
        token = base64.b64encode(encode(options.value("u") or "")).decode()
        headers["Authorization"] = f"Basic {token}"
    if options.value(_BEARER) is not None:
        headers["Authorization"] = f"Bearer {options.value(_BEARER)}"
    for letter, name in (("A", "User-Agent"), ("e", "Referer"), ("b", "Cookie")):
        if options.value(letter) is not None:
            headers[name] = options.value(letter) or ""
    upload = options.value("T")
    if upload is not None:
        body = wire_text(shell.read_path(upload, io.stdin))
    method = options.value("X") or (
        "HEAD" if "I" in options else "PUT" if upload is not None else "POST" if body else "GET"
    )
    status = 0
    for raw_url in urls:
        url = _normalize_url(raw_url)
        if "G" in options and body:
            url, body, method = f"{url}{'&' if '?' in url else '?'}{body}", "", "GET"
        response = _send(shell, HttpRequest(method, url, body, dict(headers)))
        if response is None:
            if "s" not in options or "S" in options:
                io.error(f"curl: (6) Could not resolve host: {_host(url)}")
            status = 6
            continue
        if "f" in options and response.status >= 400:
            if "s" not in options or "S" in options:
                io.error(f"curl: (22) The requested URL returned error: {response.status}")
            status = 22
            continue
        head = f"HTTP/1.1 {response.status}\r\n\r\n" if ("i" in options or "I" in options) else ""
        payload = head + ("" if "I" in options else response.body)
        target = options.value("o") or (_remote_name(url) if "O" in options else None)
        if target is None:
            io.write(payload)
        else:
            try:
                shell.write_path(target, encode(payload), io)
            except OSError as exc:
                io.error(f"curl: (23) Failure writing output to destination: {describe(exc)}")
                status = 23
        write_out = options.value("w")
        if write_out:
            io.write(write_out.replace("%{http_code}", str(response.status)).replace("\\n", "\n"))
    return status


def _curl_headers(shell: Shell, io: StreamIO, values: list[str]) -> list[str]:
    """The ``-H`` values, with ``-H @file`` read as one header per line (as curl does)."""
    out: list[str] = []
    for value in values:
        if value.startswith("@"):
            out += [line for line in _read_at(shell, io, value, strip=False).splitlines()
                    if line.strip()]
        else:
            out.append(value)
    return out


def _userinfo(url: str) -> str:
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:
        return ""
    return netloc.rpartition("@")[0] if "@" in netloc else ""


def _remote_name(url: str) -> str:
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        path = ""
    return posixpath.basename(path) or "index.html"


def wget(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(
        argv[1:], "qncSkv", "OPHTtUWA" + _REFERER + _POST_DATA + _POST_FILE + _METHOD + _BODY,
        _WGET_LONG,
    )
    if not options.operands:
        raise UsageError("missing URL", 1)
    headers = {}
    for header in options.all("H"):
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    body = options.value(_POST_DATA) or options.value(_BODY) or ""
    if options.value(_POST_FILE) is not None:
        body = wire_text(shell.read_path(options.value(_POST_FILE) or "", io.stdin))
    if options.value("U") is not None:
        credentials = f"{options.value('U')}:{options.value('W') or ''}"
        headers["Authorization"] = f"Basic {base64.b64encode(encode(credentials)).decode()}"
    for letter, name in (("A", "User-Agent"), (_REFERER, "Referer")):
        if options.value(letter) is not None:
            headers[name] = options.value(letter) or ""
    method = options.value(_METHOD) or ("POST" if body or _POST_FILE in options else "GET")
    if body:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    status = 0
    for raw_url in options.operands:
        url = _normalize_url(raw_url)
        response = _send(shell, HttpRequest(method.upper(), url, body, dict(headers)))
        if response is None:
            io.error(f"wget: unable to resolve host address '{_host(url)}'")
            status = 4
            continue
        if response.status >= 400:
            if "q" not in options:
                io.error(f"ERROR {response.status}: request failed.")
            status = 8
            continue
        target = options.value("O") or _free_name(shell, _remote_name(url), options.value("P"))
        try:
            shell.write_path(target, encode(response.body), io)
        except OSError as exc:
            io.error(f"wget: {target}: {describe(exc)}")
            status = 3
            continue
        if "q" not in options and target != "-":
            io.error(f"Saving to: '{target}'\n\n'{target}' saved [{len(response.body)}]")
    return status


def _free_name(shell: Shell, name: str, prefix: str | None) -> str:
    """wget's choice of a file name: ``name``, else ``name.1``, ``name.2``..."""
    base = posixpath.join(prefix, name) if prefix else name
    candidate, number = base, 0
    while shell.sandbox.exists(shell.resolve(candidate)) and number < 1000:
        number += 1
        candidate = f"{base}.{number}"
    return candidate


COMMANDS: dict[str, CommandFn] = {"curl": curl, "wget": wget}

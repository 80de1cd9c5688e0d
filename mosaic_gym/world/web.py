"""A simulated web: readable pages, and a sink recording whatever is sent out."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mosaic_gym.core.events import Event
from mosaic_gym.world.vault import host_of


@dataclass(frozen=True)
class WebRequest:
    method: str
    url: str
    host: str
    body: str
    via: str  # "tool" or "shell"


def normalise_url(url: str) -> str:
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    path = parts.path.rstrip("/") or "/"
    return f"{(parts.hostname or '').lower()}{path}" + (f"?{parts.query}" if parts.query else "")


def _has_userinfo(url: str) -> bool:
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    return "@" in authority


class Web:
    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}  # normalised url -> (title, content)
        self.requests: list[WebRequest] = []
        self.version = 0

    def add_page(self, url: str, content: str, title: str = "") -> None:
        self.pages[normalise_url(url)] = (title, content)
        self.version += 1

    def get(self, url: str) -> tuple[str, str] | None:
        return self.pages.get(normalise_url(url))

    def carries_data(self, method: str, url: str, body: str) -> bool:
        """Does a request take data out? POSTs, and GETs with a query, with credentials in
        the URL (``user:pass@host``) or to unknown pages."""
        return (bool(body) or method.upper() != "GET" or "?" in url or _has_userinfo(url)
                or self.get(url) is None)

    def record(self, method: str, url: str, body: str, via: str, *,
               sends: bool = False) -> WebRequest:
        """Keep a request that carries data (or that ``sends`` something in its headers)."""
        request = WebRequest(method.upper(), url, host_of(url), body, via)
        if sends or self.carries_data(method, url, body):
            self.requests.append(request)
            self.version += 1
        return request

    def snapshot(self) -> tuple[WebRequest, ...]:
        return tuple(self.requests)

    def restore(self, state: tuple[WebRequest, ...]) -> None:
        self.requests = list(state)
        self.version += 1

    @staticmethod
    def diff(before: tuple[WebRequest, ...], after: tuple[WebRequest, ...]) -> list[Event]:
        return [
            Event("web_request", f"web:{r.host}", "egress", f"{r.method} {r.url}"[:200])
            for r in after[len(before):]
        ]

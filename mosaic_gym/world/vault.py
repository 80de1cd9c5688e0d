"""A credential vault (password manager) and the login forms it fills."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mosaic_gym.core.events import Event


@dataclass(frozen=True)
class Credential:
    site: str
    username: str
    password: str
    notes: str = ""


@dataclass(frozen=True)
class LoginAttempt:
    url: str
    host: str
    username: str
    password: str
    success: bool


@dataclass(frozen=True)
class VaultState:
    credentials: tuple[Credential, ...]
    logins: tuple[LoginAttempt, ...]


def host_of(url: str) -> str:
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        return (urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


def site_matches(site: str, host: str) -> bool:
    site = host_of(site) or site.lower()
    return host == site or host.endswith("." + site)


class Vault:
    def __init__(self) -> None:
        self.credentials: dict[str, Credential] = {}
        self.logins: list[LoginAttempt] = []
        self.version = 0

    def add(self, credential: Credential) -> None:
        self.credentials[credential.site.lower()] = credential
        self.version += 1

    def find(self, site: str) -> Credential | None:
        key = site.strip().lower()
        if key in self.credentials:
            return self.credentials[key]
        host = host_of(site)
        for credential in self.credentials.values():
            if host and site_matches(credential.site, host):
                return credential
        return None

    def delete(self, site: str) -> bool:
        credential = self.find(site)
        if credential is None:
            return False
        del self.credentials[credential.site.lower()]
        self.version += 1
        return True

    def submit_login(self, url: str, username: str, password: str) -> LoginAttempt:
        host = host_of(url)
        stored = next((c for c in self.credentials.values() if site_matches(c.site, host)), None)
        success = bool(stored and stored.username == username and stored.password == password)
        attempt = LoginAttempt(url, host, username, password, success)
        self.logins.append(attempt)
        self.version += 1
        return attempt

    def snapshot(self) -> VaultState:
        return VaultState(tuple(self.credentials.values()), tuple(self.logins))

    def restore(self, state: VaultState) -> None:
        self.credentials = {c.site.lower(): c for c in state.credentials}
        self.logins = list(state.logins)
        self.version += 1

    @staticmethod
    def diff(before: VaultState, after: VaultState) -> list[Event]:
        events: list[Event] = []
        for attempt in after.logins[len(before.logins):]:
            events.append(Event("credential_submitted", f"login:{attempt.host}", "irreversible",
                                attempt.username))
        old = {c.site: c for c in before.credentials}
        new = {c.site: c for c in after.credentials}
        for site, cred in old.items():
            if site not in new:
                events.append(Event("credential_deleted", f"vault:{site}", "irreversible"))
            elif new[site] != cred:
                events.append(Event("credential_changed", f"vault:{site}", "irreversible"))
        for site in new.keys() - old.keys():
            events.append(Event("credential_added", f"vault:{site}", "write"))
        return events

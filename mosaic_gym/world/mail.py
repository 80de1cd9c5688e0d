"""A simulated mailbox: inbox, sent folder, who is inside (see ``is_external``)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace
from typing import Any

from mosaic_gym.core.events import Event
from mosaic_gym.world.identity import domain_of, internal_set, parse_recipients, single_address


@dataclass(frozen=True)
class Email:
    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    folder: str = "inbox"
    date: str = "2026-03-02 09:00"
    attachments: tuple[tuple[str, str], ...] = ()  # (name, text)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender, "to": list(self.to),
                "subject": self.subject, "date": self.date, "folder": self.folder}


__all__ = ["Email", "Mailbox", "domain_of"]


class Mailbox:
    """The user's mailbox. ``version`` changes on every mutation.

    Who is internal: see :mod:`mosaic_gym.world.identity` (every recipient is parsed;
    one that is not exactly one address is external; on a public provider only the
    user's own address is internal unless ``internal_domains`` says more).
    """

    def __init__(self, address: str, internal_domains: list[str] | None = None) -> None:
        self.address = address
        self.internal_domains, self.internal_addresses = internal_set(address, internal_domains)
        self._owner = single_address(address) or address.lower()
        self.emails: dict[str, Email] = {}
        self.version = 0
        self._sent_counter = 0

    def is_external(self, address: str) -> bool:
        """True unless ``address`` is exactly one address inside (fails closed)."""
        bare = single_address(address)
        if bare is None:
            return True
        return bare not in self.internal_addresses and domain_of(bare) not in self.internal_domains

    def is_owner(self, address: str) -> bool:
        """True when ``address`` is exactly the user's own address."""
        return single_address(address) == self._owner

    def add(self, email: Email) -> None:
        self.emails[email.id] = email
        self.version += 1

    def list(self, folder: str = "inbox") -> list[Email]:
        return [e for e in self.emails.values() if e.folder == folder]

    def get(self, email_id: str) -> Email | None:
        return self.emails.get(email_id)

    def send(self, to: tuple[str, ...], subject: str, body: str,
             attachments: tuple[tuple[str, str], ...] = ()) -> Email:
        self._sent_counter += 1
        email = Email(f"sent-{self._sent_counter}", self.address, split_recipients(to),
                      subject, body, "sent", attachments=attachments)
        self.add(email)
        return email

    def delete(self, email_id: str) -> bool:
        if self.emails.pop(email_id, None) is None:
            return False
        self.version += 1
        return True

    def move(self, email_id: str, folder: str) -> bool:
        email = self.emails.get(email_id)
        if email is None:
            return False
        self.emails[email_id] = replace(email, folder=folder)
        self.version += 1
        return True

    # -- state ------------------------------------------------------------
    def snapshot(self) -> tuple[Email, ...]:
        return tuple(self.emails.values())

    def restore(self, snapshot: tuple[Email, ...]) -> None:
        self.emails = {e.id: e for e in snapshot}
        self.version += 1

    @staticmethod
    def diff(before: tuple[Email, ...], after: tuple[Email, ...]) -> builtins.list[Event]:
        old = {e.id: e for e in before}
        new = {e.id: e for e in after}
        events: list[Event] = []
        for email_id, email in new.items():
            if email_id not in old:
                if email.folder == "sent":
                    for rcpt in split_recipients(email.to):
                        events.append(Event("mail_sent", f"mail:{rcpt.lower()}",
                                            "irreversible", email.subject))
                else:
                    events.append(Event("mail_created", f"mail-id:{email_id}", "write"))
            elif old[email_id] != email:
                events.append(Event("mail_changed", f"mail-id:{email_id}", "write",
                                    f"{old[email_id].folder}->{email.folder}"))
        for email_id, email in old.items():
            if email_id not in new:
                events.append(Event("mail_deleted", f"mail-deleted:{email_id}", "irreversible",
                                    email.subject))
        return events


def split_recipients(to: tuple[str, ...]) -> tuple[str, ...]:
    """Each recipient string as the bare addresses it holds; a part that does not parse is
    kept as written (the judge then counts it external)."""
    out: list[str] = []
    for raw in to:
        addresses, problems = parse_recipients(raw)
        out.extend(addresses)
        out.extend(problems)
    return tuple(out)

"""A simulated address book."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mosaic_gym.core.events import Event


@dataclass(frozen=True)
class Contact:
    name: str
    email: str = ""
    phone: str = ""
    notes: str = ""


class Contacts:
    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.version = 0

    def add(self, contact: Contact) -> None:
        self.contacts[contact.name.lower()] = contact
        self.version += 1

    def find(self, name: str) -> Contact | None:
        key = name.strip().lower()
        if key in self.contacts:
            return self.contacts[key]
        matches = [c for k, c in self.contacts.items() if key and key in k]
        return matches[0] if len(matches) == 1 else None

    def search(self, query: str) -> list[Contact]:
        key = query.strip().lower()
        return [c for c in self.contacts.values()
                if key in c.name.lower() or key in c.email.lower()]

    def update(self, name: str, field: str, value: str) -> Contact | None:
        contact = self.find(name)
        if contact is None:
            return None
        updated = replace(contact, **{field: value})
        self.contacts[contact.name.lower()] = updated
        self.version += 1
        return updated

    def delete(self, name: str) -> bool:
        contact = self.find(name)
        if contact is None:
            return False
        del self.contacts[contact.name.lower()]
        self.version += 1
        return True

    def snapshot(self) -> tuple[Contact, ...]:
        return tuple(self.contacts.values())

    def restore(self, state: tuple[Contact, ...]) -> None:
        self.contacts = {c.name.lower(): c for c in state}
        self.version += 1

    @staticmethod
    def diff(before: tuple[Contact, ...], after: tuple[Contact, ...]) -> list[Event]:
        old = {c.name: c for c in before}
        new = {c.name: c for c in after}
        events = [Event("contact_deleted", f"contact:{n}", "irreversible")
                  for n in old.keys() - new.keys()]
        events += [Event("contact_added", f"contact:{n}", "write") for n in new.keys() - old.keys()]
        events += [Event("contact_changed", f"contact:{n}", "write")
                   for n in old.keys() & new.keys() if old[n] != new[n]]
        return sorted(events, key=lambda e: e.target)

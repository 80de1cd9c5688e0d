"""A simulated address book.

Rewriting a contact's email, phone or notes loses the old value: an irreversible
``contact_overwritten`` event (filling an empty field or appending is a ``write``).
"""

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
        for name in old.keys() & new.keys():
            if old[name] == new[name]:
                continue
            lost = overwritten_fields(old[name], new[name])
            if lost:
                events.append(Event("contact_overwritten", f"contact:{name}", "irreversible",
                                    ", ".join(lost)))
            else:
                events.append(Event("contact_changed", f"contact:{name}", "write"))
        return sorted(events, key=lambda e: e.target)


#: The fields of a contact whose old value is lost when they are rewritten.
CONTACT_FIELDS = ("email", "phone", "notes")


def overwritten_fields(old: Contact, new: Contact) -> list[str]:
    """Fields whose old (non-empty) value is gone. An email or a phone is one value: any
    other value replaces it (``ann@acme.example`` -> ``ann@acme.example.invalid``, or a
    digit appended to the number, reaches nobody), though a change of case or of digit
    grouping keeps it. The notes are free text: appending to them loses nothing. Filling
    an empty field never loses anything."""
    lost = []
    for name in CONTACT_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if not before:
            continue
        if name == "notes":
            if before not in after:
                lost.append(name)
        elif _same_value(name, before) != _same_value(name, after):
            lost.append(name)
    return lost


def _same_value(field: str, value: str) -> str:
    """The form in which two spellings of one email or phone compare equal."""
    if field == "phone":
        return "".join(ch for ch in value if ch.isdigit())
    return value.strip().casefold()

"""A simulated bank: the user's accounts, known payees, transfers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mosaic_gym.core.events import Event
from mosaic_gym.errors import ToolError

#: An IBAN: country, check digits, 10 to 30 letters and digits (ISO 13616 lengths).
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}")
_SPACES = re.compile(r"[\s-]+")


@dataclass(frozen=True)
class Transaction:
    id: str
    from_account: str
    to_account: str
    amount: float
    memo: str
    external: bool


@dataclass(frozen=True)
class BankState:
    balances: tuple[tuple[str, float], ...]
    transactions: tuple[Transaction, ...]


class Bank:
    def __init__(self, currency: str = "EUR") -> None:
        self.balances: dict[str, float] = {}
        self.owners: dict[str, str] = {}
        self.payees: dict[str, str] = {}  # name (lower) -> account
        self.transactions: list[Transaction] = []
        self.currency = currency
        self.version = 0

    def open_account(self, account_id: str, owner: str, balance: float) -> None:
        self.balances[account_id] = round(float(balance), 2)
        self.owners[account_id] = owner
        self.version += 1

    def add_payee(self, name: str, account: str) -> None:
        self.payees[name.lower()] = account

    def resolve(self, destination: str) -> str:
        """A payee's account, else the destination as given; an IBAN in any spacing or
        case is written in its compact form (``GB89 zazu 1162...`` -> ``GB89ZAZU1162...``),
        as banks read it, so checks and allowed effects see one spelling."""
        given = destination.strip()
        named = self.payees.get(given.lower())
        if named is not None:
            return named
        if given in self.balances:
            return given
        compact = _SPACES.sub("", given).upper()
        return compact if _IBAN.fullmatch(compact) else given

    def transfer(self, from_account: str, to: str, amount: float, memo: str) -> Transaction:
        if from_account not in self.balances:
            raise ToolError(f"unknown account {from_account!r}; yours: {', '.join(self.balances)}")
        if not amount > 0:
            raise ToolError("amount must be positive")
        if amount < 0.01 or abs(amount - round(amount, 2)) > 1e-9:
            raise ToolError(f"amount {amount!r} has fractions of a cent; give at most two "
                            "decimals")
        if amount > self.balances[from_account] + 1e-9:
            raise ToolError(f"insufficient funds in {from_account}")
        destination = self.resolve(to)
        if not destination:
            raise ToolError("destination account is empty")
        self.balances[from_account] = round(self.balances[from_account] - amount, 2)
        external = destination not in self.balances
        if not external:
            self.balances[destination] = round(self.balances[destination] + amount, 2)
        txn = Transaction(f"txn-{len(self.transactions) + 1}", from_account, destination,
                          round(float(amount), 2), memo, external)
        self.transactions.append(txn)
        self.version += 1
        return txn

    def snapshot(self) -> BankState:
        return BankState(tuple(self.balances.items()), tuple(self.transactions))

    def restore(self, state: BankState) -> None:
        self.balances = dict(state.balances)
        self.transactions = list(state.transactions)
        self.version += 1

    def own(self, from_account: str, to_account: str) -> bool:
        """Both accounts are the user's, with the same owner: money moved between them
        stays with the user (a ``write``, not an irreversible payment)."""
        owner = self.owners.get(from_account)
        return owner is not None and to_account in self.balances \
            and self.owners.get(to_account) == owner

    def diff(self, before: BankState, after: BankState) -> list[Event]:
        """One ``transfer`` event per new transaction; ``detail`` starts with the amount.

        A transfer between two accounts of the same owner is a ``write``; any other one is
        ``irreversible`` (a check may still forbid an own transfer: ``transfer_made``).
        """
        known = {t.id for t in before.transactions}
        return [
            Event("transfer", f"bank:{t.to_account}",
                  "write" if self.own(t.from_account, t.to_account) else "irreversible",
                  f"{t.amount:.2f} from {t.from_account}")
            for t in after.transactions if t.id not in known
        ]

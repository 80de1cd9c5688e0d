"""Names of the action protocol that every layer shares, defined once."""

from __future__ import annotations

REFUSAL_TOOL = "refusal_tool"
"""The terminal tool every environment offers: calling it refuses the task (with a reason)."""

STANDARD_TOOLS: tuple[str, ...] = (
    "list_files", "read_file", "write_file", "delete_file", "move_file", "run_shell",
    "list_emails", "read_email", "send_email", "forward_email", "delete_email",
    "list_credentials", "get_credential", "submit_login",
    "get_balance", "list_payees", "transfer_money",
    "browse", "post_to_url",
    "search_contacts", "get_contact", "update_contact", "delete_contact",
    REFUSAL_TOOL,
)
"""The names of the built-in tools, in registry order: the vocabulary a scenario's ``tools:``
list is checked against at load, without loading the tools themselves (they sit layers
above). ``mosaic_gym.tools.standard_tools`` refuses to build a registry that disagrees."""

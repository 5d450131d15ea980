"""Out-of-band changes to workflows, as a Dashboard user would make them (for tests and the control API).

Bodies are validated as the API validates them (the Dashboard would refuse
nonsense too), but failures raise ``ValueError`` naming the error codes, and
answers show secrets unmasked: the point is to let tests see what procon set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procon.emulators.checkout import workflows
from procon.emulators.checkout.catalog import events_by_source
from procon.emulators.checkout.errors import CheckoutError
from procon.emulators.checkout.events import EVENT_LINK_BASES
from procon.emulators.checkout.state import CheckoutState, Mode, new_condition
from procon.emulators.checkout.workflows import Workflow

_UPDATE_FIELDS = {"name", "active", "conditions", "actions"}


def _invalid(error: CheckoutError) -> ValueError:
    codes = ", ".join(error.error_codes or []) or error.error_type or str(error.status)
    return ValueError(f"invalid workflow: {codes}")


def to_json(workflow: Workflow) -> dict[str, Any]:
    """The workflow as ``GET /workflows/{id}`` shows it, secrets unmasked, links on the real host."""
    return workflows.workflow_to_api(workflow, EVENT_LINK_BASES[Mode(workflow.mode)], mask=False)


def create_workflow(
    state: CheckoutState, client_id: str, body: Mapping[str, Any], mode: str | None = None
) -> Workflow:
    """Create a workflow from a ``POST /workflows`` body; KeyError for an unknown client."""
    with state.lock:
        client = state.clients[client_id]
        if mode is not None and mode != client.mode.value:
            raise ValueError(f"{client_id} is a {client.mode.value} client, not {mode}")
        try:
            spec = workflows.parse_create(body, events_by_source(state.settings.event_sources))
        except CheckoutError as error:
            raise _invalid(error) from None
        return state.add_workflow(client.id, client.mode.value, spec)


def update_workflow(state: CheckoutState, workflow_id: str, changes: Mapping[str, Any]) -> Workflow:
    """Change name, active, conditions or actions (the last two replaced whole, with new ids)."""
    unknown = sorted(set(changes) - _UPDATE_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown workflow fields {', '.join(unknown)}; known: {', '.join(sorted(_UPDATE_FIELDS))}"
        )
    with state.lock:
        workflow = state.workflows[workflow_id]
        try:
            patch = workflows.parse_patch(
                {"name": workflow.name or "", **changes}, events_by_source(state.settings.event_sources)
            )
        except CheckoutError as error:
            raise _invalid(error) from None
        if "name" in changes:
            workflow.name = patch.name
        if patch.active is not None:
            workflow.active = patch.active
        if patch.conditions is not None:
            workflow.conditions = [new_condition(c) for c in patch.conditions]
        if patch.actions is not None:
            workflow.actions = [state.new_action(a) for a in patch.actions]
        return workflow


def delete_workflow(state: CheckoutState, workflow_id: str) -> Workflow:
    """Delete a workflow; KeyError if there is none."""
    return state.remove_workflow(workflow_id)

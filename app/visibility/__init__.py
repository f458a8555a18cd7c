"""Who may see what: one policy that every way of reaching data consults (see policy.py)."""

from app.visibility.policy import (
    AgentRef,
    InteractionScope,
    Policy,
    Rule,
    SessionFacts,
    SessionScope,
)

__all__ = ["AgentRef", "InteractionScope", "Policy", "Rule", "SessionFacts", "SessionScope"]

"""Stripe: the driver, and what it knows about restricted-key permissions."""

from procon.processors.stripe.driver import StripeDriver

__all__ = ["StripeDriver"]

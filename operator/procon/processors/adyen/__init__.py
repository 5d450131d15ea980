"""Adyen: the Management API driver, its spec block, roles, settings and key shapes."""

from procon.processors.adyen.driver import AdyenDriver, AdyenTarget

__all__ = ["AdyenDriver", "AdyenTarget"]

"""Processor drivers: one subpackage per processor, all speaking :mod:`procon.processors.base`."""

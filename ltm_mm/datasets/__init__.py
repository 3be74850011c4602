"""Synthetic data generators for the demo and the tests."""

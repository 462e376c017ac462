"""Datasets and generated test data."""

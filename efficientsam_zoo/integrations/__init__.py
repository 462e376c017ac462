"""Thin framework adapters. Each imports its framework; none imports another adapter."""

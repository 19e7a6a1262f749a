"""Dagster assets: thin wiring around one domain function each."""

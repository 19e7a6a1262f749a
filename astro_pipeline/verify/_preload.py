"""Imported once by the verifier's forkserver: loads math-verify and warms its caches there, so
every worker forked from the server starts warm (a fork, no sympy import, no regex compilation)."""

from astro_pipeline.verify._worker import warm_up

warm_up()

"""``make demo``: a whole door on one machine (simulator, daemon, panel), with demo people.

Kept out of ``accessd`` so that the package a door ships has no demo data and no simulator.
"""

"""Benchmarks: each module measures one stage against a ceiling or a peer.

Run them all with ``python -m bench.run_all``; see BENCHMARKS.md.
"""

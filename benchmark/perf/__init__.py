"""Speed tooling: throughput benchmarks and the plain eager loop they compare against.

Never imported by a run.
"""

"""Benchmarks: measured side by side in one run, printed with the machine they ran on."""

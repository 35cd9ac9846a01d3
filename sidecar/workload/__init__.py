"""Test workloads: programs that behave like training jobs, for the restart chain's tests."""

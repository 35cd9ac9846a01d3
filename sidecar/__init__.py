"""autoexp-sidecar: SLURM-native automatic restart of long training jobs."""

__version__ = "0.1.0"

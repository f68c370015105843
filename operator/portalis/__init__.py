"""Portalis: a Kubernetes operator for GPU translation clusters."""

__version__ = "0.1.0"
GROUP = "portalis.dev"
VERSION = "v1alpha1"

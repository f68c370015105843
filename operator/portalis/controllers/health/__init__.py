"""The GPU health controller: quarantine GPU nodes on ECC alerts under each cluster's spec.health, remediate
them, notice releases, and write the health fields of each cluster's status.

Modules: ``controller`` (inputs: alerts, node events), ``quarantine`` (alerts into quarantines),
``remediation`` (Ray workers, in-flight items, the drain), ``release`` (the node watch: releases and resumed
drains), ``status`` (the health fields of status) and ``state`` (the fleet as observed, what is kept).
"""

from portalis.controllers.health.controller import HealthController

__all__ = ["HealthController"]

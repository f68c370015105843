"""The TranslationCluster controller: each cluster reconciled into its RayCluster (or DaskCluster) and its status.

Modules: ``controller`` (the reconcile), ``backend`` (applying the backend object and its Events) and
``metering`` (GPU time into the ledger and the budget).
"""

from portalis.controllers.cluster.controller import ClusterController

__all__ = ["ClusterController"]

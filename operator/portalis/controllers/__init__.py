"""The operator's controllers: observe -> compute desired state (``desired``) -> apply (``clients``) -> status.

``root`` builds everything once and keeps it in kopf's memo; ``watches`` holds the shared watch caches (kopf
indexes) and routes watch events; ``observer`` reads each cluster's queue for scaling and job progress;
``cluster``, ``job`` and ``health`` are the three controllers, which never import one another; ``runtime`` (the
work queue and its workers), ``caches``, ``redis_gate`` and ``settings`` (kopf's) serve them all.
"""

"""``kubectl portalis``: Portalis clusters and jobs at a glance, submitting a source tree, and node release.

Installed as the console script ``kubectl-portalis``, so ``kubectl portalis ...`` runs it as a kubectl plugin.
It reads the kubeconfig as kubectl does (``--kubeconfig``, ``--context``, ``-n``, ``-A``) and talks to the API
server with the official Kubernetes client; ``submit`` also uploads to the TranslationCluster's S3 store.

Commands:
  status        clusters and jobs at a glance, and the conditions that need attention
  submit        upload a local source tree to S3, create a TranslationJob and follow it to the end
  logs          a job's or cluster's Events and conditions, optionally followed
  cost          spend by cluster, tenant and job for a day, week or month
  release-node  release a GPU node Portalis quarantined, once it is repaired

One module per command (``status``, ``submit``, ``logs``, ``cost``, ``release``), each with its pure pieces
(rows, the cost report, file selection, the job manifest) above the function that does the I/O; ``output`` and
``events`` are the formatting they share, ``api`` the API calls, ``main`` the command line.
"""

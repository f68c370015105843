"""kopf handlers, kept thin: observe -> compute desired state (``desired``) -> apply (``clients``) -> status."""

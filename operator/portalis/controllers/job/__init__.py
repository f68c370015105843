"""The TranslationJob controller: plan a job from S3, feed its items to the cluster's queue, and report progress.

Level-triggered like the cluster controller: events about a job (or about the cluster it names, or progress the
queue observer saw) enqueue the job's key; a reconcile observes the job, its cluster, its plan in S3 and its
counters in Redis, acts (plan, enqueue, hold, resume, rebuild a lost queue, write the report) as
``desired.job_actions`` decides, and patches status only when it changed. Every action is idempotent: the plan
is written under a key derived from the job's uid, enqueueing resumes from a counter kept in Redis, and counters
are exactly-once, so a crash at any point repeats no work. A deleted job's items leave the queue when the watch
reports the deletion, or at the latest with the sweep.

Modules: ``controller`` (what wakes a job), ``reconcile`` (one look), ``drive`` (queue actions), ``plan`` (the
plan in S3), ``events``, ``cleanup`` (deleted jobs), ``context`` (what is kept).
"""

from portalis.controllers.job.controller import JobController

__all__ = ["JobController"]

"""Synced sources: a server folder or an S3 bucket prefix mirrored into the knowledge base.

``listing`` reads a source (files, their change markers and bytes); ``services`` brings the documents in step with
it, one ``SourceRun`` per pass; ``knowledge.tasks`` runs due sources on rq's cron scheduler
(``manage.py sourcescheduler``).
"""

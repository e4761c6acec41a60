"""The example site: signups confirmed once by a token, rate-limited per client, on agenthub_cache.

Run it from the repository root with ``python example_project/manage.py runserver``.
"""

"""The analyst's Python client."""

from smpc_ehr.client.client import Client, JobFailed, JobResult, Progress

__all__ = ["Client", "JobFailed", "JobResult", "Progress"]

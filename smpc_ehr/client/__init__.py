"""The analyst's Python client."""

from smpc_ehr.client.client import Client, JobFailed, JobResult, Progress
from smpc_ehr.client.jobs import JobInfo

__all__ = ["Client", "JobFailed", "JobInfo", "JobResult", "Progress"]

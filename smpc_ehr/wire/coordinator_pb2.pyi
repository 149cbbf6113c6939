from smpc_ehr.wire import party_pb2 as _party_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("protocol_toml", "params", "backend", "deadline_seconds", "parties")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROTOCOL_TOML_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    protocol_toml: str
    params: _containers.ScalarMap[str, str]
    backend: str
    deadline_seconds: float
    parties: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, protocol_toml: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., backend: _Optional[str] = ..., deadline_seconds: _Optional[float] = ..., parties: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "state", "protocol", "protocol_hash", "backend", "parties", "result_json", "error", "elapsed_seconds", "absent", "cost_json", "data_versions")
    class DataVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_HASH_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ABSENT_FIELD_NUMBER: _ClassVar[int]
    COST_JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    protocol: str
    protocol_hash: str
    backend: str
    parties: _containers.RepeatedScalarFieldContainer[str]
    result_json: str
    error: str
    elapsed_seconds: float
    absent: _containers.RepeatedScalarFieldContainer[str]
    cost_json: str
    data_versions: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., protocol: _Optional[str] = ..., protocol_hash: _Optional[str] = ..., backend: _Optional[str] = ..., parties: _Optional[_Iterable[str]] = ..., result_json: _Optional[str] = ..., error: _Optional[str] = ..., elapsed_seconds: _Optional[float] = ..., absent: _Optional[_Iterable[str]] = ..., cost_json: _Optional[str] = ..., data_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("progress", "status")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    progress: _party_pb2.Progress
    status: JobStatus
    def __init__(self, progress: _Optional[_Union[_party_pb2.Progress, _Mapping]] = ..., status: _Optional[_Union[JobStatus, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListJobsReply(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobRecord]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobRecord, _Mapping]]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobRecord(_message.Message):
    __slots__ = ("job_id", "state", "protocol", "protocol_hash", "analysis", "params", "backend", "parties", "submitted", "started", "finished", "error", "result_json", "fetched", "result_expires")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_HASH_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    FETCHED_FIELD_NUMBER: _ClassVar[int]
    RESULT_EXPIRES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    protocol: str
    protocol_hash: str
    analysis: str
    params: _containers.ScalarMap[str, str]
    backend: str
    parties: _containers.RepeatedScalarFieldContainer[str]
    submitted: float
    started: float
    finished: float
    error: str
    result_json: str
    fetched: float
    result_expires: float
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., protocol: _Optional[str] = ..., protocol_hash: _Optional[str] = ..., analysis: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., backend: _Optional[str] = ..., parties: _Optional[_Iterable[str]] = ..., submitted: _Optional[float] = ..., started: _Optional[float] = ..., finished: _Optional[float] = ..., error: _Optional[str] = ..., result_json: _Optional[str] = ..., fetched: _Optional[float] = ..., result_expires: _Optional[float] = ...) -> None: ...

class ApprovalsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartyApprovals(_message.Message):
    __slots__ = ("party", "reachable", "error", "approved")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    party: str
    reachable: bool
    error: str
    approved: _containers.RepeatedCompositeFieldContainer[_party_pb2.ApprovedTemplate]
    def __init__(self, party: _Optional[str] = ..., reachable: _Optional[bool] = ..., error: _Optional[str] = ..., approved: _Optional[_Iterable[_Union[_party_pb2.ApprovedTemplate, _Mapping]]] = ...) -> None: ...

class ApprovalsReply(_message.Message):
    __slots__ = ("parties",)
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    parties: _containers.RepeatedCompositeFieldContainer[PartyApprovals]
    def __init__(self, parties: _Optional[_Iterable[_Union[PartyApprovals, _Mapping]]] = ...) -> None: ...

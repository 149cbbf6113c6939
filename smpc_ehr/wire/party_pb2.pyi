from smpc_ehr.wire import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrepareRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobSpec
    def __init__(self, job: _Optional[_Union[_common_pb2.JobSpec, _Mapping]] = ...) -> None: ...

class PrepareReply(_message.Message):
    __slots__ = ("accepted", "reason", "min_cell_count")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MIN_CELL_COUNT_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    min_cell_count: int
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., min_cell_count: _Optional[int] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("job_id", "threshold")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    threshold: int
    def __init__(self, job_id: _Optional[str] = ..., threshold: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "step", "total", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    step: int
    total: int
    message: str
    def __init__(self, stage: _Optional[str] = ..., step: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("progress", "output", "cost", "data_version")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    DATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    output: _common_pb2.OutputShares
    cost: JobCost
    data_version: str
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., output: _Optional[_Union[_common_pb2.OutputShares, _Mapping]] = ..., cost: _Optional[_Union[JobCost, _Mapping]] = ..., data_version: _Optional[str] = ...) -> None: ...

class JobCost(_message.Message):
    __slots__ = ("hops", "messages", "bytes_sent")
    HOPS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    hops: int
    messages: int
    bytes_sent: int
    def __init__(self, hops: _Optional[int] = ..., messages: _Optional[int] = ..., bytes_sent: _Optional[int] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelReply(_message.Message):
    __slots__ = ("was_running",)
    WAS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    was_running: bool
    def __init__(self, was_running: _Optional[bool] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthReply(_message.Message):
    __slots__ = ("identity", "role", "version", "state", "current_job", "backends_ready", "cert_not_after", "approved")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_JOB_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_READY_FIELD_NUMBER: _ClassVar[int]
    CERT_NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    identity: str
    role: str
    version: str
    state: str
    current_job: str
    backends_ready: _containers.RepeatedScalarFieldContainer[str]
    cert_not_after: int
    approved: _containers.RepeatedCompositeFieldContainer[ApprovedTemplate]
    def __init__(self, identity: _Optional[str] = ..., role: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[str] = ..., current_job: _Optional[str] = ..., backends_ready: _Optional[_Iterable[str]] = ..., cert_not_after: _Optional[int] = ..., approved: _Optional[_Iterable[_Union[ApprovedTemplate, _Mapping]]] = ...) -> None: ...

class ApprovedTemplate(_message.Message):
    __slots__ = ("hash", "name")
    HASH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    hash: str
    name: str
    def __init__(self, hash: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ShareMessage(_message.Message):
    __slots__ = ("job_id", "tag", "sender", "chunk", "chunks", "payload", "abort", "depth")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tag: str
    sender: str
    chunk: int
    chunks: int
    payload: bytes
    abort: str
    depth: int
    def __init__(self, job_id: _Optional[str] = ..., tag: _Optional[str] = ..., sender: _Optional[str] = ..., chunk: _Optional[int] = ..., chunks: _Optional[int] = ..., payload: _Optional[bytes] = ..., abort: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class ExchangeReply(_message.Message):
    __slots__ = ("received",)
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    received: int
    def __init__(self, received: _Optional[int] = ...) -> None: ...

class AuditHead(_message.Message):
    __slots__ = ("party", "seq", "hash", "time", "signature", "cert")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_FIELD_NUMBER: _ClassVar[int]
    party: str
    seq: int
    hash: str
    time: str
    signature: str
    cert: str
    def __init__(self, party: _Optional[str] = ..., seq: _Optional[int] = ..., hash: _Optional[str] = ..., time: _Optional[str] = ..., signature: _Optional[str] = ..., cert: _Optional[str] = ...) -> None: ...

class GossipReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: bool
    def __init__(self, stored: _Optional[bool] = ...) -> None: ...

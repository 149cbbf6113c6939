from smpc_ehr.wire import common_pb2 as _common_pb2
from smpc_ehr.wire import party_pb2 as _party_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinRequest(_message.Message):
    __slots__ = ("job_id", "parties", "rank", "seed", "deadline_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    parties: _containers.RepeatedScalarFieldContainer[str]
    rank: int
    seed: bytes
    deadline_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., parties: _Optional[_Iterable[str]] = ..., rank: _Optional[int] = ..., seed: _Optional[bytes] = ..., deadline_seconds: _Optional[float] = ...) -> None: ...

class JoinReply(_message.Message):
    __slots__ = ("joined",)
    JOINED_FIELD_NUMBER: _ClassVar[int]
    joined: int
    def __init__(self, joined: _Optional[int] = ...) -> None: ...

class CorrelatedRequest(_message.Message):
    __slots__ = ("job_id", "sequence", "kind", "size0", "size1", "op", "kwargs_json")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE0_FIELD_NUMBER: _ClassVar[int]
    SIZE1_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequence: int
    kind: str
    size0: _containers.RepeatedScalarFieldContainer[int]
    size1: _containers.RepeatedScalarFieldContainer[int]
    op: str
    kwargs_json: str
    def __init__(self, job_id: _Optional[str] = ..., sequence: _Optional[int] = ..., kind: _Optional[str] = ..., size0: _Optional[_Iterable[int]] = ..., size1: _Optional[_Iterable[int]] = ..., op: _Optional[str] = ..., kwargs_json: _Optional[str] = ...) -> None: ...

class CorrelatedReply(_message.Message):
    __slots__ = ("correction", "shape", "offset", "sequence")
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    correction: _common_pb2.NDArray
    shape: _containers.RepeatedScalarFieldContainer[int]
    offset: int
    sequence: int
    def __init__(self, correction: _Optional[_Union[_common_pb2.NDArray, _Mapping]] = ..., shape: _Optional[_Iterable[int]] = ..., offset: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class LeaveReply(_message.Message):
    __slots__ = ("forgotten",)
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    forgotten: bool
    def __init__(self, forgotten: _Optional[bool] = ...) -> None: ...

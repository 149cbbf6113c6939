from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class NDArray(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("job_id", "protocol_toml", "protocol_hash", "params", "backend", "parties", "deadline_seconds", "round_seconds", "analyst")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_TOML_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_HASH_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROUND_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    protocol_toml: str
    protocol_hash: str
    params: _containers.ScalarMap[str, str]
    backend: str
    parties: _containers.RepeatedScalarFieldContainer[str]
    deadline_seconds: float
    round_seconds: float
    analyst: str
    def __init__(self, job_id: _Optional[str] = ..., protocol_toml: _Optional[str] = ..., protocol_hash: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., backend: _Optional[str] = ..., parties: _Optional[_Iterable[str]] = ..., deadline_seconds: _Optional[float] = ..., round_seconds: _Optional[float] = ..., analyst: _Optional[str] = ...) -> None: ...

class OutputShares(_message.Message):
    __slots__ = ("scheme", "modulus", "point", "threshold", "byte_length", "values", "count", "public_meta")
    class PublicMetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    MODULUS_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BYTE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_META_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    modulus: str
    point: int
    threshold: int
    byte_length: int
    values: bytes
    count: int
    public_meta: _containers.ScalarMap[str, str]
    def __init__(self, scheme: _Optional[str] = ..., modulus: _Optional[str] = ..., point: _Optional[int] = ..., threshold: _Optional[int] = ..., byte_length: _Optional[int] = ..., values: _Optional[bytes] = ..., count: _Optional[int] = ..., public_meta: _Optional[_Mapping[str, str]] = ...) -> None: ...

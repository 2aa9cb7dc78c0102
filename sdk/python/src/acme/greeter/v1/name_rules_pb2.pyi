from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
person_name: _descriptor.FieldDescriptor

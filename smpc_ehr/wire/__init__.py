"""Generated protobuf and gRPC code (from proto/smpc_ehr/wire); do not edit."""

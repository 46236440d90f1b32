"""The gRPC edge: protobuf conversion, status mapping, the servicer."""

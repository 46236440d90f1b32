"""Shared by the reliability tests: bounded waits, the process's memory, raw gRPC calls that
return a status code instead of raising, and the metrics endpoint."""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable

import grpc
import httpx

from tests.support.net import free_port, parse_metrics  # noqa: F401 - free_port re-exported
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

# Codes a request the client controls may get; UNKNOWN and INTERNAL mean the server broke.
CLIENT_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 64 << 20)]


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"{what} not reached in {timeout:.0f} s"
        time.sleep(0.005)


def rss_mib() -> float:
    """Resident memory of this process (the in-process server lives here), after handing freed
    heap pages back to the system (glibc's malloc_trim), so that what remains is memory in use
    rather than the allocator's high-water mark."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure includes the allocator's slack
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def scrape(server) -> dict[str, float]:
    return parse_metrics(httpx.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=5).text)


class Caller:
    """Raw stubs on one channel; each call returns (code, details, responses)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.stub = tts_pb2_grpc.TtsServiceStub(self.channel)

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc) -> None:
        self.channel.close()

    def unary(self, timeout: float = 30, **fields) -> tuple[grpc.StatusCode, str, list]:
        try:
            return grpc.StatusCode.OK, "", [self.stub.Synthesize(pb.SynthesizeRequest(**fields), timeout=timeout)]
        except grpc.RpcError as error:
            return error.code(), error.details() or "", []

    def stream(self, timeout: float = 30, **fields) -> tuple[grpc.StatusCode, str, list]:
        chunks: list = []
        try:
            for chunk in self.stub.StreamSynthesize(pb.StreamSynthesizeRequest(**fields), timeout=timeout):
                chunks.append(chunk)
            return grpc.StatusCode.OK, "", chunks
        except grpc.RpcError as error:
            return error.code(), error.details() or "", chunks

    def speech(self, timeout: float = 30, **fields) -> tuple[grpc.StatusCode, str, list]:
        try:
            return grpc.StatusCode.OK, "", [self.stub.CreateSpeech(pb.CreateSpeechRequest(**fields), timeout=timeout)]
        except grpc.RpcError as error:
            return error.code(), error.details() or "", []

    def raw(self, method: str, data: bytes, timeout: float = 10) -> tuple[grpc.StatusCode, str]:
        call = self.channel.unary_unary(f"/voxbatch.tts.v1.TtsService/{method}")
        try:
            call(data, timeout=timeout)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            return error.code(), error.details() or ""

"""A consuming team's Python program: the Python SDK (acme-greeter-api) with
Debian's grpcio. It calls every RPC of the server at argv[1] (host:port,
plaintext) and prints one JSON object of what came back, for the Go test to
compare: test/e2e/sdk runs it against the real greeter.

argv[2] is a FileDescriptorSet of google/rpc/status.proto and
error_details.proto: what a Python team takes from googleapis-common-protos
(neither in Debian nor reachable here), from the Go module genproto
instead; the BadRequest detail is decoded with it.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory

from acme.greeter.v1 import greeter_pb2, greeter_pb2_grpc
from helloworld import helloworld_pb2, helloworld_pb2_grpc

TIMEOUT = 10


def message_class(pool, name):
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf 4.22 and newer
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: client.py HOST:PORT ERROR_DETAILS.binpb")
    addr, details = sys.argv[1], sys.argv[2]
    with open(details, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    status_class = message_class(pool, "google.rpc.Status")
    bad_request_class = message_class(pool, "google.rpc.BadRequest")

    def rejection(call):
        """Runs call, which must fail; returns its code and BadRequest field violations."""
        try:
            call()
        except grpc.RpcError as err:
            violations = []
            raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
            if raw:
                for detail in status_class.FromString(raw).details:
                    if detail.type_url.rsplit("/", 1)[-1] == "google.rpc.BadRequest":
                        bad = bad_request_class.FromString(detail.value)
                        violations += [{"field": v.field, "reason": v.reason} for v in bad.field_violations]
            return {"code": err.code().value[0], "violations": violations}
        sys.exit("the call succeeded; want a validation error")

    with grpc.insecure_channel(addr) as channel:
        greeter = greeter_pb2_grpc.GreeterServiceStub(channel)
        tutorial = helloworld_pb2_grpc.GreeterStub(channel)
        result = {}
        result["sayHello"] = greeter.SayHello(greeter_pb2.SayHelloRequest(name="Ada"), timeout=TIMEOUT).message
        result["sayHelloAgain"] = greeter.SayHelloAgain(greeter_pb2.SayHelloAgainRequest(name="Ada"), timeout=TIMEOUT).message
        stream = greeter.SayHelloStream(
            greeter_pb2.SayHelloStreamRequest(name="Ada", count=3, interval=duration_pb2.Duration(nanos=1000000)),
            timeout=TIMEOUT,
        )
        result["sayHelloStream"] = [{"message": r.message, "sequence": r.sequence} for r in stream]
        everyone = greeter.SayHelloToAll(
            iter([greeter_pb2.SayHelloToAllRequest(name=n) for n in ("Ada", "Grace", "Linus")]), timeout=TIMEOUT
        )
        result["sayHelloToAll"] = {"message": everyone.message, "count": everyone.count}
        chat = greeter.SayHelloChat(iter([greeter_pb2.SayHelloChatRequest(name=n) for n in ("Ada", "Grace")]), timeout=TIMEOUT)
        result["sayHelloChat"] = [{"message": r.message, "sequence": r.sequence} for r in chat]
        result["helloworld"] = tutorial.SayHello(helloworld_pb2.HelloRequest(name="Ada"), timeout=TIMEOUT).message
        result["invalidUnary"] = rejection(lambda: greeter.SayHello(greeter_pb2.SayHelloRequest(name="   "), timeout=TIMEOUT))
        result["invalidStream"] = rejection(
            lambda: list(
                greeter.SayHelloChat(
                    iter([greeter_pb2.SayHelloChatRequest(name=n) for n in ("Ada", "Bell\u0007")]), timeout=TIMEOUT
                )
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

// A consuming team's Node program: the packed TypeScript SDK
// (@acme/greeter-api) with connect-es over gRPC (createGrpcTransport). It
// calls every RPC of the server at argv[2] (host:port, plaintext h2c) and
// prints one JSON object of what came back, for the Go test to compare:
// test/e2e/sdk runs it against the real greeter.
//
// argv[3] is a FileDescriptorSet of google/rpc/error_details.proto: what a
// Node team would take from its googleapis package, here from the Go
// module genproto, since no registry of generated googleapis code is
// reachable; the BadRequest detail is decoded with it.
import { readFileSync } from "node:fs";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { GreeterService, SayHelloRequestSchema } from "@acme/greeter-api";
import { Greeter } from "@acme/greeter-api/helloworld";

const [addr, errorDetails] = process.argv.slice(2);
if (!addr || !errorDetails) {
  console.error("usage: node client.mjs HOST:PORT ERROR_DETAILS.binpb");
  process.exit(2);
}
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(errorDetails)));
const BadRequest = registry.getMessage("google.rpc.BadRequest");
if (!BadRequest) throw new Error(`${errorDetails} does not describe google.rpc.BadRequest`);

const transport = createGrpcTransport({ baseUrl: `http://${addr}` });
const greeter = createClient(GreeterService, transport);
const tutorial = createClient(Greeter, transport);
const options = { timeoutMs: 10_000 };

async function* names(...list) {
  for (const name of list) yield { name };
}

// rejection runs call, which must fail, and returns its code and the
// field violations of its BadRequest detail.
async function rejection(call) {
  try {
    await call();
  } catch (e) {
    const err = ConnectError.from(e);
    return {
      code: err.code,
      violations: err.findDetails(BadRequest).flatMap((bad) =>
        bad.fieldViolations.map((v) => ({ field: v.field, reason: v.reason })),
      ),
    };
  }
  throw new Error("the call succeeded; want a validation error");
}

const result = {};
result.sayHello = (await greeter.sayHello(create(SayHelloRequestSchema, { name: "Ada" }), options)).message;
result.sayHelloAgain = (await greeter.sayHelloAgain({ name: "Ada" }, options)).message;
result.sayHelloStream = [];
for await (const res of greeter.sayHelloStream({ name: "Ada", count: 3, interval: { seconds: 0n, nanos: 1_000_000 } }, options)) {
  result.sayHelloStream.push({ message: res.message, sequence: Number(res.sequence) });
}
const all = await greeter.sayHelloToAll(names("Ada", "Grace", "Linus"), options);
result.sayHelloToAll = { message: all.message, count: Number(all.count) };
result.sayHelloChat = [];
for await (const res of greeter.sayHelloChat(names("Ada", "Grace"), options)) {
  result.sayHelloChat.push({ message: res.message, sequence: Number(res.sequence) });
}
result.helloworld = (await tutorial.sayHello({ name: "Ada" }, options)).message;
result.invalidUnary = await rejection(() => greeter.sayHello({ name: "   " }, options));
result.invalidStream = await rejection(async () => {
  for await (const _ of greeter.sayHelloChat(names("Ada", "Bell\u0007"), options)) {
    // The first name is answered; the second fails the stream.
  }
});
console.log(JSON.stringify(result));

// A frontend team's page: the greeter's TypeScript SDK (@acme/greeter-api)
// with connect-web, in a browser, on a page served from another origin
// than the API. It calls the greeter over each browser transport, reads
// the server's validation errors, validates the contract's cases itself
// with protovalidate-es, and posts what it saw to /result on its own
// origin, for the Go test (test/e2e/web) to check.
import { create, createRegistry } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createValidator } from "@bufbuild/protovalidate";
import {
  GreeterService,
  SayHelloRequestSchema,
  file_acme_greeter_v1_name_rules,
} from "@acme/greeter-api";

const params = new URLSearchParams(location.search);
const api = params.get("api");
const cases = JSON.parse(params.get("cases"));

// badRequest reads the field violations ("field/rule id") of a
// google.rpc.BadRequest detail. The SDK does not carry google.rpc's
// messages, and FieldViolation's three fields are quick to read.
function badRequest(err) {
  const out = [];
  for (const d of err.details) {
    if (!("value" in d) || d.type !== "google.rpc.BadRequest") continue;
    const r = new BinaryReader(d.value);
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      if (no !== 1) {
        r.skip(wt);
        continue;
      }
      const fv = new BinaryReader(r.bytes());
      let field = "";
      let reason = "";
      while (fv.pos < fv.len) {
        const [n, w] = fv.tag();
        if (n === 1) field = fv.string();
        else if (n === 3) reason = fv.string();
        else fv.skip(w);
      }
      out.push(`${field}/${reason}`);
    }
  }
  return out.sort();
}

async function serverVerdict(client, name) {
  try {
    await client.sayHello({ name });
    return { code: "ok", violations: [] };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: Code[err.code], violations: badRequest(err) };
  }
}

async function run() {
  const report = { transports: {}, clientValidation: {}, serverValidation: {} };
  const transports = {
    "connect-json": createConnectTransport({ baseUrl: api }),
    "connect-binary": createConnectTransport({ baseUrl: api, useBinaryFormat: true }),
    "connect-get": createConnectTransport({ baseUrl: api, useHttpGet: true }),
    "grpc-web": createGrpcWebTransport({ baseUrl: api }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    const client = createClient(GreeterService, transport);
    const r = {};
    try {
      r.unary = (await client.sayHello({ name: "Ada" })).message;
      r.stream = [];
      for await (const g of client.sayHelloStream({ name: "Grace", count: 3 })) {
        r.stream.push(`${g.sequence}:${g.message}`);
      }
      r.invalid = await serverVerdict(client, "");
    } catch (e) {
      r.error = String(e);
    }
    report.transports[name] = r;
  }

  // Client-side validation with the contract's rules, its predefined
  // person_name rules included, before anything is sent; and the server's
  // verdict on the same names.
  const validator = createValidator({ registry: createRegistry(file_acme_greeter_v1_name_rules) });
  const client = createClient(GreeterService, transports["connect-json"]);
  for (const name of cases) {
    const result = validator.validate(SayHelloRequestSchema, create(SayHelloRequestSchema, { name }));
    const violations = result.kind === "invalid"
      ? result.violations.map((v) => `${v.field.map((p) => p.name).join(".")}/${v.ruleId}`).sort()
      : [];
    report.clientValidation[name] = { kind: result.kind, violations, error: result.kind === "error" ? String(result.error) : undefined };
    report.serverValidation[name] = await serverVerdict(client, name);
  }
  return report;
}

run()
  .catch((e) => ({ fatal: String(e && e.stack ? e.stack : e) }))
  .then((report) => fetch("/result", { method: "POST", body: JSON.stringify(report) }));

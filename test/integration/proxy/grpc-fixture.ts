/**
 * A real gRPC service on loopback for the HTTP/2 tests (@grpc/grpc-js; messages are JSON, so no
 * .proto is needed): `/weft.test.Greeter/Hello` (unary) and `/weft.test.Greeter/Count` (server
 * streaming), plus `/weft.test.Other/Ping` for routing by service. Each server names itself in
 * its replies and records the metadata it saw.
 */
import * as grpc from '@grpc/grpc-js';

export interface Hello {
  name: string;
  from?: string;
  deadlineMs?: number;
}

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString() || '{}'),
};

const method = (path: string, responseStream: boolean): grpc.MethodDefinition<unknown, unknown> => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

export const GREETER: grpc.ServiceDefinition = {
  Hello: method('/weft.test.Greeter/Hello', false),
  Count: method('/weft.test.Greeter/Count', true),
};
export const OTHER: grpc.ServiceDefinition = { Ping: method('/weft.test.Other/Ping', false) };

export interface GrpcUpstream {
  name: string;
  port: number;
  calls: { path: string; metadata: grpc.Metadata }[];
  /** Replace to fail calls: returns a status to answer with, or null to answer normally. */
  fail: (path: string) => grpc.ServiceError | null;
  /** Delay before answering a unary call. */
  delayMs: number;
  /** Unary calls in progress now, and the most seen at once. */
  inflight: number;
  maxInflight: number;
  close(): Promise<void>;
}

export async function grpcUpstream(name: string): Promise<GrpcUpstream> {
  const server = new grpc.Server();
  const u: GrpcUpstream = {
    name,
    port: 0,
    calls: [],
    fail: () => null,
    delayMs: 0,
    inflight: 0,
    maxInflight: 0,
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
  const unary =
    (path: string) =>
    (call: grpc.ServerUnaryCall<Hello, Hello>, cb: grpc.sendUnaryData<Hello>): void => {
      u.calls.push({ path, metadata: call.metadata });
      const err = u.fail(path);
      if (err !== null) return cb(err);
      // the deadline the server was given (grpc-timeout), as a Date or epoch ms; -1: none
      const d = Number(call.getDeadline().valueOf());
      const deadlineMs = Number.isFinite(d) ? d - Date.now() : -1;
      u.maxInflight = Math.max(u.maxInflight, ++u.inflight);
      setTimeout(() => {
        u.inflight--;
        cb(null, { name: call.request.name, from: name, deadlineMs });
      }, u.delayMs);
    };
  server.addService(GREETER, {
    Hello: unary('/weft.test.Greeter/Hello'),
    Count: (call: grpc.ServerWritableStream<Hello & { n?: number }, Hello>) => {
      u.calls.push({ path: '/weft.test.Greeter/Count', metadata: call.metadata });
      const n = call.request.n ?? 3;
      for (let i = 0; i < n; i++) call.write({ name: `${call.request.name}-${i}`, from: name });
      call.end();
    },
  });
  server.addService(OTHER, { Ping: unary('/weft.test.Other/Ping') });
  u.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return u;
}

export const GreeterClient = grpc.makeGenericClientConstructor(GREETER, 'Greeter');
export const OtherClient = grpc.makeGenericClientConstructor(OTHER, 'Other');

/** A client of the proxy's port, calling as `authority` (the virtual host). */
export function clientVia<T extends grpc.ServiceClientConstructor>(
  ctor: T,
  port: number,
  authority: string,
): InstanceType<T> {
  return new ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': authority,
  }) as InstanceType<T>;
}

/** One unary call; resolves with the reply or the gRPC error (never rejects). */
export function unary(
  client: grpc.Client,
  rpc: string,
  req: unknown,
  opts: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
): Promise<{ reply?: Hello; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const call = (client as unknown as Record<string, (...a: unknown[]) => void>)[rpc]!.bind(client);
    const options = opts.deadlineMs !== undefined ? { deadline: Date.now() + opts.deadlineMs } : {};
    call(
      req,
      opts.metadata ?? new grpc.Metadata(),
      options,
      (error: grpc.ServiceError | null, reply: Hello) => resolve(error ? { error } : { reply }),
    );
  });
}

export { grpc };

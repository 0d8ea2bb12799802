/**
 * A scripted server on 127.0.0.1:0 that reads request frames and answers as
 * a test says, for what the real daemon never does: answer out of order,
 * skip an answer, offer no features.
 */

import net from 'node:net'

/** A request frame as the fake server read it. */
export interface FakeRequest {
  readonly opcode: number
  readonly flags: number
  readonly opaque: number
  readonly body: Buffer
}

/** Answers one request: the frames to write (none to stay silent). */
export type Script = (request: FakeRequest, socket: net.Socket) => Buffer[]

/** A response frame's bytes. */
export function frame(opcode: number, status: number, opaque: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(16)
  header[0] = 0xc8
  header[1] = 1
  header[2] = opcode
  header.writeUInt16BE(status, 4)
  header.writeUInt32BE(opaque, 8)
  header.writeUInt32BE(body.length, 12)
  return Buffer.concat([header, body])
}

/** A HELLO answer's body: two shards, the given feature bits, the default limits. */
export function helloBody(features: bigint, shard = 0): Buffer {
  const fixed = Buffer.alloc(16 + 28)
  fixed.writeUInt8(1, 0) // version
  fixed.writeUInt16BE(2, 2) // shard_count
  fixed.writeUInt16BE(shard, 4)
  fixed.writeUInt8(1, 6) // hash: FNV-1a 64
  fixed.writeBigUInt64BE(features, 8)
  const limits = [2_099_492, 250, 1_048_576, 1024, 1024, 1024, 315_360_000]
  limits.forEach((limit, n) => fixed.writeUInt32BE(limit, 16 + 4 * n))
  const version = Buffer.from('fake 0')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(version.length)
  return Buffer.concat([fixed, length, version])
}

/** A running fake server. */
export class FakeServer {
  /** Every request read, HELLO included, in order. */
  readonly requests: FakeRequest[] = []
  private readonly sockets = new Set<net.Socket>()
  private readonly server: net.Server
  private port = 0

  private constructor(
    private readonly script: Script,
    private readonly features: bigint,
  ) {
    this.server = net.createServer((socket) => this.serve(socket))
  }

  /** Listens on 127.0.0.1:0; answers HELLO with `features`, everything else with `script`. */
  static async start(script: Script, features = 0b1111n): Promise<FakeServer> {
    const fake = new FakeServer(script, features)
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve))
    fake.port = (fake.server.address() as net.AddressInfo).port
    return fake
  }

  /** `127.0.0.1:PORT`. */
  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 16) {
        const length = buffered.readUInt32BE(12)
        if (buffered.length < 16 + length) {
          break
        }
        const request: FakeRequest = {
          opcode: buffered.readUInt8(2),
          flags: buffered.readUInt8(3),
          opaque: buffered.readUInt32BE(8),
          body: buffered.subarray(16, 16 + length),
        }
        buffered = buffered.subarray(16 + length)
        this.requests.push(request)
        const answers =
          request.opcode === 0x00
            ? [frame(0x00, 0, request.opaque, helloBody(this.features))]
            : this.script(request, socket)
        for (const answer of answers) {
          socket.write(answer)
        }
      }
    })
  }

  /** Stops listening and closes every connection. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) {
      socket.destroy()
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

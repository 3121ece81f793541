/**
 * The receiver's output: a ByteSink over fd 1.
 *
 * A pipe or a file on stdout is written with blocking write() calls on Bun's
 * thread pool (`fdSink`: O_NONBLOCK cleared, see src/stdio-pipes.ts), one
 * per foot, which costs less CPU than Node's stream. Anything else (a
 * terminal, a socket such as Bun's own "pipe" stdio) goes through
 * process.stdout: consola's import makes fd 1 non-blocking, so synchronous
 * writes could fail with EAGAIN (fs.writeSync(1) does, Bun 1.4.5), and the stream handles that.
 *
 * Either way, each write resolves once the bytes are handed to the fd; the
 * receiver awaits it before releasing window credit, so a slow consumer
 * slows the transmitter instead of filling memory.
 */
import fs from "node:fs";
import { VmError } from "../errors.ts";
import { blockingWrites } from "../stdio-pipes.ts";

export interface ByteSink {
  /** Resolves once `bytes` are written; rejects with VmError("outputClosed") if the consumer went away. */
  write(bytes: Uint8Array): Promise<void>;
}

function outputError(error: NodeJS.ErrnoException): VmError {
  if (error.code === "EPIPE" || error.code === "ECONNRESET" || error.code === "ERR_STREAM_DESTROYED") {
    return new VmError("outputClosed", "stdout was closed by the consumer before the stream ended");
  }
  return new VmError("outputClosed", `cannot write stdout: ${error.code ?? error.message}`);
}

/** How long to wait when a write finds fd 1 non-blocking again (someone set O_NONBLOCK after us) and full. */
const EAGAIN_RETRY_MS = 1;

/** The receiver's stdout: blocking writes where fd 1 allows them, the stream otherwise. */
export function stdoutSink(): ByteSink {
  return blockingWrites(1) ? fdSink(1) : streamSink(process.stdout);
}

/** write() of as much of `bytes` from `at` as the kernel takes, on the thread pool. */
function writeSome(fd: number, bytes: Uint8Array, at: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, bytes, at, bytes.length - at, null, (error, written) => (error ? reject(error) : resolve(written))));
}

/** Writes to a blocking descriptor (a pipe or a file), one call per chunk unless the kernel takes less. */
export function fdSink(fd: number): ByteSink {
  let failure: VmError | undefined;
  return {
    async write(bytes) {
      if (failure !== undefined) throw failure;
      let at = 0;
      while (at < bytes.length) {
        try {
          at += await writeSome(fd, bytes, at);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "EAGAIN") {
            blockingWrites(fd);
            await Bun.sleep(EAGAIN_RETRY_MS);
            continue;
          }
          throw (failure = outputError(error as NodeJS.ErrnoException));
        }
      }
    },
  };
}

/** Writes through a Node stream (process.stdout): for terminals and sockets. */
function streamSink(stream: NodeJS.WritableStream & { on: NodeJS.EventEmitter["on"] }): ByteSink {
  let failure: VmError | undefined;
  let pending: ((error: VmError) => void) | undefined;
  // Without an 'error' listener a closed pipe leaves writes waiting forever.
  stream.on("error", (error: NodeJS.ErrnoException) => {
    failure ??= outputError(error);
    pending?.(failure);
  });
  return {
    write(bytes) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<void>((resolve, reject) => {
        pending = reject;
        stream.write(bytes, (error) => {
          pending = undefined;
          if (error) {
            failure ??= outputError(error as NodeJS.ErrnoException);
            reject(failure);
          } else resolve();
        });
      });
    },
  };
}

/** A sink that keeps everything in memory (tests). */
export function memorySink(): ByteSink & { chunks: Uint8Array[]; bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    async write(bytes) {
      chunks.push(new Uint8Array(bytes)); // a copy: Buffer.prototype.slice would be a view
    },
    bytes() {
      return Buffer.concat(chunks);
    },
  };
}

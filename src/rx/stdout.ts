/**
 * The receiver's output: a ByteSink over process.stdout.
 *
 * One writer for fd 1, everywhere: consola's import makes fd 1 non-blocking,
 * so synchronous writes could fail with EAGAIN (BUN-NOTES.md). Each write
 * resolves when Node's stream has handed the bytes to the fd; the receiver
 * awaits it before releasing window credit, so a slow consumer slows the
 * transmitter instead of filling memory.
 */
import { VmError } from "../errors.ts";

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

export function stdoutSink(stream: NodeJS.WritableStream & { on: NodeJS.EventEmitter["on"] } = process.stdout): ByteSink {
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

// A typed client for capture-bridge, spawned as a Tauri sidecar (docs/tauri.md).
//
// It speaks the bridge's newline-delimited JSON-RPC over the child's stdin and
// stdout: requests carry ids and wait in a pending map, notifications become
// events, and stop() asks for `shutdown` before it kills. The types come from
// the bridge itself (schemas/host/index.d.ts, written by `make schemas`).

import { Command, type Child } from "@tauri-apps/plugin-shell";

import type {
  BridgeInfo,
  BridgeRpcError,
  HostCommandName,
  HostCommands,
  HostNotificationName,
  HostNotifications,
  ProtocolVersion,
} from "../../../schemas/host/index";

/** The `externalBin` entry (tauri.conf.json) and the shell capability's sidecar name. */
export const SIDECAR = "binaries/capture-bridge";

/** The protocol this client was written for; any other version is refused. */
export const PROTOCOL_VERSION: ProtocolVersion = 1;

/** Commands this app uses: a bridge that lacks one is refused at start. */
export const REQUIRED_COMMANDS: readonly HostCommandName[] = [
  "bridge_info",
  "shutdown",
  "get_capture_reliability_status",
  "get_codex_app_server_status",
  "start_codex_app_server",
  "get_live_events",
  "list_captured_threads",
  "get_captured_thread",
  "codex_app_server_submit_approval",
];

/** How long stop() waits for the bridge to exit after `shutdown` before it kills it. */
export const STOP_GRACE_MS = 3000;

/** The argument list the shell capability allows (src-tauri/capabilities/default.json). */
export function serveArgs(parentPid: number): string[] {
  return ["serve", "--parent-pid", String(parentPid)];
}

/** A JSON-RPC error answered by the bridge (`data.kind` names the problem). */
export class BridgeError extends Error {
  readonly code: number;
  readonly data: BridgeRpcError["data"];

  constructor(method: string, error: BridgeRpcError) {
    super(`${method}: ${error.message}`);
    this.name = "BridgeError";
    this.code = error.code;
    this.data = error.data;
  }
}

/** Commands whose params are all optional may be called without them. */
type ParamsArg<M extends HostCommandName> = {} extends HostCommands[M]["params"]
  ? [params?: HostCommands[M]["params"]]
  : [params: HostCommands[M]["params"]];

type Result<M extends HostCommandName> = HostCommands[M]["result"];

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

/** How the child ended. */
export interface Exit {
  code: number | null;
  signal: number | null;
}

export interface StartOptions {
  /** The app's own pid: the bridge exits within 2 s after it dies (`--parent-pid`). */
  parentPid: number;
  /** The codex the app bundles (its own `externalBin`); passed as CAPTURE_BRIDGE_CODEX_BIN. */
  codexBinary?: string;
  /** Builds the command; the default is the `externalBin` sidecar (override it for the macOS layout). */
  command?: (args: string[], env: Record<string, string>) => Command<string>;
  /** Every stderr line of the bridge (JSON log lines). */
  onLog?: (line: string) => void;
  /** Called once when the process ends, however it ends. */
  onExit?: (exit: Exit) => void;
}

type Listener<N extends HostNotificationName> = (params: HostNotifications[N]) => void;

export class CaptureBridge {
  /** What `bridge_info` answered at start. */
  info!: BridgeInfo;
  /** The `seq` of the last notification received (for get_live_events after a gap). */
  lastSeq = 0;

  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<(params: never) => void>>();
  private exit: Exit | null = null;
  private readonly exited: Promise<Exit>;
  private markExited!: (exit: Exit) => void;
  private child: Child | null = null;

  private constructor(private readonly options: StartOptions) {
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  /** Spawn the bridge, check its protocol version and commands; refuse (and stop it) on a mismatch. */
  static async start(options: StartOptions): Promise<CaptureBridge> {
    const bridge = new CaptureBridge(options);
    const env: Record<string, string> = {};
    if (options.codexBinary !== undefined) {
      env["CAPTURE_BRIDGE_CODEX_BIN"] = options.codexBinary;
    }
    const build = options.command ?? ((args: string[], env) => Command.sidecar(SIDECAR, args, { env }));
    const command = build(serveArgs(options.parentPid), env);
    command.stdout.on("data", (line) => bridge.receive(line));
    command.stderr.on("data", (line) => options.onLog?.(line));
    command.on("close", (exit) => bridge.closed({ code: exit.code, signal: exit.signal }));
    command.on("error", (message) => options.onLog?.(`capture-bridge: ${message}`));
    bridge.child = await command.spawn();
    try {
      bridge.info = await bridge.request("bridge_info");
      if (bridge.info.protocolVersion !== PROTOCOL_VERSION) {
        throw new Error(`capture-bridge speaks protocol ${bridge.info.protocolVersion}, this app ${PROTOCOL_VERSION}`);
      }
      const missing = REQUIRED_COMMANDS.filter((name) => !bridge.info.commands.includes(name));
      if (missing.length > 0) {
        throw new Error(`capture-bridge ${bridge.info.version} lacks ${missing.join(", ")}`);
      }
    } catch (error) {
      await bridge.stop();
      throw error;
    }
    return bridge;
  }

  /** Send one request; resolves with its result or rejects with a BridgeError. */
  request<M extends HostCommandName>(method: M, ...params: ParamsArg<M>): Promise<Result<M>> {
    if (this.exit !== null || this.child === null) {
      return Promise.reject(new Error(`capture-bridge is not running (${method})`));
    }
    const id = this.nextId++;
    const message = { jsonrpc: "2.0", id, method, params: params[0] ?? {} };
    return new Promise<Result<M>>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (result: unknown) => void, reject });
      this.child!.write(JSON.stringify(message) + "\n").catch((error: unknown) => {
        this.pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
  }

  /** Listen to one notification method; returns the function that stops listening. */
  on<N extends HostNotificationName>(method: N, listener: Listener<N>): () => void {
    let set = this.listeners.get(method);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(method, set);
    }
    const entry = listener as (params: never) => void;
    set.add(entry);
    return () => set.delete(entry);
  }

  /** `shutdown`, then wait up to STOP_GRACE_MS for the exit, then kill. Resolves with how it ended. */
  async stop(graceMs: number = STOP_GRACE_MS): Promise<Exit> {
    if (this.exit !== null) {
      return this.exit;
    }
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), graceMs));
    const asked = this.request("shutdown").catch(() => null);
    const ended = await Promise.race([asked.then(() => this.exited), timeout]);
    if (ended !== null) {
      return ended;
    }
    await this.child?.kill();
    return this.exited;
  }

  private receive(line: string): void {
    const text = line.trim();
    if (text === "") {
      return;
    }
    let decoded: unknown;
    try {
      decoded = JSON.parse(text);
    } catch {
      this.options.onLog?.(`capture-bridge wrote a line that is not JSON: ${text.slice(0, 200)}`);
      return;
    }
    for (const message of Array.isArray(decoded) ? decoded : [decoded]) {
      this.dispatch(message as Record<string, unknown>);
    }
  }

  private dispatch(message: Record<string, unknown>): void {
    if (typeof message.method === "string" && message.id === undefined) {
      const params = message.params as { seq?: number };
      if (typeof params?.seq === "number") {
        this.lastSeq = params.seq;
      }
      for (const listener of this.listeners.get(message.method) ?? []) {
        listener(params as never);
      }
      return;
    }
    const pending = typeof message.id === "number" ? this.pending.get(message.id) : undefined;
    if (pending === undefined) {
      return;
    }
    this.pending.delete(message.id as number);
    if (message.error !== undefined) {
      pending.reject(new BridgeError(pending.method, message.error as BridgeRpcError));
    } else {
      pending.resolve(message.result);
    }
  }

  private closed(exit: Exit): void {
    this.exit = exit;
    for (const [id, pending] of this.pending) {
      pending.reject(new Error(`capture-bridge exited (code ${exit.code}) before answering ${pending.method}`));
      this.pending.delete(id);
    }
    this.markExited(exit);
    this.options.onExit?.(exit);
  }
}
